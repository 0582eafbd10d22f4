"""The node as a GATT peripheral: our service on GattManager1, advertised on LEAdvertisingManager1.

The objects are dbus-fast service interfaces exported on the adapter's bus (bless is not used: it
drops the `device` option, and the node must know which central wrote each frame). BlueZ calls
`WriteValue(value, options)` on the RX characteristic for every write; `options["device"]` is
the writing central's object path and `options["mtu"]` its ATT MTU. Notifications are
PropertiesChanged signals on the TX characteristic's Value, which BlueZ sends to every subscribed
central. The advertisement carries the service UUID and the rotating identifier as manufacturer
data; `advertise` replaces it when the identifier rotates.

Other services of the node on the same adapter (the Pigeon app's, `appperipheral`; bitchat's,
`bitchatperipheral`) join as `GattExtension`s: their objects are exported under the same
application root, each advertising on its own instance (`advert`), so one
RegisterApplication holds every service and the GATT database changes only when the node
registers or unregisters as a whole (see transport.QUIESCE_WAIT_S), and their advertisements
are registered and withdrawn with ours.

Raises (from `register`, `advertise`, `stop_advertising`, `unregister`): the adapter's typed
errors.
"""

import contextlib
import logging
from collections.abc import Sequence
from typing import Annotated, Final, Protocol

from dbus_fast import Variant
from dbus_fast.annotations import DBusSignature
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_property

from pigeon.transport.ble.adapter import BlueZAdapter
from pigeon.transport.ble.errors import AlreadyRegistered, BleError
from pigeon.transport.ble.gatt import MANUFACTURER_ID, RX_UUID, SERVICE_UUID, TX_UUID
from pigeon.transport.ble.gattobjects import (
    Advertisement,
    Characteristic,
    GattService,
)
from pigeon.transport.ble.profile import WriteHandler

_LOGGER = logging.getLogger(__name__)

APP_PATH: Final = "/org/pigeon/ble"
SERVICE_PATH: Final = APP_PATH + "/service0"
RX_PATH: Final = SERVICE_PATH + "/char0"
TX_PATH: Final = SERVICE_PATH + "/char1"
ADVERT_PATH: Final = APP_PATH + "/advert0"
GATT_MANAGER: Final = "org.bluez.GattManager1"
AD_MANAGER: Final = "org.bluez.LEAdvertisingManager1"

DBusManufacturerData = Annotated[dict[int, Variant], DBusSignature("a{qv}")]


class GattExtension(Protocol):
    """Another service of ours in the same GATT application, with its own advertisement."""

    def objects(self) -> list[tuple[str, ServiceInterface]]:
        """(path under APP_PATH, object) for its service and characteristics."""

    def advertisement(self) -> tuple[str, ServiceInterface]:
        """(path, LEAdvertisement1 object) it advertises with."""


class OwnAdvertisement(Advertisement):
    """Ours: the service UUID and the rotating identifier as manufacturer data."""

    def __init__(self, identifier: bytes) -> None:
        super().__init__(SERVICE_UUID, "Pigeon")
        self.identifier = identifier

    @dbus_property(PropertyAccess.READ)
    def ManufacturerData(self) -> DBusManufacturerData:
        return {MANUFACTURER_ID: Variant("ay", self.identifier)}


class BlePeripheral:
    """Our GATT application and advertisement on one adapter."""

    def __init__(
        self,
        adapter: BlueZAdapter,
        on_write: WriteHandler,
        extensions: Sequence[GattExtension] = (),
    ) -> None:
        self._adapter = adapter
        self._service = GattService(SERVICE_UUID)
        self._rx = Characteristic(RX_UUID, SERVICE_PATH, ["write-without-response"], on_write)
        self._tx = Characteristic(TX_UUID, SERVICE_PATH, ["notify"])
        self._advert: OwnAdvertisement | None = None
        self._extensions = tuple(extensions)
        self._extra_adverts: list[tuple[str, ServiceInterface]] = []  # registered now
        self._exported = False
        self._registered = False

    def _export(self) -> None:
        if self._exported:
            return
        bus = self._adapter.bus
        bus.export(SERVICE_PATH, self._service)
        bus.export(RX_PATH, self._rx)
        bus.export(TX_PATH, self._tx)
        for extension in self._extensions:
            for path, obj in extension.objects():
                bus.export(path, obj)
        self._exported = True

    async def register(self, identifier: bytes) -> None:
        """Register the GATT application and start advertising `identifier`."""
        self._export()
        # After an adapter power cycle bluetoothd still holds our application.
        with contextlib.suppress(AlreadyRegistered):
            await self._adapter.call(
                self._adapter.path, GATT_MANAGER, "RegisterApplication", "oa{sv}", [APP_PATH, {}]
            )
        self._registered = True
        await self.advertise(identifier)
        await self._advertise_extensions()
        _LOGGER.info("GATT services registered and advertised on %s", self._adapter.name)

    async def _advertise_extensions(self) -> None:
        # A second advertising instance each: ours is full (29 of 31 bytes).
        await self._drop_extra_adverts()
        for extension in self._extensions:
            path, advert = extension.advertisement()
            self._adapter.bus.export(path, advert)
            self._extra_adverts.append((path, advert))
            register = (self._adapter.path, AD_MANAGER, "RegisterAdvertisement", "oa{sv}")
            try:
                await self._adapter.call(*register, [path, {}])
            except AlreadyRegistered:  # kept across a power cycle
                await self._adapter.call(
                    self._adapter.path, AD_MANAGER, "UnregisterAdvertisement", "o", [path]
                )
                await self._adapter.call(*register, [path, {}])

    async def _drop_extra_adverts(self) -> None:
        adverts, self._extra_adverts = self._extra_adverts, []
        for path, advert in adverts:
            if self._adapter.ready:
                with contextlib.suppress(BleError):
                    await self._adapter.call(
                        self._adapter.path, AD_MANAGER, "UnregisterAdvertisement", "o", [path]
                    )
            self._adapter.bus.unexport(path, advert)

    async def advertise(self, identifier: bytes) -> None:
        """Advertise `identifier` from now on, replacing the previous advertisement."""
        await self._drop_advert()
        advert = OwnAdvertisement(identifier)
        self._adapter.bus.export(ADVERT_PATH, advert)
        self._advert = advert
        register = (self._adapter.path, AD_MANAGER, "RegisterAdvertisement", "oa{sv}")
        try:
            await self._adapter.call(*register, [ADVERT_PATH, {}])
        except AlreadyRegistered:
            # Kept across a power cycle with what it said then: register it afresh.
            await self._adapter.call(
                self._adapter.path, AD_MANAGER, "UnregisterAdvertisement", "o", [ADVERT_PATH]
            )
            await self._adapter.call(*register, [ADVERT_PATH, {}])

    async def stop_advertising(self) -> None:
        """Withdraw the advertisements, keeping the GATT application; idempotent."""
        await self._drop_advert()
        await self._drop_extra_adverts()

    async def _drop_advert(self) -> None:
        advert, self._advert = self._advert, None
        if advert is None:
            return
        if not advert.released and self._adapter.ready:
            await self._adapter.call(
                self._adapter.path, AD_MANAGER, "UnregisterAdvertisement", "o", [ADVERT_PATH]
            )
        self._adapter.bus.unexport(ADVERT_PATH, advert)

    def notify(self, value: bytes) -> None:
        """Notify `value` to every subscribed central (receivers filter by link tag)."""
        self._tx.notify(value)

    def forget(self) -> None:
        """The adapter or bluetoothd went away: our registrations went with it."""
        self._registered = False
        if self._advert is not None:
            self._advert.released = True
        for path, advert in self._extra_adverts:
            self._adapter.bus.unexport(path, advert)
        self._extra_adverts = []

    async def unregister(self) -> None:
        """Stop advertising and unregister the application; idempotent."""
        await self._drop_advert()
        await self._drop_extra_adverts()
        if self._registered and self._adapter.ready:
            self._registered = False
            await self._adapter.call(
                self._adapter.path, GATT_MANAGER, "UnregisterApplication", "o", [APP_PATH]
            )
