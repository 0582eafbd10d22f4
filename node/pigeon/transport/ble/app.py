"""`AppBleTransport`: the `Transport` for the Pigeon app's GATT service, beside ours.

A `phone.PhoneBleTransport` with the app's profile: service `9E7B0001-…`, an inbound
characteristic phones write with response and an outbound one the node notifies (`appgatt`,
`appperipheral`), frames of 157..510 bytes. See `phone` for what it shares with our transport.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from pigeon.transport.base import PeerId
from pigeon.transport.ble.appgatt import (
    APP_MAX_FRAME_LIMIT,
    APP_MIN_FRAME_LIMIT,
    APP_RX_UUID,
    APP_SERVICE_UUID,
    APP_TX_UUID,
)
from pigeon.transport.ble.phone import NOTIFY_MIN_GAP_S, PhoneBleTransport
from pigeon.transport.ble.policy import PacerParams
from pigeon.transport.ble.profile import PhoneGattObjects, PhoneProfile, WriteHandler
from pigeon.transport.ble.slots import APP_SERVICE


def _app_objects(on_write: WriteHandler) -> PhoneGattObjects:
    from pigeon.transport.ble.appperipheral import app_gatt_objects  # dbus-fast loads lazily

    return app_gatt_objects(on_write)


APP_PROFILE: Final = PhoneProfile(
    name=APP_SERVICE,
    service_uuid=APP_SERVICE_UUID,
    inbound_uuid=APP_RX_UUID,
    outbound_uuid=APP_TX_UUID,
    peer_prefix="app:",
    min_frame_limit=APP_MIN_FRAME_LIMIT,
    max_frame_limit=APP_MAX_FRAME_LIMIT,
    write_with_response=True,  # as the app writes
    gatt_objects=_app_objects,
)


class AppBleTransport(PhoneBleTransport):
    """A `Transport` over the app's GATT service on a `BleTransport`'s adapter."""

    def __init__(
        self,
        adapter_name: str,
        pacer: PacerParams | None = None,
        notify_min_gap_s: float = NOTIFY_MIN_GAP_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(APP_PROFILE, adapter_name, pacer, notify_min_gap_s, clock)


def app_peer_id(address: str) -> PeerId:
    """The PeerId of the app device at `address` (the app has no identifier of its own)."""
    return APP_PROFILE.peer_id(address)
