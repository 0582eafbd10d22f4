"""A scripted bitchat phone that advertises and is dialed, for the VM tier, written from
bitchat's facts (docs/protocol.md, "bitchat's BLE service on the node"), not from the node's
code: it imports nothing of `pigeon`. bitchat-cli is central-only, so this peer is what the node
dials: a GATT server on dbus-fast with bitchat's service and its one characteristic (read,
write, write without response, notify), advertising the service UUID alone.
"""

import asyncio
import contextlib
from collections.abc import Callable
from typing import Annotated

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

SERVICE = "f47b5e2d-4a9e-4c5a-9b3f-8e1d2c3a4b5c"
CHARACTERISTIC = "a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d"
ROOT = "/test/bitchatpeer"
NOTIFY_GAP_S = 0.02


class _Characteristic(ServiceInterface):
    def __init__(self, on_write: Callable[[bytes, str], None]) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._on_write = on_write
        self.value = b""
        self.subscribed = asyncio.Event()

    @dbus_property(PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return CHARACTERISTIC

    @dbus_property(PropertyAccess.READ)
    def Service(self) -> Annotated[str, DBusSignature("o")]:
        return ROOT + "/service0"

    @dbus_property(PropertyAccess.READ)
    def Flags(self) -> StrList:
        return ["read", "write", "write-without-response", "notify"]

    @dbus_property(PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self.value

    @dbus_method()
    def ReadValue(self, options: DBusDict) -> DBusBytes:
        return b""

    @dbus_method()
    def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:
        # BlueZ 5.66 passes no "type" option (later versions say "command" or "request").
        kind = options["type"].value if "type" in options else "unreported"
        self._on_write(bytes(value), str(kind))

    @dbus_method()
    def StartNotify(self) -> None:
        self.subscribed.set()

    @dbus_method()
    def StopNotify(self) -> None:
        self.subscribed.clear()


class BitchatPeripheral:
    """A bitchat phone on `adapter` that the node dials: it records what the node writes."""

    def __init__(self, adapter: str) -> None:
        self.adapter = f"/org/bluez/{adapter}"
        self.written: list[bytes] = []
        self.write_kinds: set[str] = set()  # "command": without response, as bitchat writes
        self.changed = asyncio.Event()
        self._char = _Characteristic(self._on_write)
        self._bus: MessageBus | None = None

    def _on_write(self, value: bytes, kind: str) -> None:
        self.written.append(value)
        self.write_kinds.add(kind)
        self.changed.set()

    async def start(self) -> None:
        await power_on(self.adapter.rsplit("/", 1)[-1])
        bus = self._bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        bus.export(ROOT + "/service0", Service(SERVICE))
        bus.export(ROOT + "/service0/char0", self._char)
        bus.export(ROOT + "/advert0", Advert(SERVICE))
        await register(bus, self.adapter, ROOT, ROOT + "/advert0")

    async def wait_subscribed(self, within_s: float) -> None:
        async with asyncio.timeout(within_s):
            await self._char.subscribed.wait()

    async def until(self, done: Callable[[], bool], within_s: float, what: str) -> None:
        await until(
            self.changed, done, within_s, f"bitchat peripheral: timed out waiting for {what}"
        )

    async def notify(self, packet: bytes) -> None:
        """Notify one whole packet to the subscribed node, then keep the gap."""
        self._char.value = packet
        self._char.emit_properties_changed({"Value": packet})
        await asyncio.sleep(NOTIFY_GAP_S)

    async def close(self) -> None:
        """Withdraw the advert; unregister once nothing is connected (a GATT database change
        with a device connected can crash bluetoothd 5.66)."""
        bus = self._bus
        if bus is None:
            return
        await withdraw_advert(bus, self.adapter, ROOT + "/advert0")
        for path in await connected_devices(bus, self.adapter):
            with contextlib.suppress(RuntimeError):
                await call(bus, path, "org.bluez.Device1", "Disconnect", "", [])
        await asyncio.sleep(1.0)
        await unregister(bus, self.adapter, ROOT)
        bus.disconnect()
        self._bus = None
