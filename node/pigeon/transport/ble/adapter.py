"""One BlueZ adapter over dbus-fast: chosen by name, powered on, watched for loss and return.

`BlueZAdapter.open` connects to the system bus (or `bus_address`, for tests), finds the
configured adapter, powers it on and then follows BlueZ: an adapter removed, powered off or a
bluetoothd that exits is reported as `adapter_lost`; an adapter (re)added or a bluetoothd that
returns is powered on again and reported as `adapter_ready`. Devices are followed too, for link
state and RSSI per neighbour. dbus-fast is imported lazily, only here and in `peripheral`.

Raises (from `open` and `call`): BlueZUnavailable, AdapterNotFound, AdapterBlocked,
PermissionDenied, BlueZCallFailed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Protocol

from pigeon.transport.ble.errors import (
    AdapterBlocked,
    AdapterNotFound,
    AlreadyRegistered,
    BleError,
    BlueZCallFailed,
    BlueZUnavailable,
    PermissionDenied,
)

if TYPE_CHECKING:
    from dbus_fast import Message
    from dbus_fast.aio import MessageBus

_LOGGER = logging.getLogger(__name__)

BLUEZ: Final = "org.bluez"
ADAPTER_IFACE: Final = "org.bluez.Adapter1"
DEVICE_IFACE: Final = "org.bluez.Device1"
PROPS_IFACE: Final = "org.freedesktop.DBus.Properties"
OM_IFACE: Final = "org.freedesktop.DBus.ObjectManager"
RECOVER_RETRY_S: Final = 1.0
CALL_TIMEOUT_S: Final = 25.0  # libdbus's default reply timeout
DISCONNECT_POLL_S: Final = 0.05
# How long a Disconnect waits for bluetoothd's GATT discovery of the device to finish (see
# `disconnect`). Discovery takes well under a second; a device still discovering after this is
# cut anyway.
DISCOVERY_WAIT_S: Final = 5.0
_MATCH_RULES: Final = (
    f"type='signal',sender='{BLUEZ}',interface='{OM_IFACE}'",
    f"type='signal',sender='{BLUEZ}',interface='{PROPS_IFACE}',member='PropertiesChanged'",
    f"type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',arg0='{BLUEZ}'",
)
_UNAVAILABLE: Final = (
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.NoReply",
    "org.freedesktop.DBus.Error.Disconnected",
)


@dataclass(frozen=True, slots=True)
class Neighbour:
    """What BlueZ says about one remote device seen through our adapter."""

    path: str
    address: str
    connected: bool
    rssi: int | None
    services_resolved: bool = True  # bluetoothd's GATT discovery of it is over


class AdapterListener(Protocol):
    """What the adapter reports; implementations must not block."""

    def adapter_ready(self, adapter_path: str) -> None:
        """The adapter exists and is powered: (re)register and (re)start."""

    def adapter_lost(self, reason: str) -> None:
        """The adapter or bluetoothd went away: every link through it is gone."""

    def neighbour_changed(self, neighbour: Neighbour) -> None:
        """A device's connection state or RSSI changed."""


def translate_dbus_error(name: str, text: str, what: str) -> BleError:
    """The typed error for a D-Bus error `name` answered to `what`."""
    if name == "org.freedesktop.DBus.Error.AccessDenied":
        return PermissionDenied(f"{what}: D-Bus policy denies access to BlueZ ({text})")
    if name in _UNAVAILABLE:
        return BlueZUnavailable(f"{what}: bluetoothd is not running ({name})")
    if name == "org.bluez.Error.Blocked" or "rfkill" in text.lower():
        return AdapterBlocked(f"{what}: adapter blocked by rfkill (try `rfkill unblock bluetooth`)")
    if name in ("org.freedesktop.DBus.Error.UnknownObject", "org.bluez.Error.NotFound"):
        return AdapterNotFound(f"{what}: {text}")
    if name == "org.bluez.Error.AlreadyExists":
        return AlreadyRegistered(f"{what}: {text}")
    return BlueZCallFailed(f"{what}: {name}: {text}")


def _unpack(props: dict[str, Any]) -> dict[str, Any]:
    return {key: getattr(value, "value", value) for key, value in props.items()}


class BlueZAdapter:
    """The configured adapter; `open` once, then `call` BlueZ through it and `close`."""

    def __init__(self, name: str, bus_address: str | None = None) -> None:
        self.name = name
        self.path = f"/org/bluez/{name}"
        self.address = ""  # the adapter's own, once open
        self._bus_address = bus_address
        self._bus: MessageBus | None = None
        self._listener: AdapterListener | None = None
        self._ready = False
        self._closed = False
        self._neighbours: dict[str, Neighbour] = {}
        self._recovery: asyncio.Task[None] | None = None
        self._daemon_restarted = False

    @property
    def bus(self) -> MessageBus:
        """The connected bus (the peripheral exports its objects on it)."""
        if self._bus is None:
            raise BlueZUnavailable("the adapter is not open")
        return self._bus

    @property
    def ready(self) -> bool:
        """Whether the adapter is present and powered."""
        return self._ready

    async def discovering(self) -> bool:
        """Whether bluetoothd says the adapter is discovering now (for any of its clients)."""
        (value,) = await self.call(
            self.path, PROPS_IFACE, "Get", "ss", [ADAPTER_IFACE, "Discovering"]
        )
        return bool(value.value)

    async def reset_discovery(self) -> None:
        """Start and stop a discovery of our own: bluetoothd then clears a discovering flag it
        kept with no session left (BlueZ issue 807), without touching anyone else's session.
        Raises like `call`."""
        await self.call(self.path, ADAPTER_IFACE, "StartDiscovery")
        await self.call(self.path, ADAPTER_IFACE, "StopDiscovery")

    def neighbours(self) -> dict[str, Neighbour]:
        """Every device BlueZ knows on this adapter, by object path."""
        return dict(self._neighbours)

    async def open(self, listener: AdapterListener) -> None:
        """Connect, find and power the adapter, and start watching BlueZ."""
        from dbus_fast import BusType
        from dbus_fast.aio import MessageBus

        self._listener = listener
        try:
            if self._bus_address is None:
                bus = MessageBus(bus_type=BusType.SYSTEM)
            else:
                bus = MessageBus(bus_address=self._bus_address)
            self._bus = await bus.connect()
        except (OSError, ValueError) as exc:
            raise BlueZUnavailable(f"cannot connect to the D-Bus system bus: {exc}") from exc
        self._bus.add_message_handler(self._on_message)
        for rule in _MATCH_RULES:
            await self.call(
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "AddMatch",
                "s",
                [rule],
                destination="org.freedesktop.DBus",
            )
        await self._bring_up()

    async def close(self) -> None:
        """Stop watching and disconnect from the bus; idempotent."""
        self._closed = True
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        if self._bus is not None:
            self._bus.disconnect()
        self._ready = False

    async def call(
        self,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: list[Any] | None = None,
        destination: str = BLUEZ,
        within_s: float = CALL_TIMEOUT_S,
    ) -> list[Any]:
        """Call a method and return the reply body; raises the typed error BlueZ's reply maps to
        (BlueZCallFailed without a reply in `within_s`)."""
        from dbus_fast import Message, MessageType

        message = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=body or [],
        )
        try:
            async with asyncio.timeout(within_s):
                reply = await self.bus.call(message)
        except (OSError, EOFError) as exc:
            raise BlueZUnavailable(f"{interface}.{member}: the bus connection failed") from exc
        except TimeoutError:
            raise BlueZCallFailed(f"{interface}.{member}: no reply in {within_s} s") from None
        if reply is None:
            raise BlueZUnavailable(f"{interface}.{member}: no reply")
        if reply.message_type == MessageType.ERROR:
            text = str(reply.body[0]) if reply.body else ""
            raise translate_dbus_error(reply.error_name or "", text, f"{interface}.{member}")
        return list(reply.body)

    async def disconnect_all(self, within_s: float) -> list[str]:
        """Disconnect every connected device and wait until BlueZ reports each one gone.

        Returns the addresses still connected after `within_s` (empty when all went).
        """
        connected = [n for n in self._neighbours.values() if n.connected]
        await asyncio.gather(*(self.disconnect(n.path) for n in connected))
        await self._poll(lambda: not any(n.connected for n in self._neighbours.values()), within_s)
        return [n.address for n in self._neighbours.values() if n.connected]

    def device_path(self, address: str) -> str:
        """BlueZ's object path of the device at `address` on this adapter."""
        return f"{self.path}/dev_{address.replace(':', '_')}"

    async def until_discovered(self, path: str) -> None:
        """Until bluetoothd's GATT discovery of the connected device at `path` is over, or it is
        gone, or DISCOVERY_WAIT_S passed.

        bluetoothd discovers every device that connects, also one that dialed us. A Disconnect
        during that discovery makes BlueZ 5.66 free the device's attribute cache while its
        database hash read is still on the air, and the answer is written into the freed cache:
        a use-after-free that AddressSanitizer showed in the VM tier (gatt_db_attribute_write
        from db_hash_read_cb, freed by dev_disconnect -> gatt_cache_cleanup) and that crashed
        bluetoothd there (SIGSEGV). Every Disconnect of ours waits for this first.
        """

        def settled() -> bool:
            neighbour = self._neighbours.get(path)
            return neighbour is None or not neighbour.connected or neighbour.services_resolved

        if not await self._poll(settled, DISCOVERY_WAIT_S):
            _LOGGER.info("%s still discovering after %.0f s", path, DISCOVERY_WAIT_S)

    async def disconnect(self, path: str, within_s: float = CALL_TIMEOUT_S) -> None:
        """Ask bluetoothd to cut the connection to the device at `path` once its discovery is
        over (`until_discovered`), waiting at most `within_s` for the answer; never raises
        BleError or TimeoutError."""
        await self.until_discovered(path)
        neighbour = self._neighbours.get(path)
        if neighbour is not None and not neighbour.connected:
            return
        with contextlib.suppress(BleError, TimeoutError):
            async with asyncio.timeout(within_s):
                await self.call(path, DEVICE_IFACE, "Disconnect")

    async def connect(self, path: str, within_s: float) -> None:
        """Connect to the device at `path` (Device1.Connect), or stop waiting for that as soon as
        the device is connected some other way: the peer dialed us meanwhile, and both
        directions share one LE connection. Without a connection after `within_s` it cancels the
        pending connect (a Disconnect, as BlueZ asks) and raises TimeoutError; raises BleError
        when BlueZ refuses.

        bleak's own connect, on a timeout or a cancellation, sends Disconnect whatever happened
        meanwhile, and a connection the peer made while ours was pending carries the peer's link
        to us: the VM tier saw a dial that timed out cut two live links that way. bleak skips
        its Connect for a device that is connected already, so callers connect here first.
        """
        if self._connected(path):
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        # Our deadline, not the call's: the call only must not end first.
        connecting = asyncio.ensure_future(
            self.call(path, DEVICE_IFACE, "Connect", within_s=within_s + CALL_TIMEOUT_S)
        )
        try:
            while not connecting.done() and not self._connected(path):
                left = deadline - loop.time()
                if left <= 0:
                    break
                await asyncio.wait({connecting}, timeout=min(DISCONNECT_POLL_S, left))
        except asyncio.CancelledError:
            connecting.cancel()
            if not self._connected(path):
                await asyncio.shield(self._cancel_connect(path))
            raise
        if connecting.done():
            try:
                connecting.result()
            except BleError:
                if not self._connected(path):
                    raise
            return
        connecting.cancel()  # our pending connect's reply no longer matters
        with contextlib.suppress(asyncio.CancelledError, BleError):
            await connecting
        if self._connected(path):
            return
        await self._cancel_connect(path)
        raise TimeoutError(f"no connection to {path} in {within_s} s")

    def _connected(self, path: str) -> bool:
        neighbour = self._neighbours.get(path)
        return neighbour is not None and neighbour.connected

    async def _cancel_connect(self, path: str) -> None:
        with contextlib.suppress(BleError, TimeoutError):
            async with asyncio.timeout(CALL_TIMEOUT_S):
                await self.call(path, DEVICE_IFACE, "Disconnect")

    async def wait_disconnected(self, path: str, within_s: float) -> bool:
        """Whether the device at `path` is (or becomes) disconnected within `within_s`."""

        def gone() -> bool:
            neighbour = self._neighbours.get(path)
            return neighbour is None or not neighbour.connected

        return await self._poll(gone, within_s)

    @staticmethod
    async def _poll(done: Callable[[], bool], within_s: float) -> bool:
        """Whether `done()` holds now or within `within_s` (BlueZ's device state, which arrives
        as signals, is checked every DISCONNECT_POLL_S)."""
        deadline = asyncio.get_running_loop().time() + within_s
        while not done():
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(DISCONNECT_POLL_S)
        return True

    async def set_property(
        self, path: str, interface: str, name: str, value: Any, sig: str
    ) -> None:
        """Set one property of a BlueZ object; raises like `call`."""
        from dbus_fast import Variant

        await self.call(path, PROPS_IFACE, "Set", "ssv", [interface, name, Variant(sig, value)])

    async def _bring_up(self) -> None:
        (objects,) = await self.call("/", OM_IFACE, "GetManagedObjects")
        adapters = sorted(p for p, ifaces in objects.items() if ADAPTER_IFACE in ifaces)
        if self.path not in adapters:
            names = ", ".join(p.rsplit("/", 1)[-1] for p in adapters) or "none"
            raise AdapterNotFound(f"adapter {self.name} not found (present: {names})")
        props = _unpack(objects[self.path][ADAPTER_IFACE])
        self.address = str(props.get("Address", ""))
        self._neighbours = {}
        for path, ifaces in objects.items():
            if DEVICE_IFACE in ifaces and path.startswith(self.path + "/"):
                self._update_device(path, _unpack(ifaces[DEVICE_IFACE]), report=False)
        if props.get("PowerState") == "off-blocked":
            raise AdapterBlocked(f"adapter {self.name} is blocked by rfkill")
        if self._daemon_restarted and props.get("Powered", False):
            # A bluetoothd that died left the controller as it was: LE connections up and, if
            # it was scanning, the kernel's discovery running, so the new daemon's first scans
            # are refused (InProgress) and it adopts connections it never set up. A power
            # cycle starts the controller and the new daemon from nothing.
            _LOGGER.info("power-cycling adapter %s after bluetoothd restarted", self.name)
            await self.set_property(self.path, ADAPTER_IFACE, "Powered", False, "b")
            props["Powered"] = False
        self._daemon_restarted = False
        if not props.get("Powered", False):
            _LOGGER.info("powering on adapter %s", self.name)
            await self.set_property(self.path, ADAPTER_IFACE, "Powered", True, "b")
        self._set_ready()

    def _set_ready(self) -> None:
        if self._ready or self._closed:
            return
        self._ready = True
        _LOGGER.info("adapter %s ready", self.name)
        if self._listener is not None:
            self._listener.adapter_ready(self.path)

    def _set_lost(self, reason: str) -> None:
        if not self._ready:
            return
        self._ready = False
        _LOGGER.warning("adapter %s lost: %s", self.name, reason)
        for path, neighbour in list(self._neighbours.items()):
            if neighbour.connected:
                self._neighbours[path] = replace(neighbour, connected=False)
        if self._listener is not None:
            self._listener.adapter_lost(reason)

    def _start_recovery(self) -> None:
        if self._closed or (self._recovery is not None and not self._recovery.done()):
            return
        self._recovery = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        while not self._closed and not self._ready:
            try:
                await self._bring_up()
            except BleError as exc:
                _LOGGER.info("adapter %s not back yet: %s", self.name, exc)
                await asyncio.sleep(RECOVER_RETRY_S)

    def _on_message(self, msg: Message) -> bool:
        from dbus_fast import MessageType

        if msg.message_type != MessageType.SIGNAL:
            return False
        if msg.member == "NameOwnerChanged" and msg.body and msg.body[0] == BLUEZ:
            self._on_owner_changed(str(msg.body[2]))
        elif msg.interface == OM_IFACE and msg.member == "InterfacesAdded":
            self._on_added(msg.body[0], msg.body[1])
        elif msg.interface == OM_IFACE and msg.member == "InterfacesRemoved":
            self._on_removed(msg.body[0], msg.body[1])
        elif msg.interface == PROPS_IFACE and msg.member == "PropertiesChanged":
            self._on_properties(msg.path or "", msg.body[0], _unpack(msg.body[1]))
        return False

    def _on_owner_changed(self, new_owner: str) -> None:
        if not new_owner:
            self._daemon_restarted = True
            self._set_lost("bluetoothd stopped")
        else:
            _LOGGER.info("bluetoothd is back on the bus")
            self._start_recovery()

    def _on_added(self, path: str, interfaces: dict[str, dict[str, Any]]) -> None:
        if path == self.path and ADAPTER_IFACE in interfaces:
            self._start_recovery()
        elif DEVICE_IFACE in interfaces and path.startswith(self.path + "/"):
            self._update_device(path, _unpack(interfaces[DEVICE_IFACE]), report=True)

    def _on_removed(self, path: str, interfaces: list[str]) -> None:
        if path == self.path and ADAPTER_IFACE in interfaces:
            self._set_lost("adapter removed")
        elif DEVICE_IFACE in interfaces and path in self._neighbours:
            gone = replace(self._neighbours.pop(path), connected=False)
            if self._listener is not None:
                self._listener.neighbour_changed(gone)

    def _on_properties(self, path: str, interface: str, changed: dict[str, Any]) -> None:
        if path == self.path and interface == ADAPTER_IFACE and "Powered" in changed:
            if changed["Powered"]:
                self._set_ready()
            else:
                self._set_lost("adapter powered off")
                self._start_recovery()
        elif interface == DEVICE_IFACE and path.startswith(self.path + "/"):
            self._update_device(path, changed, report=True)

    def _update_device(self, path: str, props: dict[str, Any], *, report: bool) -> None:
        old = self._neighbours.get(path, Neighbour(path, "", False, None, False))
        new = Neighbour(
            path,
            str(props.get("Address", old.address)),
            bool(props.get("Connected", old.connected)),
            int(props["RSSI"]) if "RSSI" in props else old.rssi,
            bool(props.get("ServicesResolved", old.services_resolved)),
        )
        self._neighbours[path] = new
        if report and new != old and self._listener is not None:
            self._listener.neighbour_changed(new)
