"""A stand-in for bluetoothd on a private dbus-daemon: adapters, devices and the two managers.

It answers what BlueZ 5.66 answers to the calls the transport makes (same interfaces, member
names, signatures and error names, for example org.bluez.Error.Blocked "Blocked through
rfkill"), calls back into registered applications and advertisements the way bluetoothd does
(GetManagedObjects on the application root, GetAll on the advertisement), and records every
call with its signature. It is a fake only for the absent radio: the bus, the daemon and the
transport's D-Bus code are real.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dbus_fast import DBusError, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusBool, DBusDict, DBusInt16, DBusStr
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

GATT_MANAGER = "org.bluez.GattManager1"
AD_MANAGER = "org.bluez.LEAdvertisingManager1"
DISCOVERY = ("StartDiscovery", "StopDiscovery")
IN_PROGRESS = "org.bluez.Error.InProgress"


@dataclass
class Call:
    """One method call BlueZ received."""

    path: str
    interface: str
    member: str
    signature: str
    body: list[Any]


@dataclass
class Registration:
    """What bluetoothd read back from a registered application or advertisement."""

    owner: str
    path: str
    objects: dict[str, Any] = field(default_factory=dict)


class FakeAdapter(ServiceInterface):
    """org.bluez.Adapter1 with Powered, Address and PowerState."""

    def __init__(self, address: str, powered: bool = False, blocked: bool = False) -> None:
        super().__init__("org.bluez.Adapter1")
        self.address = address
        self.powered = powered
        self.blocked = blocked
        self.discovering = False
        self.discovery_filter: dict[str, Variant] = {}

    @dbus_property(PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return self.address

    @dbus_property(PropertyAccess.READ)
    def PowerState(self) -> DBusStr:
        if self.blocked:
            return "off-blocked"
        return "on" if self.powered else "off"

    @dbus_method()
    def SetDiscoveryFilter(self, filters: DBusDict) -> None:
        self.discovery_filter = filters

    @dbus_property(PropertyAccess.READ)
    def Discovering(self) -> DBusBool:
        return self.discovering

    def set_discovering(self, discovering: bool) -> None:
        if discovering != self.discovering:
            self.discovering = discovering
            self.emit_properties_changed({"Discovering": discovering})

    @dbus_property()
    def Powered(self) -> DBusBool:
        return self.powered

    @Powered.setter
    def Powered(self, value: DBusBool) -> None:
        if self.blocked and value:
            raise DBusError("org.bluez.Error.Blocked", "Blocked through rfkill")
        self.powered = value
        self.emit_properties_changed({"Powered": value})


class FakeDevice(ServiceInterface):
    """org.bluez.Device1 of a remote central or peripheral."""

    def __init__(
        self, address: str, connected: bool = True, rssi: int = -60, disconnect_s: float = 0.0
    ) -> None:
        super().__init__("org.bluez.Device1")
        self.address = address
        self.connected = connected
        self.rssi = rssi
        self.disconnect_s = disconnect_s  # how long the link takes to go after Disconnect
        self.disconnects = 0
        self.services_resolved = True  # bluetoothd's GATT discovery of the device is over
        # Connect answers once this is set (the LE connection made); a Disconnect before that
        # cancels it, as in bluetoothd.
        self.connect_gate = asyncio.Event()
        self.connect_gate.set()
        self.connects = 0

    @dbus_property(PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return self.address

    @dbus_property(PropertyAccess.READ)
    def Connected(self) -> DBusBool:
        return self.connected

    @dbus_property(PropertyAccess.READ)
    def RSSI(self) -> DBusInt16:
        return self.rssi

    @dbus_property(PropertyAccess.READ)
    def ServicesResolved(self) -> DBusBool:
        return self.services_resolved

    def set_services_resolved(self, resolved: bool) -> None:
        self.services_resolved = resolved
        self.emit_properties_changed({"ServicesResolved": resolved})

    @dbus_method()
    async def Connect(self) -> None:
        self.connects += 1
        if self.connected:
            return  # bluetoothd answers at once for a device already connected over LE
        await self.connect_gate.wait()
        if self.connect_gate.is_set():
            self.set_connected(True)

    @dbus_method()
    def Disconnect(self) -> None:
        self.disconnects += 1
        if self.disconnect_s:
            asyncio.get_running_loop().call_later(self.disconnect_s, self.set_connected, False)
        else:
            self.set_connected(False)

    def set_connected(self, connected: bool) -> None:
        self.connected = connected
        self.emit_properties_changed({"Connected": connected})


class FakeBlueZ:
    """bluetoothd on one bus connection that owns org.bluez."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.bus: MessageBus | None = None
        self.adapters: dict[str, FakeAdapter] = {}
        self.devices: dict[str, FakeDevice] = {}
        self.calls: list[Call] = []
        self.applications: dict[str, Registration] = {}
        self.advertisements: dict[str, Registration] = {}
        self.fail: dict[str, DBusError] = {}  # member -> the error to answer
        # Each GATT database change with the devices connected then: BlueZ sends each of them
        # Service Changed.
        self.db_changes: list[tuple[str, list[str]]] = []
        # Discovery sessions by adapter path: one per D-Bus sender, as bluetoothd keeps them.
        self.discovery_sessions: dict[str, set[str]] = {}
        self.start_discovery_s = 0.0  # how long StartDiscovery takes to answer
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, adapters: dict[str, FakeAdapter]) -> None:
        """Own org.bluez and export `adapters` (name -> adapter)."""
        self.bus = await MessageBus(bus_address=self.address).connect()
        self.bus.add_message_handler(self._on_message)
        for name, adapter in adapters.items():
            self.add_adapter(name, adapter)
        await self.bus.request_name("org.bluez")

    def stop(self) -> None:
        """bluetoothd exits: the name is released with the connection, nothing is unregistered."""
        assert self.bus is not None
        self.bus.disconnect()
        self.bus = None
        self.applications.clear()
        self.advertisements.clear()

    def add_adapter(self, name: str, adapter: FakeAdapter) -> None:
        assert self.bus is not None
        self.adapters[name] = adapter
        self.bus.export(f"/org/bluez/{name}", adapter)

    def power_off(self, name: str) -> None:
        """The adapter goes off (rfkill, a power cycle): discovery ends, registrations stay."""
        adapter = self.adapters[name]
        self.discovery_sessions.pop(f"/org/bluez/{name}", None)
        adapter.set_discovering(False)
        adapter.powered = False
        adapter.emit_properties_changed({"Powered": False})

    def remove_adapter(self, name: str) -> None:
        assert self.bus is not None
        self.bus.unexport(f"/org/bluez/{name}", self.adapters.pop(name))

    def add_device(
        self, adapter: str, address: str, connected: bool = True, disconnect_s: float = 0.0
    ) -> str:
        assert self.bus is not None
        path = f"/org/bluez/{adapter}/dev_{address.replace(':', '_')}"
        device = FakeDevice(address, connected, disconnect_s=disconnect_s)
        self.devices[path] = device
        self.bus.export(path, device)
        return path

    def calls_to(self, member: str) -> list[Call]:
        return [c for c in self.calls if c.member == member]

    def _on_message(self, msg: Message) -> bool | Message:
        if msg.message_type != MessageType.METHOD_CALL:
            return False
        self.calls.append(
            Call(msg.path or "", msg.interface or "", msg.member or "", msg.signature, msg.body)
        )
        if msg.member in self.fail:
            raise self.fail[msg.member]
        if msg.interface == "org.bluez.Adapter1" and msg.member in DISCOVERY:
            return self._discovery(msg)
        if msg.interface not in (GATT_MANAGER, AD_MANAGER):
            return False
        task = asyncio.get_running_loop().create_task(self._manage(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def _discovery(self, msg: Message) -> bool | Message:
        """StartDiscovery and StopDiscovery per sender, with bluetoothd's errors."""
        path, sender = msg.path or "", msg.sender or ""
        sessions = self.discovery_sessions.setdefault(path, set())
        adapter = self.adapters[path.rsplit("/", 1)[-1]]
        if msg.member == "StartDiscovery":
            if sender in sessions:
                return Message.new_error(msg, IN_PROGRESS, "Operation already in progress")
            sessions.add(sender)  # bluetoothd records the session before it answers
            adapter.set_discovering(True)
            assert self.bus is not None
            reply = Message.new_method_return(msg)
            asyncio.get_running_loop().call_later(self.start_discovery_s, self._send, reply)
            return True
        if sender not in sessions:
            return Message.new_error(msg, "org.bluez.Error.Failed", "No discovery started")
        sessions.discard(sender)
        adapter.set_discovering(bool(sessions))
        return Message.new_method_return(msg)

    def _send(self, message: Message) -> None:
        if self.bus is not None:
            self.bus.send(message)

    async def _manage(self, msg: Message) -> None:
        assert self.bus is not None
        owner, member = msg.sender or "", msg.member
        if member in ("RegisterApplication", "UnregisterApplication"):
            connected = sorted(path for path, d in self.devices.items() if d.connected)
            self.db_changes.append((member, connected))
        registry = {
            "RegisterApplication": self.applications,
            "RegisterAdvertisement": self.advertisements,
        }
        if member in registry and msg.body[0] in registry[member]:
            # bluetoothd keeps registrations across adapter power cycles
            self.bus.send(Message.new_error(msg, "org.bluez.Error.AlreadyExists", "Already Exists"))
            return
        if member == "RegisterApplication":
            (objects,) = await self._call(
                owner,
                msg.body[0],
                "org.freedesktop.DBus.ObjectManager",
                "GetManagedObjects",
                "",
                [],
            )
            self.applications[msg.body[0]] = Registration(owner, msg.body[0], objects)
        elif member == "RegisterAdvertisement":
            (props,) = await self._call(
                owner,
                msg.body[0],
                "org.freedesktop.DBus.Properties",
                "GetAll",
                "s",
                ["org.bluez.LEAdvertisement1"],
            )
            self.advertisements[msg.body[0]] = Registration(owner, msg.body[0], props)
        elif member == "UnregisterApplication":
            self.applications.pop(msg.body[0], None)
        elif member == "UnregisterAdvertisement":
            self.advertisements.pop(msg.body[0], None)
        self.bus.send(Message.new_method_return(msg))

    async def _call(
        self, owner: str, path: str, interface: str, member: str, sig: str, body: list[Any]
    ) -> list[Any]:
        assert self.bus is not None
        reply = await self.bus.call(
            Message(
                destination=owner,
                path=path,
                interface=interface,
                member=member,
                signature=sig,
                body=body,
            )
        )
        assert reply is not None
        assert reply.message_type == MessageType.METHOD_RETURN, reply.body
        return list(reply.body)

    async def write(self, owner: str, char_path: str, device: str, value: bytes, mtu: int) -> None:
        """Deliver a central's write without response the way bluetoothd calls WriteValue."""
        options = {
            "device": Variant("o", device),
            "mtu": Variant("q", mtu),
            "type": Variant("s", "command"),
            "link": Variant("s", "LE"),
        }
        await self._call(
            owner,
            char_path,
            "org.bluez.GattCharacteristic1",
            "WriteValue",
            "aya{sv}",
            [value, options],
        )

    async def write_request(
        self, owner: str, char_path: str, device: str, value: bytes, mtu: int, kind: str = "request"
    ) -> str | None:
        """Deliver a central's write with response (`kind` "command": without); return the
        error name answered, if any (bluetoothd drops it for a command)."""
        assert self.bus is not None
        options = {
            "device": Variant("o", device),
            "mtu": Variant("q", mtu),
            "type": Variant("s", kind),
            "link": Variant("s", "LE"),
        }
        reply = await self.bus.call(
            Message(
                destination=owner,
                path=char_path,
                interface="org.bluez.GattCharacteristic1",
                member="WriteValue",
                signature="aya{sv}",
                body=[value, options],
            )
        )
        assert reply is not None
        return reply.error_name if reply.message_type == MessageType.ERROR else None


class NotifyTap:
    """Collects the Value changes a transport emits on its TX characteristic."""

    def __init__(self, bus: MessageBus, tx_path: str) -> None:
        self.values: list[bytes] = []
        self.changed = asyncio.Event()
        self._path = tx_path
        bus.add_message_handler(self._on_message)

    @staticmethod
    async def attach(bus: MessageBus, owner: str, tx_path: str) -> "NotifyTap":
        tap = NotifyTap(bus, tx_path)
        rule = (
            f"type='signal',sender='{owner}',path='{tx_path}',"
            "interface='org.freedesktop.DBus.Properties'"
        )
        await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[rule],
            )
        )
        return tap

    def _on_message(self, msg: Message) -> bool:
        if (
            msg.message_type == MessageType.SIGNAL
            and msg.path == self._path
            and msg.member == "PropertiesChanged"
            and "Value" in msg.body[1]
        ):
            self.values.append(bytes(msg.body[1]["Value"].value))
            self.changed.set()
        return False

    async def wait(self, count: int, within_s: float = 5.0) -> list[bytes]:
        async with asyncio.timeout(within_s):
            while len(self.values) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.values


async def eventually(predicate: Callable[[], bool], within_s: float = 5.0) -> None:
    """Poll `predicate` (state of the fake, which has no event to wait on) until it holds."""
    async with asyncio.timeout(within_s):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
