"""Links we dial to phones on a phone service (the Pigeon app's, bitchat's), with bleak.

`BleCentral` scans for the phone services beside ours and dials one device at a time (one LE
connect may be pending per controller); `dial_phone` then finds the service's characteristics
(`PhoneProfile`), subscribes to the outbound one and measures the link. There is no handshake:
the link is up once notifications are on. Each link writes frames as its service's phones write
(with response for the app, without for bitchat) through a bounded queue and a `WritePacer`, one
write at a time. bleak is imported lazily, here and in `central` only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from pigeon.transport.base import Broken
from pigeon.transport.ble.central import (
    CONNECT_TIMEOUT_S,
    settled_value_length,
    write_failures,
)
from pigeon.transport.ble.hangup import connect, hang_up
from pigeon.transport.ble.linkwriter import LinkWriter
from pigeon.transport.ble.policy import PacerParams, WritePacer
from pigeon.transport.ble.profile import PhoneProfile

if TYPE_CHECKING:
    from bleak import BleakClient
    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.device import BLEDevice
    from bleak.backends.service import BleakGATTServiceCollection

_LOGGER = logging.getLogger(__name__)


class TooSmall(Broken):
    """The link's value length is under what the service's phones need."""


def phone_characteristics(
    services: BleakGATTServiceCollection, profile: PhoneProfile
) -> tuple[BleakGATTCharacteristic, BleakGATTCharacteristic] | None:
    """The inbound and outbound characteristics of the peer's `profile` service (the newest
    registration first); one characteristic may be both, as bitchat's is."""
    found = [s for s in services if s.uuid == profile.service_uuid]
    for service in sorted(found, key=lambda s: s.handle, reverse=True):
        rx = service.get_characteristic(profile.inbound_uuid)
        tx = service.get_characteristic(profile.outbound_uuid)
        if rx is not None and tx is not None:
            return rx, tx
    return None


class PhoneCentralLink:
    """One connection we opened to a phone: its notifications in, paced writes out."""

    def __init__(
        self,
        client: BleakClient,
        rx: BleakGATTCharacteristic,
        frame_limit: int,
        pacer: WritePacer,
        clock: Callable[[], float],
        with_response: bool = True,
    ) -> None:
        self.client = client
        self.address = client.address
        self.frame_limit = frame_limit
        self._rx = rx
        self._with_response = with_response
        self.notifying: BleakGATTCharacteristic | None = None  # once notifications are on
        self._writer = LinkWriter(
            self._write,
            write_failures(),
            pacer,
            clock,
            self.address,
            lambda reason: self._on_down(reason),
        )
        self._on_frame: Callable[[bytes], None] | None = None
        self._on_down: Callable[[str], None] = lambda reason: None

    def on_notify(self, value: bytes) -> None:
        """A notification of the peer's outbound characteristic: one frame."""
        if self._on_frame is not None:
            self._on_frame(value)

    def run(self, on_frame: Callable[[bytes], None], on_down: Callable[[str], None]) -> None:
        """Start delivering notifications and writing the queue."""
        self._on_frame = on_frame
        self._on_down = on_down
        self._writer.start()

    def offer(self, frame: bytes) -> None:
        """Queue a frame; raises Busy if the queue is full, Broken if the link is down."""
        self._writer.offer(frame)

    async def _write(self, value: bytes) -> None:
        # As the service's phones write (the app with response: the peer's reply then paces us
        # one write at a time; bitchat without, paced by the pacer alone).
        await self.client.write_gatt_char(self._rx, value, response=self._with_response)

    async def close(self) -> None:
        """Write what is queued (for up to DRAIN_S), then disconnect."""
        self._on_frame = None
        await self._writer.stop()
        await hang_up(self.client, self.notifying)


async def dial_phone(
    device: BLEDevice,
    profile: PhoneProfile,
    adapter_name: str,
    pacer_params: PacerParams,
    on_disconnect: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    discovered: Callable[[], Awaitable[None]] | None = None,
) -> PhoneCentralLink:
    """Connect to a phone on `profile`'s service and subscribe; raises BleakError, Broken
    (TooSmall when the link is under the profile's smallest frame), TimeoutError, EOFError or
    OSError, disconnecting first."""
    from bleak import BleakClient

    client = BleakClient(
        device,
        lambda c: on_disconnect(c.address),
        timeout=CONNECT_TIMEOUT_S,
        bluez={"adapter": adapter_name},
    )
    try:
        await connect(client)
        found = phone_characteristics(client.services, profile)
        if found is None:
            raise Broken(f"the peer has no {profile.name} characteristics")
        rx, tx = found
        value_length = await settled_value_length(rx, clock)
        limit = profile.frame_limit(value_length)
        if limit is None:
            raise TooSmall(
                f"value length {value_length} is under {profile.name}'s "
                f"{profile.min_frame_limit} bytes"
            )
        pacer = WritePacer(pacer_params, clock())
        link = PhoneCentralLink(client, rx, limit, pacer, clock, profile.write_with_response)
        # AcquireNotify, not StartNotify: BlueZ batches Value PropertiesChanged signals, so a
        # burst read through D-Bus properties loses all but the last.
        await client.start_notify(
            tx, lambda _c, value: link.on_notify(bytes(value)), bluez={"use_start_notify": False}
        )
        link.notifying = tx
    except BaseException:
        await hang_up(client, discovered=discovered)
        raise
    return link
