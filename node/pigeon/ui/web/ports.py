"""The seam between the web room and the daemon: what the page needs that the messenger lacks.

The daemon implements `NodeStatusSource`, `DevicePanel` and `IdentityReset` and hands them to
`build_app` together with the messenger, a `Pairing` manager (`pigeon.ui.web.pairing`) and a
`WebConfig`. Browser sessions are persisted through a `PairingStore`; the web room ships
`FilePairingStore` (a small file beside the vault), because the page must still admit its owner
while the vault is locked: the owner unlocks the vault on the page. Every method here is
synchronous and cheap, but for `IdentityReset.confirm`; the web room calls them on the event loop.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from pigeon.ui.web.errors import ResetNotPending

PANEL_BUTTONS: Final = ("a", "b")  # the OLED's buttons: "a" next/select, "b" select/back
MAX_UPLOAD_BYTES: Final = 25 * 1024 * 1024


class LinkState(enum.Enum):
    """State of a radio or of the internet uplink."""

    DOWN = "down"
    CONNECTING = "connecting"
    UP = "up"


class RelayState(enum.Enum):
    """State of one internet mailbox relay as the node sees it."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A mesh neighbour in range: a short non-identifying id and its RSSI if the radio gives one."""

    short_id: str
    rssi_dbm: int | None = None


@dataclass(frozen=True, slots=True)
class RelayStatus:
    """One configured mailbox relay; `detail` is a short human-readable reason (never a secret)."""

    url: str
    state: RelayState
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AppMeshStatus:
    """The Pigeon app's mesh on this node (counters since start); `enabled` is `[appmesh]`."""

    enabled: bool = False
    peers: int = 0  # app-mesh links up now (phones, or other nodes' app service)
    relayed: int = 0  # packets flooded on to other links
    handed_over: int = 0  # held packets handed to a phone that linked within the window
    dropped: tuple[tuple[str, int], ...] = ()  # (reason, count), reasons with a count only
    bridged: int = 0  # published to at least one app relay
    bridge_pending: int = 0  # waiting for an app relay
    relays: tuple[str, ...] = ()  # the app relays it publishes to
    relays_connected: int = 0


@dataclass(frozen=True, slots=True)
class BitchatStatus:
    """bitchat's mesh on this node (counters since start); `enabled` is `[bitchat]`."""

    enabled: bool = False
    links: int = 0  # bitchat links up now
    peers: int = 0  # links whose phone announced itself directly
    relayed: int = 0  # packets forwarded (received bytes, only the TTL changed)
    dropped: tuple[tuple[str, int], ...] = ()  # (reason, count), reasons with a count only
    public_heard: int = 0  # public chat messages heard from announced peers
    courier: CourierStatus | None = None  # None: `[bitchat] courier = false`
    gateway: GatewayStatus | None = None  # None: `[bitchat] gateway = false`


@dataclass(frozen=True, slots=True)
class CourierStatus:
    """bitchat mail the node carries for absent phones: held now, counters since start."""

    held: int = 0
    held_bytes: int = 0  # ciphertext bytes
    accepted: int = 0
    refused: int = 0  # deposits declined (full, quotas, expired, bad signature, ...)
    handed_over: int = 0
    expired: int = 0
    sprayed: int = 0


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    """The node as bitchat's Nostr gateway: counters since start."""

    relays: int = 0  # Nostr relays configured
    relays_connected: int = 0
    published: int = 0  # carried events a relay accepted
    refused: int = 0  # carriers refused (bad signature, shape, rate, full) or refused by relays
    queued: int = 0  # verified events waiting for a relay
    parked: int = 0  # courier envelopes parked as drops
    fetched: int = 0  # drops fetched and handed to a phone in range
    rebroadcast: int = 0  # relay events put on the mesh for the channels phones post to


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """A snapshot of the node for the status page. `radio_kind` is "ble" or "sim"."""

    node_name: str
    version: str
    uptime_s: float
    radio_kind: str
    radio_state: LinkState
    neighbours: tuple[Neighbour, ...] = ()
    spool_envelopes: int = 0
    spool_bytes: int = 0
    uplink: LinkState = LinkState.DOWN
    relays: tuple[RelayStatus, ...] = ()
    carried_to_relays: int = 0  # neighbours' envelopes this node deposited at their relays
    appmesh: AppMeshStatus = field(default_factory=AppMeshStatus)
    bitchat: BitchatStatus = field(default_factory=BitchatStatus)
    card_problem: str | None = None  # the SD card is full or read-only: nothing new is saved


class NodeStatusSource(Protocol):
    """Where the status page reads the node's state."""

    def status(self) -> NodeStatus:
        """The node as it is now."""
        ...


class DevicePanel(Protocol):
    """The OLED mirror and the virtual buttons on the page's device panel."""

    def frame_png(self) -> bytes:
        """The OLED's current frame as PNG bytes (128x64)."""
        ...

    def buttons_available(self) -> bool:
        """True when `buttons = "virtual"`: the page may press the buttons."""
        ...

    def asleep(self) -> bool:
        """True while the screen sleeps (the screensaver: dark but for a small moving marker)."""
        ...

    def sleep_after_s(self) -> float:
        """How long the screen stays on without a button press or a new message."""
        ...

    def press(self, button: str) -> None:
        """Push one of `PANEL_BUTTONS` down. Raises ValueError for an unknown button."""
        ...

    def release(self, button: str) -> None:
        """Let one of `PANEL_BUTTONS` go. Raises ValueError for an unknown button."""
        ...


class IdentityReset(Protocol):
    """The identity reset: asked for on the node's buttons, confirmed on the page."""

    def pending(self) -> bool:
        """True while a reset asked for on the buttons (both held for 10 s) awaits confirmation."""
        ...

    def cancel(self) -> None:
        """Withdraw the pending request; the identity stays."""
        ...

    async def confirm(self) -> None:
        """Erase the identity, contacts, messages, passphrase and paired browsers, then make a
        new identity. Raises ResetNotPending (nothing changed) or ResetFailed (names the step).
        """
        ...


class NoIdentityReset:
    """An `IdentityReset` that is never pending (a page without buttons behind it)."""

    def pending(self) -> bool:
        """Never."""
        return False

    def cancel(self) -> None:
        """Nothing to withdraw."""

    async def confirm(self) -> None:
        """Always refused."""
        raise ResetNotPending("no identity reset was asked for on this node")


class PairingStore(Protocol):
    """Persistence for paired browsers: one opaque blob (hashed tokens, never tokens)."""

    def load(self) -> bytes | None:
        """The last saved blob, or None if nothing was saved yet."""
        ...

    def save(self, blob: bytes) -> None:
        """Replace the saved blob durably."""
        ...


@dataclass(frozen=True, slots=True)
class WebConfig:
    """How the page is served.

    `allowed_hosts` are the names and addresses the page answers to (the certificate's SANs);
    a request for any other Host is refused, which defeats DNS rebinding. `clock` is Unix time
    in seconds, the clock the `Pairing` manager is driven with too. `max_upload_bytes` caps a
    file sent in chat. `on_outgoing` runs after every messenger command the page carries out,
    with the packets that command returned itself (only `unlock` returns any); the daemon sends
    those and `messenger.take_outgoing()` to the router at once rather than at its next tick.
    `passphrase_set` says whether the owner has set a passphrase; while not ("device-bound": the
    node opens the vault with a key of its own), the page offers to set one (the messenger takes
    "" for the current one) and does not offer to lock, since nothing the owner knows would
    unlock it again.
    """

    node_name: str
    allowed_hosts: tuple[str, ...]
    https_port: int = 8443
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    clock: Callable[[], float] = field(default=time.time, repr=False)
    on_outgoing: Callable[[Sequence[object]], None] = field(
        default=lambda packets: None, repr=False
    )
    passphrase_set: Callable[[], bool] = field(default=lambda: True, repr=False)
    twelve_hour: bool = False  # times of day as 6:54pm rather than 18:54, as the OLED shows them
