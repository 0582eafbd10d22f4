"""One frozen view per screen: exactly what a screen draws, so equal views give equal frames.

The UI machine builds these from the daemon's `ViewState` and its own navigation state; the
daemon redraws the panel only when the view changes.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from pigeon.ui.oled.state import AppMeshLine, CourierLine, GatewayLine, Message, Uplink


@dataclass(frozen=True, slots=True)
class StatusView:
    """The home screen. `show_pair_hint` when no owner has paired yet."""

    node_name: str
    neighbours: int
    spool_envelopes: int
    spool_bytes: int
    uplink: Uplink
    unread: int
    show_pair_hint: bool
    app_mesh: AppMeshLine | None = None  # None: switched off
    bitchat_peers: int | None = None  # bitchat phones linked; None: bitchat is switched off
    bitchat_held: int | None = None  # bitchat courier envelopes held; None: the courier is off
    # bitchat events published to Nostr plus drops fetched; None: the gateway is off
    bitchat_nostr: int | None = None


@dataclass(frozen=True, slots=True)
class BitchatMailView:
    """bitchat mail the node carries (the courier) and takes to the internet (the gateway);
    each None when switched off."""

    courier: CourierLine | None
    gateway: GatewayLine | None


@dataclass(frozen=True, slots=True)
class MessageListView:
    """Received messages, newest first, each row its sender and the start of its text;
    `selected` is highlighted, rows from `top` are shown."""

    messages: tuple[Message, ...]
    selected: int
    top: int
    today: datetime.date | None
    twelve_hour: bool = False


@dataclass(frozen=True, slots=True)
class MessageView:
    """One message, its wrapped text shown from line `scroll`."""

    message: Message
    scroll: int
    today: datetime.date | None
    twelve_hour: bool = False


@dataclass(frozen=True, slots=True)
class PairingView:
    """The code to type on the page, the page's QR, and the certificate to expect."""

    code: str = field(repr=False)
    url: str
    cert_sha256: bytes
    seconds_left: int


@dataclass(frozen=True, slots=True)
class PairingClosedView:
    """Wrong codes typed on the page closed the pairing window: the owner should know."""

    wrong_codes: int


@dataclass(frozen=True, slots=True)
class LockedView:
    """The vault is locked: messages are unreadable until the owner unlocks it on the page."""

    node_name: str
    web_url: str
    neighbours: int


@dataclass(frozen=True, slots=True)
class ResetView:
    """An identity reset waits for confirmation on the web page."""

    web_url: str


@dataclass(frozen=True, slots=True)
class ErrorView:
    """A fault the owner should know about."""

    text: str


@dataclass(frozen=True, slots=True)
class SaverView:
    """Screensaver: a dark panel with one small marker that moves to slot `slot` each minute."""

    unread: int
    slot: int


ScreenView = (
    StatusView
    | BitchatMailView
    | MessageListView
    | MessageView
    | PairingView
    | PairingClosedView
    | LockedView
    | ResetView
    | ErrorView
    | SaverView
)
