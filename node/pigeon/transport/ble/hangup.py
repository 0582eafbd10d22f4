"""Ending a connection we dialed in the order BlueZ 5.66 survives: notifications, then the link,
and never in the middle of bluetoothd's discovery of the device.

BlueZ 5.66 frees a GATT client's acquired notification (AcquireNotify, which our links use) when
the connection drops, and touches it again as the notification socket closes: a use-after-free
fixed upstream only in 2026 (bluez a94f99420 and d01616f0c). The BLE VM tier saw bluetoothd die
in that teardown (SIGSEGV under btd_gatt_client_service_removed). Releasing the notification
first, and letting bluetoothd take that in, ends the subscription while its client still exists.
The peer that was dialed leaves the hanging up to the dialer (transport.HANG_UP_WAIT_S).

A Disconnect while bluetoothd still discovers the device's GATT database is another BlueZ 5.66
use-after-free (see `adapter.BlueZAdapter.disconnect`). bleak sends one when its connect is
cancelled, so `connect` lets a connect finish before the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from bleak import BleakClient
    from bleak.backends.characteristic import BleakGATTCharacteristic

# bluetoothd reads the closed notification socket in its main loop, and a Disconnect sent (or
# bleak's D-Bus connection closed) before it did walks into the freed subscriber: the hang-up
# waits until bluetoothd says the notification is no longer acquired, polling its property.
RELEASE_WAIT_S: Final = 2.0
RELEASE_POLL_S: Final = 0.05
GATT_CHARACTERISTIC_IFACE: Final = "org.bluez.GattCharacteristic1"
DISCONNECT_TIMEOUT_S: Final = 5.0  # bleak waits for BlueZ's Connected=false, which may not come
# How long a cancelled dial waits for its connect (bluetoothd's discovery) to end; GATT
# discovery takes well under a second, and a stop must not wait for bleak's whole timeout.
CONNECT_FINISH_WAIT_S: Final = 5.0


async def connect(client: BleakClient) -> None:
    """`client.connect()`, except that a cancellation first lets the connect end (for up to
    CONNECT_FINISH_WAIT_S, then cancels it): the caller hangs up a connection whose discovery is
    over."""
    connecting = asyncio.ensure_future(client.connect())
    try:
        await asyncio.shield(connecting)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            async with asyncio.timeout(CONNECT_FINISH_WAIT_S):
                await asyncio.shield(connecting)
        connecting.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await connecting
        raise


async def until_released(characteristic: BleakGATTCharacteristic) -> None:
    """Until bluetoothd says `characteristic`'s notification is no longer acquired: it has read
    the closed socket and let its subscriber go (bleak's BlueZ backend names the
    characteristic's D-Bus object by `obj[0]`)."""
    from dbus_fast import BusType, Message, MessageType
    from dbus_fast.aio import MessageBus

    path = characteristic.obj[0]
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        while True:
            reply = await bus.call(
                Message(
                    destination="org.bluez",
                    path=path,
                    interface="org.freedesktop.DBus.Properties",
                    member="Get",
                    signature="ss",
                    body=[GATT_CHARACTERISTIC_IFACE, "NotifyAcquired"],
                )
            )
            if reply is None or reply.message_type is MessageType.ERROR or not reply.body[0].value:
                return  # let go, or the characteristic is gone with the device
            await asyncio.sleep(RELEASE_POLL_S)
    finally:
        bus.disconnect()


async def hang_up(
    client: BleakClient,
    notifying: BleakGATTCharacteristic | None = None,
    discovered: Callable[[], Awaitable[None]] | None = None,
    released: Callable[[BleakGATTCharacteristic], Awaitable[None]] = until_released,
) -> None:
    """Release `notifying`'s notifications (if any) and wait until they are `released` (for
    RELEASE_WAIT_S at most), wait for `discovered` (bluetoothd's GATT discovery of the device
    over: a connect that failed may be on a connection the peer made), then disconnect
    `client`; never raises."""
    if discovered is not None:
        with contextlib.suppress(Exception):
            await discovered()
    if notifying is not None:
        with contextlib.suppress(Exception):
            if client.is_connected:
                await client.stop_notify(notifying)
                async with asyncio.timeout(RELEASE_WAIT_S):
                    await released(notifying)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
            await client.disconnect()
