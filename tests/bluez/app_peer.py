"""Scripted Pigeon-app peers for the VM tier, written from the app's facts (docs/protocol.md,
"The Pigeon app's BLE service"; ../shared/PIGEON_APP.md), not from the node's code: they
import nothing of `pigeon`. `PeripheralPeer` plays a phone that advertises and is dialed (a GATT
server on dbus-fast); `CentralPeer` plays a phone that dials (bleak): it subscribes to the
outbound characteristic and writes with response. Both fragment as the app does: payload =
smallest value length - 7, clamped to 150..503.
"""

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from dbus_fast import BusType
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusBytes, DBusDict, DBusSignature, DBusStr
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from tests.bluez.rig_gatt import (
    Advert,
    Service,
    StrList,
    call,
    connected_devices,
    power_on,
    register,
    unregister,
    until,
    withdraw_advert,
)

SERVICE = "9e7b0001-8f2a-4c3d-9a1b-2e5f7c8d0a10"
INBOUND = "9e7b0002-8f2a-4c3d-9a1b-2e5f7c8d0a10"
OUTBOUND = "9e7b0003-8f2a-4c3d-9a1b-2e5f7c8d0a10"
ROOT = "/test/apppeer"
_HEADER = struct.Struct(">BHHH")
# A connect of this phone's own bleak on BlueZ 5.66 sometimes fails at once with "failed to
# discover services, device disconnected": when bluetoothd's ATT connect beats the kernel's
# connect event, it marks the device connected without emitting Connected=true (its
# device_add_connection then stops at "already connected"), so bleak, seeing Connected false,
# gives up and disconnects (the link drops 2 s later). A D-Bus monitor in the VM showed it three
# times in a row for one phone. The app (CoreBluetooth) reconnects until it links; so does this.
CONNECT_TRIES = 6
NOTIFY_GAP_S = 0.02  # BlueZ packs notifications closer than 10 ms and may reorder them
RELEASE_WAIT_S = 5.0  # for bluetoothd to let go of an acquired notification (CentralPeer.close)
RELEASE_POLL_S = 0.05


def payload_size(value_length: int | None) -> int:
    """The app's fragment payload for a smallest value length (None: no path yet)."""
    if value_length is None:
        return 150
    return min(max(value_length - 7, 150), 503)


def fragments(message: bytes, message_id: int, value_length: int | None) -> list[bytes]:
    """`version=1 | message id | index | count | payload`, big-endian."""
    size = payload_size(value_length)
    count = max(1, -(-len(message) // size))
    return [
        _HEADER.pack(1, message_id, i, count) + message[i * size : (i + 1) * size]
        for i in range(count)
    ]


def packet(ttl: int, packet_id: bytes, body: bytes) -> bytes:
    """`version=1 | ttl | packet id 16 | payload`."""
    return bytes((1, ttl)) + packet_id + body


def envelope(kind: int, sender: bytes, recipient: bytes, body: bytes) -> bytes:
    """`version=1 | type | sender key 32 | recipient key 32 | payload`."""
    return bytes((1, kind)) + sender + recipient + body


@dataclass
class Receiver:
    """Frames in (sizes kept), whole messages out."""

    frames: list[int] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    _parts: dict[int, dict[int, bytes]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, frame: bytes) -> None:
        self.frames.append(len(frame))
        version, message_id, index, count = _HEADER.unpack_from(frame)
        if version != 1 or index >= count:
            raise AssertionError(f"bad fragment header {frame[:7].hex()}")
        parts = self._parts.setdefault(message_id, {})
        parts[index] = frame[7:]
        if len(parts) == count:
            del self._parts[message_id]
            self.messages.append(b"".join(parts[i] for i in range(count)))
        self.changed.set()

    async def until(self, done: Callable[[], bool], within_s: float, what: str) -> None:
        await until(self.changed, done, within_s, f"timed out waiting for {what}")


class _Inbound(ServiceInterface):
    def __init__(self, peer: "PeripheralPeer") -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._peer = peer

    @dbus_property(PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return INBOUND

    @dbus_property(PropertyAccess.READ)
    def Service(self) -> Annotated[str, DBusSignature("o")]:
        return ROOT + "/service0"

    @dbus_property(PropertyAccess.READ)
    def Flags(self) -> StrList:
        return ["write"]

    @dbus_method()
    def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:
        if "mtu" in options:
            # It sizes its notifications by this, as the app does by maximumUpdateValueLength on
            # iOS: BlueZ's server carries MTU - 5 bytes per notification to a BlueZ central (it
            # packs values for multiple-handle notifications, behind handle and length).
            self._peer.value_length = int(options["mtu"].value) - 5
        self._peer.on_frame(bytes(value))


class _Outbound(ServiceInterface):
    def __init__(self) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self.value = b""
        self.subscribed = asyncio.Event()
        self.on_change: Callable[[bool], None] = lambda subscribed: None

    @dbus_property(PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return OUTBOUND

    @dbus_property(PropertyAccess.READ)
    def Service(self) -> Annotated[str, DBusSignature("o")]:
        return ROOT + "/service0"

    @dbus_property(PropertyAccess.READ)
    def Flags(self) -> StrList:
        return ["notify"]

    @dbus_property(PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self.value

    @dbus_method()
    def StartNotify(self) -> None:
        self.subscribed.set()
        self.on_change(True)

    @dbus_method()
    def StopNotify(self) -> None:
        self.subscribed.clear()
        self.on_change(False)


class _Advert(Advert):
    def __init__(self) -> None:
        super().__init__(SERVICE)

    @dbus_property(PropertyAccess.READ)
    def LocalName(self) -> DBusStr:
        return "Pigeon"


class PeripheralPeer:
    """A phone that advertises the app's service and is dialed."""

    def __init__(self, adapter: str) -> None:
        self.adapter = f"/org/bluez/{adapter}"
        self.received = Receiver()
        self.value_length: int | None = None  # learnt from the central's writes (its MTU)
        self.on_frame: Callable[[bytes], None] = self.received.add  # each written value
        self._outbound = _Outbound()
        self._bus: MessageBus | None = None

    def on_subscription(self, changed: Callable[[bool], None]) -> None:
        """Call `changed(subscribed)` when the central subscribes or unsubscribes."""
        self._outbound.on_change = changed

    async def notify(self, frame: bytes) -> None:
        """Notify one raw frame, then keep the gap."""
        self._outbound.value = frame
        self._outbound.emit_properties_changed({"Value": frame})
        await asyncio.sleep(NOTIFY_GAP_S)

    async def connected(self) -> bool:
        """Whether a device is connected to this adapter."""
        assert self._bus is not None
        return await self._connected(self._bus)

    async def disconnect_all(self) -> None:
        """Disconnect every device connected to this adapter (the radio breaks the link)."""
        assert self._bus is not None
        for path in await connected_devices(self._bus, self.adapter):
            await call(self._bus, path, "org.bluez.Device1", "Disconnect", "", [])

    async def start(self) -> None:
        await power_on(self.adapter.rsplit("/", 1)[-1])
        bus = self._bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        bus.export(ROOT + "/service0", Service(SERVICE))
        bus.export(ROOT + "/service0/char0", _Inbound(self))
        bus.export(ROOT + "/service0/char1", self._outbound)
        bus.export(ROOT + "/advert0", _Advert())
        await register(bus, self.adapter, ROOT, ROOT + "/advert0")

    async def wait_subscribed(self, within_s: float) -> None:
        async with asyncio.timeout(within_s):
            await self._outbound.subscribed.wait()

    async def send(self, message: bytes, message_id: int) -> list[int]:
        """Notify `message` as the app fragments it; return the frame sizes."""
        sizes = []
        for frame in fragments(message, message_id, self.value_length):
            await self.notify(frame)
            sizes.append(len(frame))
        return sizes

    async def leave(self) -> None:
        """Walk away: stop advertising and drop the connection (the app keeps its service)."""
        assert self._bus is not None
        await withdraw_advert(self._bus, self.adapter, ROOT + "/advert0")
        await self.disconnect_all()

    async def close(self) -> None:
        """Withdraw the advert; unregister once nothing is connected (a GATT database change
        with a device connected can crash bluetoothd 5.66)."""
        bus = self._bus
        if bus is None:
            return
        await withdraw_advert(bus, self.adapter, ROOT + "/advert0")
        for _ in range(100):
            if not await self._connected(bus):
                break
            await asyncio.sleep(0.1)
        await unregister(bus, self.adapter, ROOT)
        bus.disconnect()
        self._bus = None

    async def _connected(self, bus: MessageBus) -> bool:
        return bool(await connected_devices(bus, self.adapter))


class CentralPeer:
    """A phone that dials the node's app service, subscribes and writes with response."""

    def __init__(self, adapter: str) -> None:
        self.adapter = adapter
        self.received = Receiver()
        self.value_length: int | None = None
        self.failed_connects: list[str] = []  # reported by the step
        self._client: Any = None
        self._inbound: Any = None
        self._outbound: Any = None  # its notification acquired (AcquireNotify)

    async def connect(self, address: str, within_s: float) -> None:
        """Dial the node; like the app, try again (up to CONNECT_TRIES) when a connect fails."""
        from bleak import BleakClient, BleakScanner
        from bleak.exc import BleakError

        await power_on(self.adapter)
        for attempt in range(1, CONNECT_TRIES + 1):
            device = await BleakScanner.find_device_by_address(
                address, within_s, service_uuids=[SERVICE], bluez={"adapter": self.adapter}
            )
            assert device is not None, f"no app advertisement from {address}"
            client = BleakClient(device, timeout=30.0, bluez={"adapter": self.adapter})
            try:
                await client.connect()
                break
            except (BleakError, TimeoutError) as exc:
                self.failed_connects.append(f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(Exception):
                    await client.disconnect()
                if attempt == CONNECT_TRIES:
                    raise
                await asyncio.sleep(2)
        self._client = client
        service = client.services.get_service(SERVICE)
        assert service is not None, "the node has no app service"
        self._inbound = service.get_characteristic(INBOUND)
        outbound = service.get_characteristic(OUTBOUND)
        assert self._inbound is not None
        assert outbound is not None
        assert "write" in self._inbound.properties
        assert "notify" in outbound.properties
        for _ in range(20):  # the MTU exchange follows the connect
            if self._inbound.max_write_without_response_size > 20:
                break
            await asyncio.sleep(0.1)
        self.value_length = self._inbound.max_write_without_response_size
        await client.start_notify(
            outbound,
            lambda _c, value: self.received.add(bytes(value)),
            bluez={"use_start_notify": False},
        )
        self._outbound = outbound

    async def send(self, message: bytes, message_id: int) -> list[int]:
        """Write `message` as the app fragments it, with response; return the frame sizes."""
        sizes = []
        for frame in fragments(message, message_id, self.value_length):
            await self._client.write_gatt_char(self._inbound, frame, response=True)
            sizes.append(len(frame))
        return sizes

    async def close(self) -> None:
        """Hang up: release the acquired notification, wait until bluetoothd has let go of it,
        then disconnect.

        bleak's disconnect alone closes this phone's D-Bus connection with the notification
        still acquired. bluetoothd 5.66 then frees its record of the subscriber (its D-Bus owner
        left) but keeps the notification socket pointing at it, and reads the freed record when
        the link's GATT objects go: the SIGSEGV the tier saw twice (core: notify_io_destroy under
        characteristic_free, btd_gatt_client_service_removed, att_disconnected_cb; fixed upstream
        by bluez a94f99420, in 5.86). A real phone's stack is not the node's bluetoothd; only
        this rig's phone, a client of the node's own bluetoothd, can do this to it."""
        client, outbound = self._client, self._outbound
        self._client = self._outbound = None
        if client is None:
            return
        if outbound is not None and client.is_connected:
            try:
                async with asyncio.timeout(RELEASE_WAIT_S):
                    await client.stop_notify(outbound)  # closes the acquired socket
                    await _until_released(outbound.obj[0])
            except Exception as exc:  # the link may be gone already; hang up all the same
                logging.getLogger(__name__).warning(
                    "the phone on %s could not release its notification: %r", self.adapter, exc
                )
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await client.disconnect()


async def _until_released(characteristic_path: str) -> None:
    """Until bluetoothd says the characteristic's notification is no longer acquired (it has
    read the socket's hang-up and dropped the subscriber with it)."""
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        while True:
            (acquired,) = await call(
                bus,
                characteristic_path,
                "org.freedesktop.DBus.Properties",
                "Get",
                "ss",
                ["org.bluez.GattCharacteristic1", "NotifyAcquired"],
            )
            if not acquired.value:
                return
            await asyncio.sleep(RELEASE_POLL_S)
    finally:
        bus.disconnect()
