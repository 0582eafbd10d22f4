"""The Pigeon app's GATT service and advertisement as dbus-fast objects, for `BlePeripheral`.

They join our GATT application as a `GattExtension` (one RegisterApplication holds both
services). Centrals write app fragments to the inbound characteristic with response: BlueZ calls
`WriteValue(value, options)` with the writer's `device` path and ATT `mtu`, and answers the
central with our reply (an error reply becomes an ATT error). Notifications are
PropertiesChanged signals on the outbound characteristic's Value, which BlueZ 5.66 sends to
every subscribed central: there is no per-device notification.
"""

import logging
from collections.abc import Callable
from typing import Annotated, Final

from dbus_fast import DBusError
from dbus_fast.annotations import DBusBool, DBusBytes, DBusDict, DBusSignature, DBusStr
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from pigeon.transport.ble.appgatt import (
    APP_LOCAL_NAME,
    APP_RX_UUID,
    APP_SERVICE_UUID,
    APP_TX_UUID,
)
from pigeon.transport.ble.peripheral import APP_PATH, DBusStrList

_LOGGER = logging.getLogger(__name__)

APP_SERVICE_PATH: Final = APP_PATH + "/service1"
APP_RX_PATH: Final = APP_SERVICE_PATH + "/char0"
APP_TX_PATH: Final = APP_SERVICE_PATH + "/char1"
APP_ADVERT_PATH: Final = APP_PATH + "/advert1"
# The error a refused write answers with (BlueZ maps it to an ATT error for the central).
REFUSED_ERROR: Final = "org.bluez.Error.NotPermitted"


class WriteRefused(Exception):
    """An app write handler refuses this write: the central gets an ATT error."""


# (device object path, written value, ATT MTU if BlueZ told it); raises WriteRefused
AppWriteHandler = Callable[[str, bytes, int | None], None]


class AppGattService(ServiceInterface):
    """org.bluez.GattService1: the app's service (member names are BlueZ's)."""

    def __init__(self) -> None:
        super().__init__("org.bluez.GattService1")

    @dbus_property(PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return APP_SERVICE_UUID

    @dbus_property(PropertyAccess.READ)
    def Primary(self) -> DBusBool:
        return True


class AppRxCharacteristic(ServiceInterface):
    """The inbound characteristic: centrals write fragments with response."""

    def __init__(self, on_write: AppWriteHandler) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._on_write = on_write

    @dbus_property(PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return APP_RX_UUID

    @dbus_property(PropertyAccess.READ)
    def Service(self) -> Annotated[str, DBusSignature("o")]:
        return APP_SERVICE_PATH

    @dbus_property(PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return ["write"]

    @dbus_method()
    def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:
        device = options.get("device")
        mtu = options.get("mtu")
        if device is None:
            _LOGGER.warning("an app write without a device option was refused")
            raise DBusError(REFUSED_ERROR, "no device")
        try:
            self._on_write(str(device.value), bytes(value), None if mtu is None else int(mtu.value))
        except WriteRefused as exc:
            raise DBusError(REFUSED_ERROR, str(exc)) from exc


class AppTxCharacteristic(ServiceInterface):
    """The outbound characteristic the node notifies fragments on."""

    def __init__(self) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._value = b""
        self.notifying = False

    @dbus_property(PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return APP_TX_UUID

    @dbus_property(PropertyAccess.READ)
    def Service(self) -> Annotated[str, DBusSignature("o")]:
        return APP_SERVICE_PATH

    @dbus_property(PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return ["notify"]

    @dbus_property(PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self._value

    @dbus_property(PropertyAccess.READ)
    def Notifying(self) -> DBusBool:
        return self.notifying

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


class AppAdvertisement(ServiceInterface):
    """org.bluez.LEAdvertisement1: connectable, the app's service UUID and local name."""

    def __init__(self) -> None:
        super().__init__("org.bluez.LEAdvertisement1")

    @dbus_property(PropertyAccess.READ)
    def Type(self) -> DBusStr:
        return "peripheral"

    @dbus_property(PropertyAccess.READ)
    def ServiceUUIDs(self) -> DBusStrList:
        return [APP_SERVICE_UUID]

    @dbus_property(PropertyAccess.READ)
    def LocalName(self) -> DBusStr:
        return APP_LOCAL_NAME

    @dbus_method()
    def Release(self) -> None:
        _LOGGER.info("BlueZ released the app advertisement")


class AppGattObjects:
    """The app's service, characteristics and advertisement: a `GattExtension`."""

    def __init__(self, on_write: AppWriteHandler) -> None:
        self._service = AppGattService()
        self._rx = AppRxCharacteristic(on_write)
        self._tx = AppTxCharacteristic()

    def objects(self) -> list[tuple[str, ServiceInterface]]:
        """The service and its two characteristics, by path."""
        return [(APP_SERVICE_PATH, self._service), (APP_RX_PATH, self._rx), (APP_TX_PATH, self._tx)]

    def advertisement(self) -> tuple[str, ServiceInterface]:
        """A fresh advertisement object (BlueZ may have released the last one)."""
        return APP_ADVERT_PATH, AppAdvertisement()

    def notify(self, value: bytes) -> None:
        """Notify `value` to every central subscribed to the outbound characteristic."""
        self._tx.notify(value)
