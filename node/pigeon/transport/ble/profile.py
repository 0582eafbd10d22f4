"""What tells one phone service the node serves beside its own from another (sans-IO).

The Pigeon app's service and bitchat's run on the same machinery (`phone.PhoneBleTransport`,
`phonecentral`): a phone is its device, frames are carried as they are, links phones dial share
one notify characteristic. They differ in UUIDs, in how phones write (with or without response),
in the smallest and largest frame a link carries, and in their GATT objects; a `PhoneProfile`
holds those differences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pigeon.transport.base import PeerId
from pigeon.transport.ble.errors import MalformedLinkFrame

if TYPE_CHECKING:
    from dbus_fast.service import ServiceInterface

# (device object path, written value, ATT MTU if BlueZ told it); raises WriteRefused
WriteHandler = Callable[[str, bytes, int | None], None]


class PhoneGattObjects(Protocol):
    """A phone service's D-Bus objects: a `peripheral.GattExtension` that also notifies."""

    def objects(self) -> list[tuple[str, ServiceInterface]]:
        """(path under the application root, object) for its service and characteristics."""

    def advertisement(self) -> tuple[str, ServiceInterface]:
        """(path, LEAdvertisement1 object) it advertises with."""

    def notify(self, value: bytes) -> None:
        """Notify `value` to every central subscribed to its outbound characteristic."""


@dataclass(frozen=True, slots=True)
class PhoneProfile:
    """One phone service: `name` is its link-slot key and its word in logs."""

    name: str
    service_uuid: str
    inbound_uuid: str  # centrals write frames here
    outbound_uuid: str  # the peripheral notifies frames here (may be the inbound one)
    peer_prefix: str
    min_frame_limit: int
    max_frame_limit: int
    write_with_response: bool
    gatt_objects: Callable[[WriteHandler], PhoneGattObjects]

    def peer_id(self, address: str) -> PeerId:
        """The PeerId of the phone at `address` (these services have no identifier of their own
        on the link)."""
        return PeerId(self.peer_prefix + address.upper())

    def frame_limit(self, value_length: int) -> int | None:
        """The frame limit of a link whose value length is `value_length`; None if it is under
        the smallest frame the service's phones need."""
        if value_length < self.min_frame_limit:
            return None
        return min(value_length, self.max_frame_limit)

    def check_frame(self, frame: bytes) -> None:
        """Raise MalformedLinkFrame unless `frame` holds 1..max_frame_limit bytes (what is
        inside is the service's router's business)."""
        if not 0 < len(frame) <= self.max_frame_limit:
            raise MalformedLinkFrame(
                f"{self.name} frame of {len(frame)} bytes outside 1..{self.max_frame_limit}"
            )
