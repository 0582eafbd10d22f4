"""BleCentral's dialing decisions and service choice, with stand-ins for the host and a dial."""

from __future__ import annotations

import random

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection

from pigeon.transport.base import Broken
from pigeon.transport.ble.central import (
    BleCentral,
    CentralLink,
    Sighting,
    pigeon_characteristics,
)
from pigeon.transport.ble.gatt import (
    MANUFACTURER_ID,
    RX_UUID,
    SERVICE_UUID,
    TX_UUID,
    Bye,
    ByeReason,
    encode_link_frame,
)
from pigeon.transport.ble.policy import PacerParams, WritePacer

PEER = "00:AA:01:01:00:01"


class Host:
    """Answers `wants` as the transport does for a peer with the lower identifier."""

    def __init__(self) -> None:
        self.asked: list[float] = []
        self.calls: list[str] = []

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

    async def clear_stale_discovery(self) -> None:
        pass

    async def until_discovered(self, address: str) -> None:
        self.calls.append(f"until discovered {address}")

    async def connect_device(self, address: str, within_s: float) -> None:
        self.calls.append(f"connect {address}")
        raise TimeoutError  # the LE connect never came (the adapter cancelled it)


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
    await central._dial(sighting)  # fails at t=12
    now[0] = 20.0  # past the backoff, and no new advertisement (BlueZ repeats none)
    assert central._next(now[0]) is None
    assert host.asked[-1] == 8.0  # waiting again since the failure, not since t=0
    now[0] = 22.5
    assert central._next(now[0]) is not None  # patience ran out again: the peer is still known


def _add_service(
    services: BleakGATTServiceCollection, handle: int, uuids: tuple[str, ...] = (RX_UUID, TX_UUID)
) -> None:
    service = BleakGATTService(None, handle, SERVICE_UUID)
    services.add_service(service)
    for offset, uuid in enumerate(uuids, start=1):
        char = BleakGATTCharacteristic(None, handle + offset, uuid, ["notify"], lambda: 20, service)
        services.add_characteristic(char)


def test_the_newest_pigeon_service_is_used_when_bluez_lists_two() -> None:
    services = BleakGATTServiceCollection()
    _add_service(services, 0x21)
    _add_service(services, 0x2A)
    _add_service(services, 0x40, (RX_UUID,))  # incomplete: not a service to use
    found = pigeon_characteristics(services)
    assert found is not None
    assert [c.handle for c in found] == [0x2B, 0x2C]


def test_no_pigeon_service_is_none() -> None:
    assert pigeon_characteristics(BleakGATTServiceCollection()) is None


async def test_a_stop_forgets_what_was_seen() -> None:
    now = [0.0]
    host = Host()
    central = TimingOutCentral("hci0", host, random.Random(1), PacerParams(), lambda: now[0])
    device = BLEDevice(PEER, None, None)
    central._on_advertisement(device, _advert())
    await central.stop("bluetoothd stopped")
    now[0] = 30.0
    central._on_advertisement(device, _advert())  # seen again after the restart
    assert central._next(now[0]) is None  # patience counts from now, not from before the stop
    assert host.asked[-1] == 0.0


class HalfConnectedClient:
    """The BleakClient of a connect that failed on a connection the peer made meanwhile."""

    def __init__(self, calls: list[str]) -> None:
        self.is_connected = True
        self._calls = calls

    async def disconnect(self) -> None:
        self._calls.append("disconnect")


class NoServicesYetCentral(BleCentral):
    """A central whose connect finds the peer's connection with no services discovered yet."""

    def __init__(self, host: Host) -> None:
        super().__init__("hci0", host, random.Random(1), PacerParams(), lambda: 0.0)
        self._client = HalfConnectedClient(host.calls)

    async def _connect(self, device: BLEDevice) -> CentralLink:
        self._pending = self._client  # type: ignore[assignment]
        raise Broken("the peer has no Pigeon characteristics")


async def test_a_failed_dial_hangs_up_once_bluetoothd_discovered_the_device() -> None:
    # bleak reuses a connection the peer made meanwhile; a Disconnect while bluetoothd still
    # discovers it is a BlueZ 5.66 use-after-free.
    host = Host()
    central = NoServicesYetCentral(host)
    device = BLEDevice(PEER, None, None)
    await central._dial(Sighting(device, b"\x00\x00\x00\x01", 0.0, 0.0))
    assert host.calls == [f"until discovered {PEER}", "disconnect"]


async def test_a_dial_whose_le_connect_timed_out_hangs_up_nothing() -> None:
    # The LE connect goes first through the adapter, which cancels it only when nothing is
    # connected; bleak, which would send its own Disconnect on a timeout, never starts.
    host = Host()
    central = BleCentral("hci0", host, random.Random(1), PacerParams(), lambda: 0.0)
    device = BLEDevice(PEER, None, None)
    await central._dial(Sighting(device, b"\x00\x00\x00\x01", 0.0, 0.0))
    assert host.calls == [f"connect {PEER}"]


class RecordingClient:
    """A connected BleakClient stand-in that records writes and hang-ups."""

    def __init__(self, calls: list[str]) -> None:
        self.address = PEER
        self.is_connected = True
        self._calls = calls

    async def write_gatt_char(self, char: object, value: bytes, response: bool) -> None:
        self._calls.append(f"write {value.hex()}")

    async def stop_notify(self, char: object) -> None:
        self._calls.append("stop notify")

    async def disconnect(self) -> None:
        self._calls.append("disconnect")


class DownHost(Host):
    def central_link_down(self, link: CentralLink, reason: str) -> None:
        self.calls.append(f"down: {reason}")


async def test_an_evicted_link_we_dialed_says_bye_no_room_and_hangs_up() -> None:
    host = DownHost()
    central = BleCentral("hci0", host, random.Random(1), PacerParams(), lambda: 0.0)
    client = RecordingClient(host.calls)
    link = CentralLink(
        client,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        b"\x01\x02\x03",
        244,
        WritePacer(PacerParams(), 0.0),
        lambda: 0.0,
    )
    central._links[PEER] = link
    link.run(lambda frame: None, lambda reason: None)
    await central.evict(link, "evicted: room")
    bye = encode_link_frame(Bye(b"\x01\x02\x03", ByeReason.NO_ROOM)).hex()
    assert host.calls == [f"write {bye}", "disconnect", "down: evicted: room"]
    await central.evict(link, "evicted: room")  # gone already: nothing more
    assert len(host.calls) == 3
