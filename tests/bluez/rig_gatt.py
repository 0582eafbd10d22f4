"""What the VM tier's scripted phones share: BlueZ calls and the GATT objects a phone that is
dialed exports (a service, an advertisement), on dbus-fast. Like the phones, it imports nothing
of `pigeon`: the rig is written from BlueZ's documented interfaces, not from the node's code.
"""

import asyncio
import contextlib
from collections.abc import Callable
from typing import Annotated, Any

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusBool, DBusSignature, DBusStr
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

StrList = Annotated[list[str], DBusSignature("as")]


async def until(
    changed: asyncio.Event,
    done: Callable[[], bool],
    within_s: float,
    why: str | Callable[[], str],
) -> None:
    """Wait until `done()` holds, checking it each time `changed` is set; after `within_s`
    raise AssertionError saying `why` (called then, if it is a function: the state at the end)."""
    try:
        async with asyncio.timeout(within_s):
            while not done():
                changed.clear()
                await changed.wait()
    except TimeoutError:
        raise AssertionError(why() if callable(why) else why) from None


async def call(
    bus: MessageBus, path: str, iface: str, member: str, sig: str, body: list[Any]
) -> list[Any]:
    """Call BlueZ; raises RuntimeError with its error name on an error reply."""
    reply = await bus.call(
        Message(
            destination="org.bluez",
            path=path,
            interface=iface,
            member=member,
            signature=sig,
            body=body,
        )
    )
    assert reply is not None
    if reply.message_type == MessageType.ERROR:
        raise RuntimeError(f"{iface}.{member}: {reply.error_name} {reply.body}")
    return list(reply.body)


async def adapter_address(adapter: str) -> str:
    """The controller address of `adapter` (hciN)."""
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        (value,) = await call(
            bus,
            f"/org/bluez/{adapter}",
            "org.freedesktop.DBus.Properties",
            "Get",
            "ss",
            ["org.bluez.Adapter1", "Address"],
        )
        return str(value.value)
    finally:
        bus.disconnect()


async def power_on(adapter: str) -> None:
    """Power `adapter` (hciN) on, as a phone's Bluetooth is on."""
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        await call(
            bus,
            f"/org/bluez/{adapter}",
            "org.freedesktop.DBus.Properties",
            "Set",
            "ssv",
            ["org.bluez.Adapter1", "Powered", Variant("b", True)],
        )
    finally:
        bus.disconnect()


async def connected_devices(bus: MessageBus, adapter_path: str) -> list[str]:
    """The object paths of the devices connected to the adapter at `adapter_path`."""
    (objects,) = await call(
        bus, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", "", []
    )
    return [
        path
        for path, ifaces in objects.items()
        if path.startswith(adapter_path + "/")
        and "org.bluez.Device1" in ifaces
        and ifaces["org.bluez.Device1"]["Connected"].value
    ]


async def forget_device(adapter: str, address: str) -> None:
    """Remove the device at `address` from `adapter` (hciN) unless it is connected."""
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    try:
        adapter_path = f"/org/bluez/{adapter}"
        path = f"{adapter_path}/dev_{address.upper().replace(':', '_')}"
        if path not in await connected_devices(bus, adapter_path):
            with contextlib.suppress(RuntimeError):  # not known: nothing to forget
                await call(bus, adapter_path, "org.bluez.Adapter1", "RemoveDevice", "o", [path])
    finally:
        bus.disconnect()


async def register(bus: MessageBus, adapter_path: str, root: str, advert_path: str) -> None:
    """Register the GATT application at `root` and start advertising `advert_path`."""
    await call(
        bus, adapter_path, "org.bluez.GattManager1", "RegisterApplication", "oa{sv}", [root, {}]
    )
    await call(
        bus,
        adapter_path,
        "org.bluez.LEAdvertisingManager1",
        "RegisterAdvertisement",
        "oa{sv}",
        [advert_path, {}],
    )


async def withdraw_advert(bus: MessageBus, adapter_path: str, advert_path: str) -> None:
    """Stop advertising `advert_path` (BlueZ may already have released it)."""
    with contextlib.suppress(RuntimeError):
        await call(
            bus,
            adapter_path,
            "org.bluez.LEAdvertisingManager1",
            "UnregisterAdvertisement",
            "o",
            [advert_path],
        )


async def unregister(bus: MessageBus, adapter_path: str, root: str) -> None:
    """Unregister the GATT application at `root` (it may already be gone)."""
    with contextlib.suppress(RuntimeError):
        await call(
            bus, adapter_path, "org.bluez.GattManager1", "UnregisterApplication", "o", [root]
        )


class Service(ServiceInterface):
    """org.bluez.GattService1: a primary service."""

    def __init__(self, uuid: str) -> None:
        super().__init__("org.bluez.GattService1")
        self._uuid = uuid

    @dbus_property(PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._uuid

    @dbus_property(PropertyAccess.READ)
    def Primary(self) -> DBusBool:
        return True


class Advert(ServiceInterface):
    """org.bluez.LEAdvertisement1: connectable, one service UUID (a subclass adds a name)."""

    def __init__(self, uuid: str) -> None:
        super().__init__("org.bluez.LEAdvertisement1")
        self._uuid = uuid

    @dbus_property(PropertyAccess.READ)
    def Type(self) -> DBusStr:
        return "peripheral"

    @dbus_property(PropertyAccess.READ)
    def ServiceUUIDs(self) -> StrList:
        return [self._uuid]

    @dbus_method()
    def Release(self) -> None:
        pass
