"""The Pigeon app's GATT service, as far as a byte pipe needs it (docs/protocol.md, "The Pigeon
app's BLE service").

Service `9E7B0001-…` with an inbound characteristic that centrals write with response and an
outbound one the peripheral notifies. A frame is one app fragment, carried as it is: the app has
no link header and no hello, so a peer is the device it runs on, and the transport checks only
the frame's size. The app sizes fragments from the smallest negotiated value length over its
links, minus its 7-byte header, clamped to 150..503 payload bytes
(`PeerTransport.fragmentPayloadBudget` in the app), so a link must carry at least 157 bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from pigeon.transport.base import PeerId

APP_SERVICE_UUID: Final = "9e7b0001-8f2a-4c3d-9a1b-2e5f7c8d0a10"
APP_RX_UUID: Final = "9e7b0002-8f2a-4c3d-9a1b-2e5f7c8d0a10"  # centrals write, with response
APP_TX_UUID: Final = "9e7b0003-8f2a-4c3d-9a1b-2e5f7c8d0a10"  # the peripheral notifies
APP_LOCAL_NAME: Final = "Pigeon"  # what the app advertises beside the service UUID

APP_FRAGMENT_HEADER_LEN: Final = 7
APP_MIN_FRAME_LIMIT: Final = APP_FRAGMENT_HEADER_LEN + 150  # 157: the app's smallest fragment
# The app's largest fragment (7 + 503). It is also the largest write BlueZ 5.66 carries: writes
# of 511-514 bytes are lost at MTU 517 although the MTU allows them (docs/protocol.md), so a
# link never offers more, whatever the MTU.
APP_MAX_FRAME_LIMIT: Final = APP_FRAGMENT_HEADER_LEN + 503  # 510

# How many recent notifications the peripheral side remembers to send each frame once (below).
# The app router cuts one packet into at most 64 KiB / 503 = 131 fragments.
COALESCE_WINDOW: Final = 256


def address_of(device_path: str) -> str:
    """The address in a BlueZ device object path (`/org/bluez/hci0/dev_AA_BB_…`)."""
    tail = device_path.rsplit("/", 1)[-1]
    if not tail.startswith("dev_") or len(tail) != 4 + 17:
        raise ValueError(f"not a BlueZ device path: {device_path!r}")
    return tail[4:].replace("_", ":").upper()


@dataclass(slots=True)
class _Sent:
    seq: int
    charged: set[PeerId] = field(default_factory=set)


class SharedNotify:
    """Which frames for peripheral-side app peers must be notified, when one notification
    reaches every subscribed central (BlueZ 5.66 has no per-device notification).

    The router sends the same fragment bytes to each of its targets; a frame already notified
    after a peer came up reached that peer too, so it goes out once. A frame a peer is sent a
    second time (a deliberate resend) is notified again.
    """

    def __init__(self, window: int = COALESCE_WINDOW) -> None:
        if window < 1:
            raise ValueError("window must be positive")
        self._window = window
        self._seq = 0
        self._recent: OrderedDict[bytes, _Sent] = OrderedDict()
        self._joined: dict[PeerId, int] = {}

    def join(self, peer: PeerId) -> None:
        """`peer` subscribed: it hears notifications from now on."""
        self._joined[peer] = self._seq

    def leave(self, peer: PeerId) -> None:
        """`peer` is gone."""
        self._joined.pop(peer, None)

    def must_notify(self, peer: PeerId, frame: bytes) -> bool:
        """Whether sending `frame` to `peer` needs a notification (False: it already had it)."""
        if peer not in self._joined:
            raise KeyError(peer)
        sent = self._recent.get(frame)
        if sent is not None and sent.seq > self._joined[peer] and peer not in sent.charged:
            sent.charged.add(peer)
            return False
        self._seq += 1
        self._recent[frame] = _Sent(self._seq, {peer})
        self._recent.move_to_end(frame)
        while len(self._recent) > self._window:
            self._recent.popitem(last=False)
        return True
