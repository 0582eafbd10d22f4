"""bitchat's GATT service and advertisement as dbus-fast objects, for `BlePeripheral`.

They join our GATT application as a `GattExtension` beside ours and the Pigeon app's. bitchat's
one characteristic is read, written with and without response, and notified, as bitchat's own
peripheral declares it (`BLEService+LinkLayerPeripheralRole.swift`): centrals write packets to it
(BlueZ calls `WriteValue(value, options)` with the writer's `device` path and ATT `mtu`) and
subscribe to its notifications. A refused write with response gets an ATT error; one without
response is dropped (BlueZ sends a write command no reply). Notifications are PropertiesChanged
signals on the characteristic's Value, which BlueZ 5.66 sends to every subscribed central.
"""

import logging
from typing import Annotated, Final

from dbus_fast import DBusError
from dbus_fast.annotations import DBusBool, DBusBytes, DBusDict, DBusSignature, DBusStr
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from pigeon.transport.ble.advert import AdvertSpec, bitchat_advert
from pigeon.transport.ble.appperipheral import REFUSED_ERROR, WriteRefused
from pigeon.transport.ble.bitchatgatt import BITCHAT_CHARACTERISTIC_UUID, BITCHAT_SERVICE_UUID
from pigeon.transport.ble.peripheral import APP_PATH, DBusStrList
from pigeon.transport.ble.profile import PhoneWriteHandler

_LOGGER = logging.getLogger(__name__)

BITCHAT_SERVICE_PATH: Final = APP_PATH + "/service2"
BITCHAT_CHAR_PATH: Final = BITCHAT_SERVICE_PATH + "/char0"
BITCHAT_ADVERT_PATH: Final = APP_PATH + "/advert2"


class BitchatGattService(ServiceInterface):
    """org.bluez.GattService1: bitchat's service (member names are BlueZ's)."""

    def __init__(self) -> None:
        super().__init__("org.bluez.GattService1")

    @dbus_property(PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return BITCHAT_SERVICE_UUID

    @dbus_property(PropertyAccess.READ)
    def Primary(self) -> DBusBool:
        return True


class BitchatCharacteristic(ServiceInterface):
    """bitchat's one characteristic: packets written in, packets notified out."""

    def __init__(self, on_write: PhoneWriteHandler) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._on_write = on_write
        self._value = b""
        self.notifying = False

    @dbus_property(PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return BITCHAT_CHARACTERISTIC_UUID

    @dbus_property(PropertyAccess.READ)
    def Service(self) -> Annotated[str, DBusSignature("o")]:
        return BITCHAT_SERVICE_PATH

    @dbus_property(PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return ["read", "write", "write-without-response", "notify"]

    @dbus_property(PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self._value

    @dbus_property(PropertyAccess.READ)
    def Notifying(self) -> DBusBool:
        return self.notifying

    @dbus_method()
    def ReadValue(self, options: DBusDict) -> DBusBytes:
        # bitchat's peripheral answers no reads with data: the value says nothing.
        return b""

    @dbus_method()
    def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:
        device = options.get("device")
        mtu = options.get("mtu")
        if device is None:
            _LOGGER.warning("a bitchat write without a device option was refused")
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


class BitchatAdvertisement(ServiceInterface):
    """org.bluez.LEAdvertisement1: connectable, bitchat's service UUID alone (`advert`)."""

    def __init__(self, spec: AdvertSpec) -> None:
        super().__init__("org.bluez.LEAdvertisement1")
        self._spec = spec

    @dbus_property(PropertyAccess.READ)
    def Type(self) -> DBusStr:
        return "peripheral"

    @dbus_property(PropertyAccess.READ)
    def ServiceUUIDs(self) -> DBusStrList:
        return [self._spec.service_uuid]

    @dbus_method()
    def Release(self) -> None:
        _LOGGER.info("BlueZ released the bitchat advertisement")


class BitchatGattObjects:
    """bitchat's service, characteristic and advertisement: a `GattExtension`."""

    def __init__(self, on_write: PhoneWriteHandler) -> None:
        self._service = BitchatGattService()
        self._char = BitchatCharacteristic(on_write)

    def objects(self) -> list[tuple[str, ServiceInterface]]:
        """The service and its characteristic, by path."""
        return [(BITCHAT_SERVICE_PATH, self._service), (BITCHAT_CHAR_PATH, self._char)]

    def advertisement(self) -> tuple[str, ServiceInterface]:
        """A fresh advertisement object (BlueZ may have released the last one)."""
        return BITCHAT_ADVERT_PATH, BitchatAdvertisement(bitchat_advert())

    def notify(self, value: bytes) -> None:
        """Notify `value` to every central subscribed to the characteristic."""
        self._char.notify(value)
