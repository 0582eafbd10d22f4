"""BleCentral's dialing decisions, with a host stand-in and a dial that fails as a radio's can."""

from __future__ import annotations

import random

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from pigeon.transport.ble.central import BleCentral, CentralLink, Sighting
from pigeon.transport.ble.gatt import MANUFACTURER_ID, SERVICE_UUID
from pigeon.transport.ble.policy import PacerParams

PEER = "00:AA:01:01:00:01"


class Host:
    """Answers `wants` as the transport does for a peer with the lower identifier."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def identifier(self) -> bytes:
        return b"\xff\xff\xff\xff"

    def wants(self, address: str, identifier: bytes, waited_s: float) -> bool:
        self.asked.append(waited_s)
        return waited_s >= 10.0  # patience: the peer should dial us first

    def shares_connection(self, address: str) -> bool:
        return False

    def central_link_up(self, link: CentralLink) -> None:
        raise AssertionError("no link comes up here")

    def central_frame(self, link: CentralLink, frame: bytes) -> None:
        raise AssertionError("no link comes up here")

    def central_link_down(self, link: CentralLink, reason: str) -> None:
        raise AssertionError("no link comes up here")


class TimingOutCentral(BleCentral):
    """A central whose every connect times out, as two controllers initiating at once do."""

    async def _connect(self, device: BLEDevice) -> CentralLink:
        raise TimeoutError


def _advert() -> AdvertisementData:
    return AdvertisementData(
        None, {MANUFACTURER_ID: b"\x00\x00\x00\x01"}, {}, [SERVICE_UUID], None, -50, ()
    )


async def test_a_failed_dial_starts_patience_over() -> None:
    now = [0.0]
    host = Host()
    central = TimingOutCentral("hci0", host, random.Random(1), PacerParams(), lambda: now[0])
    device = BLEDevice(PEER, None, None)
    central._on_advertisement(device, _advert())
    now[0] = 12.0
    central._on_advertisement(device, _advert())
    sighting = central._next(now[0])
    assert isinstance(sighting, Sighting)  # patience ran out: dial
    await central._dial(sighting)
    now[0] = 200.0  # well past any backoff
    central._on_advertisement(device, _advert())
    assert central._next(now[0]) is None
    assert host.asked[-1] == 0.0  # waiting again from this sighting, not from the first one
