"""The dbus-fast objects every service of the node exports to BlueZ: a GATT service, its
characteristics and its advertisement (member names are BlueZ's, hence CamelCase).

BlueZ calls a characteristic's `WriteValue(value, options)` with the writer's `device` path and
ATT `mtu`; an error reply becomes an ATT error for a write with response, and nothing for a write
without response (a write command has no reply). Notifications are PropertiesChanged signals on
the characteristic's Value, which BlueZ 5.66 sends to every subscribed central: there is no
per-device notification.
"""

import logging
from collections.abc import Callable
from typing import Annotated, Final

from dbus_fast import DBusError
from dbus_fast.annotations import DBusBool, DBusBytes, DBusDict, DBusSignature, DBusStr
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from pigeon.transport.ble.profile import WriteHandler

_LOGGER = logging.getLogger(__name__)

DBusStrList = Annotated[list[str], DBusSignature("as")]
# The error a refused write answers with (BlueZ maps it to an ATT error for the central).
REFUSED_ERROR: Final = "org.bluez.Error.NotPermitted"


class WriteRefused(Exception):
    """A write handler refuses this write: the central gets an ATT error."""


class GattService(ServiceInterface):
    """org.bluez.GattService1: one primary service."""

    def __init__(self, uuid: str) -> None:
        super().__init__("org.bluez.GattService1")
        self._uuid = uuid

    @dbus_property(PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._uuid

    @dbus_property(PropertyAccess.READ)
    def Primary(self) -> DBusBool:
        return True


class Characteristic(ServiceInterface):
    """org.bluez.GattCharacteristic1: written to through `on_write` (if its flags allow writes),
    notified through `notify` (if they allow notifications). A read answers nothing: no service
    of ours keeps a value worth reading."""

    def __init__(
        self, uuid: str, service_path: str, flags: list[str], on_write: WriteHandler | None = None
    ) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._uuid = uuid
        self._service_path = service_path
        self._flags = flags
        self._on_write = on_write
        self._value = b""
        self.notifying = False

    @dbus_property(PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._uuid

    @dbus_property(PropertyAccess.READ)
    def Service(self) -> Annotated[str, DBusSignature("o")]:
        return self._service_path

    @dbus_property(PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return self._flags

    @dbus_property(PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self._value

    @dbus_property(PropertyAccess.READ)
    def Notifying(self) -> DBusBool:
        return self.notifying

    @dbus_method()
    def ReadValue(self, options: DBusDict) -> DBusBytes:
        return b""

    @dbus_method()
    def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:
        device = options.get("device")
        mtu = options.get("mtu")
        if self._on_write is None:
            raise DBusError(REFUSED_ERROR, "not writable")
        if device is None:
            _LOGGER.warning("a write without a device option was refused")
            raise DBusError(REFUSED_ERROR, "no device")
        try:
            self._on_write(str(device.value), bytes(value), None if mtu is None else int(mtu.value))
        except WriteRefused as exc:
            raise DBusError(REFUSED_ERROR, str(exc)) from exc

    @dbus_method()
    def StartNotify(self) -> None:
        self.notifying = True

    @dbus_method()
    def StopNotify(self) -> None:
        self.notifying = False

    def notify(self, value: bytes) -> None:
        """Send `value` to every subscribed central."""
        self._value = value
        self.emit_properties_changed({"Value": value})


class Advertisement(ServiceInterface):
    """org.bluez.LEAdvertisement1: connectable, one service UUID. Services that advertise more
    (a local name, manufacturer data) add the property in a subclass: BlueZ advertises every
    property an advertisement object has."""

    def __init__(self, service_uuid: str, name: str) -> None:
        super().__init__("org.bluez.LEAdvertisement1")
        self._service_uuid = service_uuid
        self._name = name  # the service's word in logs
        self.released = False

    @dbus_property(PropertyAccess.READ)
    def Type(self) -> DBusStr:
        return "peripheral"

    @dbus_property(PropertyAccess.READ)
    def ServiceUUIDs(self) -> DBusStrList:
        return [self._service_uuid]

    @dbus_method()
    def Release(self) -> None:
        self.released = True
        _LOGGER.info("BlueZ released the %s advertisement", self._name)


class ServiceObjects:
    """One phone service's objects (its service, characteristics and advertisement): a
    `peripheral.GattExtension` that notifies on `outbound`."""

    def __init__(
        self,
        service: tuple[str, GattService],
        characteristics: list[tuple[str, Characteristic]],
        outbound: Characteristic,
        advertisement: Callable[[], tuple[str, Advertisement]],
    ) -> None:
        self._objects: list[tuple[str, ServiceInterface]] = [service, *characteristics]
        self._outbound = outbound
        self._advertisement = advertisement

    def objects(self) -> list[tuple[str, ServiceInterface]]:
        """The service and its characteristics, by path."""
        return list(self._objects)

    def advertisement(self) -> tuple[str, ServiceInterface]:
        """A fresh advertisement object (BlueZ may have released the last one)."""
        return self._advertisement()

    def notify(self, value: bytes) -> None:
        """Notify `value` to every central subscribed to the outbound characteristic."""
        self._outbound.notify(value)
