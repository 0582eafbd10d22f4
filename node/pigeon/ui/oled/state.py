"""What the daemon tells the OLED: one frozen snapshot of the node, replaced as things change.

The OLED room defines these types itself so that it needs nothing from other rooms; the daemon
fills them from the messenger, the router and the web room. Times are on the daemon's monotonic
clock (seconds), the same clock it passes to the UI machine.
"""

from __future__ import annotations

import datetime
import enum
import re
from dataclasses import dataclass, field
from typing import Final

from pigeon.ui.oled import qr
from pigeon.ui.oled.errors import InvalidView

PAIRING_CODE_DIGITS: Final = 6
CERT_SHA256_BYTES: Final = 32
_CODE_PATTERN: Final = re.compile(r"[0-9]{6}")


class Uplink(enum.Enum):
    """How the node reaches its internet mailbox relays."""

    OFFLINE = "offline"
    CONNECTING = "connecting"
    ONLINE = "online"


@dataclass(frozen=True, slots=True)
class Message:
    """One received message as the OLED lists it; `message_id` is opaque to the OLED."""

    message_id: str
    sender: str
    text: str = field(repr=False)
    received_at: datetime.datetime
    unread: bool


@dataclass(frozen=True, slots=True)
class Pairing:
    """An open pairing window: the code to type, where to type it, and when it ends.

    Raises InvalidView unless `code` is six ASCII digits, `cert_sha256` is 32 bytes and `url`
    fits a QR code on the screen.
    """

    code: str = field(repr=False)
    url: str
    cert_sha256: bytes
    expires_at_s: float

    def __post_init__(self) -> None:
        if not _CODE_PATTERN.fullmatch(self.code):
            raise InvalidView("pairing code must be six digits")
        if len(self.cert_sha256) != CERT_SHA256_BYTES:
            raise InvalidView("certificate fingerprint must be a 32-byte SHA-256 digest")
        qr.encode(self.url)


@dataclass(frozen=True, slots=True)
class ViewState:
    """Everything the OLED shows, as the daemon last saw it.

    `messages` are the most recent received messages, newest first; `unread` counts all unread
    ones (also those not in `messages`). `today` is the daemon's local date, used to label
    message times, on a 12-hour clock when `twelve_hour`. `reset_pending` is true while an
    identity reset request waits for confirmation on the web page. `error` is a short
    human-readable fault (never a secret). `wrong_pairing_codes` is how many wrong codes
    closed the last pairing window (0 when it was not closed that way); the daemon clears
    it when a new window opens.
    """

    node_name: str
    web_url: str
    neighbours: int = 0
    spool_envelopes: int = 0
    spool_bytes: int = 0
    uplink: Uplink = Uplink.OFFLINE
    unread: int = 0
    today: datetime.date | None = None
    owner_paired: bool = False
    vault_locked: bool = False
    messages: tuple[Message, ...] = field(default_factory=tuple)
    pairing: Pairing | None = None
    reset_pending: bool = False
    error: str | None = None
    wrong_pairing_codes: int = 0
    twelve_hour: bool = False
    app_mesh: AppMeshLine | None = None  # None: the Pigeon app's mesh is switched off
    bitchat_peers: int | None = None  # bitchat phones linked; None: bitchat is switched off
    bitchat_held: int | None = None  # bitchat courier envelopes held; None: the courier is off
    # bitchat events published to Nostr plus drops fetched; None: the gateway is off
    bitchat_nostr: int | None = None
    bitchat_courier: CourierLine | None = None  # the bitchat mail page; None: the courier is off
    bitchat_gateway: GatewayLine | None = None  # the bitchat mail page; None: the gateway is off


@dataclass(frozen=True, slots=True)
class CourierLine:
    """The bitchat courier on the bitchat mail page: envelopes held now, and since the start
    handed to their recipients, expired, and sprayed to other couriers."""

    held: int = 0
    handed_over: int = 0
    expired: int = 0
    sprayed: int = 0


@dataclass(frozen=True, slots=True)
class GatewayLine:
    """The Nostr gateway on the bitchat mail page: events published and drops fetched."""

    published: int = 0
    fetched: int = 0


@dataclass(frozen=True, slots=True)
class AppMeshLine:
    """The Pigeon app's mesh on the status screen: phones linked, packets relayed and bridged."""

    peers: int = 0
    relayed: int = 0
    bridged: int = 0
