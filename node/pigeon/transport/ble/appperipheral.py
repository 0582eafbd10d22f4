"""The Pigeon app's GATT service and advertisement as dbus-fast objects, for `BlePeripheral`.

They join our GATT application as a `GattExtension` (one RegisterApplication holds every
service). Centrals write app fragments to the inbound characteristic with response (a refused
write gets an ATT error); the node notifies fragments on the outbound one.
"""

from typing import Final

from dbus_fast.annotations import DBusStr
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import dbus_property

from pigeon.transport.ble.appgatt import (
    APP_LOCAL_NAME,
    APP_RX_UUID,
    APP_SERVICE_UUID,
    APP_TX_UUID,
)
from pigeon.transport.ble.gattobjects import (
    Advertisement,
    Characteristic,
    GattService,
    ServiceObjects,
)
from pigeon.transport.ble.peripheral import APP_PATH
from pigeon.transport.ble.profile import WriteHandler

APP_SERVICE_PATH: Final = APP_PATH + "/service1"
APP_RX_PATH: Final = APP_SERVICE_PATH + "/char0"
APP_TX_PATH: Final = APP_SERVICE_PATH + "/char1"
APP_ADVERT_PATH: Final = APP_PATH + "/advert1"


class AppAdvertisement(Advertisement):
    """The app's service UUID and the local name the app advertises."""

    def __init__(self) -> None:
        super().__init__(APP_SERVICE_UUID, "app")

    @dbus_property(PropertyAccess.READ)
    def LocalName(self) -> DBusStr:
        return APP_LOCAL_NAME


def app_gatt_objects(on_write: WriteHandler) -> ServiceObjects:
    """The app's service, its two characteristics and its advertisement."""
    tx = Characteristic(APP_TX_UUID, APP_SERVICE_PATH, ["notify"])
    return ServiceObjects(
        (APP_SERVICE_PATH, GattService(APP_SERVICE_UUID)),
        [
            (APP_RX_PATH, Characteristic(APP_RX_UUID, APP_SERVICE_PATH, ["write"], on_write)),
            (APP_TX_PATH, tx),
        ],
        tx,
        lambda: (APP_ADVERT_PATH, AppAdvertisement()),
    )
