"""bitchat's GATT service and advertisement as dbus-fast objects, for `BlePeripheral`.

They join our GATT application as a `GattExtension` beside ours and the Pigeon app's. bitchat's
one characteristic is read, written with and without response, and notified, as bitchat's own
peripheral declares it (`BLEService+LinkLayerPeripheralRole.swift`): centrals write packets to it
and subscribe to its notifications. It reads as nothing (bitchat's peripheral answers no reads
with data). The advertisement carries bitchat's service UUID alone (`advert`).
"""

from typing import Final

from pigeon.transport.ble.bitchatgatt import BITCHAT_CHARACTERISTIC_UUID, BITCHAT_SERVICE_UUID
from pigeon.transport.ble.gattobjects import (
    Advertisement,
    Characteristic,
    GattService,
    ServiceObjects,
)
from pigeon.transport.ble.peripheral import APP_PATH
from pigeon.transport.ble.profile import WriteHandler

BITCHAT_SERVICE_PATH: Final = APP_PATH + "/service2"
BITCHAT_CHAR_PATH: Final = BITCHAT_SERVICE_PATH + "/char0"
BITCHAT_ADVERT_PATH: Final = APP_PATH + "/advert2"
_FLAGS: Final = ["read", "write", "write-without-response", "notify"]


def bitchat_gatt_objects(on_write: WriteHandler) -> ServiceObjects:
    """bitchat's service, its characteristic and its advertisement."""
    char = Characteristic(BITCHAT_CHARACTERISTIC_UUID, BITCHAT_SERVICE_PATH, list(_FLAGS), on_write)
    return ServiceObjects(
        (BITCHAT_SERVICE_PATH, GattService(BITCHAT_SERVICE_UUID)),
        [(BITCHAT_CHAR_PATH, char)],
        char,
        lambda: (BITCHAT_ADVERT_PATH, Advertisement(BITCHAT_SERVICE_UUID, "bitchat")),
    )
