"""How the shared central dials devices of another service (the Pigeon app's phones)."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

from pigeon.transport.ble.central import EXTRA_SETTLE_S, BleCentral, ExtraSighting
from pigeon.transport.ble.policy import PacerParams


class Phones:
    """An ExtraService that records dials and always links."""

    service_uuid = "9e7b0001-8f2a-4c3d-9a1b-2e5f7c8d0a10"

    def __init__(self) -> None:
        self.dialed: list[str] = []

    def wants_dial(self, address: str) -> bool:
        return True

    async def dial(self, device: Any) -> None:
        self.dialed.append(device.address)

    async def stop_links(self, reason: str) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _advert(*uuids: str) -> Any:
    return SimpleNamespace(service_uuids=list(uuids), manufacturer_data={})


async def test_a_phone_is_dialed_after_the_settle_wait_and_not_again_on_the_same_sighting() -> None:
    phones, clock = Phones(), Clock()
    central = BleCentral(
        "hci0",
        host=None,
        rng=random.Random(1),
        pacer_params=PacerParams(),  # type: ignore[arg-type]
        clock=clock,
        extras=(phones,),
    )
    device = SimpleNamespace(address="00:AA:01:05:00:05")
    central._on_advertisement(device, _advert(phones.service_uuid))  # type: ignore[arg-type]
    assert central._next(clock.now) is None  # a node's second advertisement may be on its way
    clock.now += EXTRA_SETTLE_S
    sighting = central._next(clock.now)
    assert isinstance(sighting, ExtraSighting)
    await central._dial_extra(sighting)
    assert phones.dialed == [device.address]
    # The link later drops: the old sighting does not make the node dial a phone that left.
    clock.now += 10
    assert central._next(clock.now) is None
    central._on_advertisement(device, _advert(phones.service_uuid))  # type: ignore[arg-type]
    clock.now += EXTRA_SETTLE_S
    assert isinstance(central._next(clock.now), ExtraSighting)  # it advertised again


async def test_a_device_advertising_our_service_is_never_dialed_as_a_phone() -> None:
    phones, clock = Phones(), Clock()
    central = BleCentral(
        "hci0",
        host=None,
        rng=random.Random(1),
        pacer_params=PacerParams(),  # type: ignore[arg-type]
        clock=clock,
        extras=(phones,),
    )
    device = SimpleNamespace(address="00:AA:01:06:00:06")
    from pigeon.transport.ble.gatt import SERVICE_UUID

    central._on_advertisement(device, _advert(phones.service_uuid, SERVICE_UUID))  # type: ignore[arg-type]
    clock.now += EXTRA_SETTLE_S
    assert central._next(clock.now) is None
