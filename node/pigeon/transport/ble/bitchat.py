"""`BitchatBleTransport`: the `Transport` for bitchat's GATT service, beside ours and the app's.

A `phone.PhoneBleTransport` with bitchat's profile (`bitchatgatt`, `bitchatperipheral`): service
`F47B5E2D-…`, one characteristic phones write packets to without response and subscribe to,
frames of 106..510 bytes (one whole bitchat packet or fragment each). Links we dial write without
response, as bitchat's phones do. Links phones dial share the characteristic's notifications:
BlueZ 5.66 sends each to every subscribed central (bitchat's iOS peripheral can address one
central; the node cannot), so a packet the router sends to one of them reaches all, and their
frame limit is the smallest of theirs. bitchat's phones drop what they already saw by its
message id, as they do for each other's floods. See `phone` for what it shares with our
transport. The bitchat router (`pigeon.bitchat`) reads what the frames hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from pigeon.transport.base import PeerId
from pigeon.transport.ble.bitchatgatt import (
    BITCHAT_CHARACTERISTIC_UUID,
    BITCHAT_MAX_FRAME_LIMIT,
    BITCHAT_MIN_FRAME_LIMIT,
    BITCHAT_SERVICE_UUID,
)
from pigeon.transport.ble.phone import NOTIFY_MIN_GAP_S, PhoneBleTransport
from pigeon.transport.ble.policy import PacerParams
from pigeon.transport.ble.profile import PhoneGattObjects, PhoneProfile, WriteHandler
from pigeon.transport.ble.slots import BITCHAT_SERVICE


def _bitchat_objects(on_write: WriteHandler) -> PhoneGattObjects:
    from pigeon.transport.ble.bitchatperipheral import bitchat_gatt_objects  # dbus-fast, lazily

    return bitchat_gatt_objects(on_write)


BITCHAT_PROFILE: Final = PhoneProfile(
    name=BITCHAT_SERVICE,
    service_uuid=BITCHAT_SERVICE_UUID,
    inbound_uuid=BITCHAT_CHARACTERISTIC_UUID,
    outbound_uuid=BITCHAT_CHARACTERISTIC_UUID,  # one characteristic both ways
    peer_prefix="bitchat:",
    min_frame_limit=BITCHAT_MIN_FRAME_LIMIT,
    max_frame_limit=BITCHAT_MAX_FRAME_LIMIT,
    write_with_response=False,  # as bitchat's phones write
    gatt_objects=_bitchat_objects,
)


def bitchat_peer_id(address: str) -> PeerId:
    """The PeerId of the bitchat phone at `address`."""
    return BITCHAT_PROFILE.peer_id(address)


class BitchatBleTransport(PhoneBleTransport):
    """A `Transport` over bitchat's GATT service on a `BleTransport`'s adapter."""

    def __init__(
        self,
        adapter_name: str,
        pacer: PacerParams | None = None,
        notify_min_gap_s: float = NOTIFY_MIN_GAP_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(BITCHAT_PROFILE, adapter_name, pacer, notify_min_gap_s, clock)
