"""What the node advertises, as a pure function of the services it runs (docs/protocol.md,
"Advertising three services").

A legacy advertisement holds 31 bytes. Each of the node's services needs its 128-bit UUID in an
advertisement for phones and nodes that filter scans by service (bitchat's phones do, iOS and
Android alike): flags 3 + one complete 128-bit UUID list 18 = 21 bytes, so two services never
share one. Our own also carries the rotating identifier (8 bytes: 29), the app's its local name
`Pigeon` (8 bytes: 29); bitchat's phones advertise their UUID alone, and so does the node.

So the node registers one connectable advertising instance per service, ours first. On a
controller with legacy advertising only, the kernel rotates the instances (each on the air in
turn, BlueZ's default 2 s each); where the controller has extended advertising, the kernel runs
them as concurrent sets. Not the scan response: BlueZ 5.66 offers its fields only as
experimental properties (`bluetoothd -E`, which turns on every experimental interface), and a
phone that scans passively (iOS in the background, Android's low-power scans) never asks for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from pigeon.transport.ble.appgatt import APP_LOCAL_NAME, APP_SERVICE_UUID
from pigeon.transport.ble.bitchatgatt import BITCHAT_SERVICE_UUID
from pigeon.transport.ble.gatt import IDENTIFIER_LEN, SERVICE_UUID
from pigeon.transport.ble.slots import APP_SERVICE, BITCHAT_SERVICE, OWN_SERVICE

LEGACY_ADVERT_LEN: Final = 31
FLAGS_LEN: Final = 3  # length, type, LE General Discoverable | BR/EDR not supported (BlueZ adds it)
UUID128_LIST_LEN: Final = 2 + 16  # length, type, one complete 128-bit UUID
MANUFACTURER_HEADER_LEN: Final = 2 + 2  # length, type, company id
# BlueZ's default time each instance is on the air when the kernel rotates legacy instances.
ROTATION_S: Final = 2.0

SERVICE_ORDER: Final = (OWN_SERVICE, APP_SERVICE, BITCHAT_SERVICE)


@dataclass(frozen=True, slots=True)
class AdvertSpec:
    """One connectable advertising instance: a service UUID, and what else it carries."""

    service: str
    service_uuid: str
    local_name: str | None = None
    manufacturer_data_len: int = 0  # bytes after the company id (0: none)

    def legacy_len(self) -> int:
        """Its length as a legacy advertisement, flags included."""
        length = FLAGS_LEN + UUID128_LIST_LEN
        if self.local_name is not None:
            length += 2 + len(self.local_name.encode())
        if self.manufacturer_data_len:
            length += MANUFACTURER_HEADER_LEN + self.manufacturer_data_len
        return length


def own_advert() -> AdvertSpec:
    """Ours: the Pigeon service UUID and the rotating identifier (manufacturer data)."""
    return AdvertSpec(OWN_SERVICE, SERVICE_UUID, manufacturer_data_len=IDENTIFIER_LEN)


def app_advert() -> AdvertSpec:
    """The Pigeon app's: its service UUID and the local name the app advertises."""
    return AdvertSpec(APP_SERVICE, APP_SERVICE_UUID, local_name=APP_LOCAL_NAME)


def bitchat_advert() -> AdvertSpec:
    """bitchat's: its service UUID alone, as bitchat's phones advertise."""
    return AdvertSpec(BITCHAT_SERVICE, BITCHAT_SERVICE_UUID)


_ADVERTS: Final = {
    OWN_SERVICE: own_advert,
    APP_SERVICE: app_advert,
    BITCHAT_SERVICE: bitchat_advert,
}


def advert_plan(services: Iterable[str]) -> tuple[AdvertSpec, ...]:
    """One instance per service that is on (ours always), ours first; raises ValueError for an
    unknown service."""
    on = set(services) | {OWN_SERVICE}
    unknown = on - set(SERVICE_ORDER)
    if unknown:
        raise ValueError(f"no advertisement for {sorted(unknown)}")
    plan = tuple(_ADVERTS[service]() for service in SERVICE_ORDER if service in on)
    for spec in plan:
        if spec.legacy_len() > LEGACY_ADVERT_LEN:
            raise ValueError(f"{spec.service}'s advertisement needs {spec.legacy_len()} bytes")
    return plan


def longest_silence_s(plan: tuple[AdvertSpec, ...]) -> float:
    """How long one instance may stay off the air on a legacy controller: the others' turns."""
    return ROTATION_S * (len(plan) - 1)
