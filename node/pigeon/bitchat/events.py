"""What goes into the bitchat router (events) and what comes out (actions): plain frozen values.

Links are the transport's opaque string ids; a frame is one GATT write or notify, which on
bitchat's service is one whole bitchat packet (bitchat fragments large packets itself, 0x20).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class LinkUp:
    """A link to a bitchat peer is usable; `frame_limit` is the largest frame it takes."""

    link: str
    frame_limit: int


@dataclass(frozen=True, slots=True)
class LinkDown:
    """The link is gone."""

    link: str


@dataclass(frozen=True, slots=True)
class FrameReceived:
    """The link wrote or notified one frame (one bitchat packet)."""

    link: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: expire the seen-cache."""


Event = LinkUp | LinkDown | FrameReceived | Tick


@dataclass(frozen=True, slots=True)
class SendFrame:
    """Give `frame` to the transport for `link` after `delay_s` (bitchat's relay jitter)."""

    link: str
    frame: bytes
    delay_s: float = 0.0


class DropReason(StrEnum):
    """Why the router discarded something; each reason is also a counter."""

    MALFORMED = "malformed"  # not a bitchat packet, or a fragment without a valid header
    TOO_BIG = "too_big"  # over the size cap
    DUPLICATE = "duplicate"  # a packet key seen before
    STALE = "stale"  # timestamp more than 120 s from our clock
    TTL = "ttl"  # hop limit reached
    LOCAL_ONLY = "local_only"  # sync requests and sync responses never travel further
    FOR_US = "for_us"  # addressed to this node's bitchat id, or sent as it (a loop)
    RATE = "rate"  # over a link's packet rate (inbound) or a send skipped for it (outbound)
    NO_LINK = "no_link"  # a frame from a link we do not have
    LINK_TOO_SMALL = "link_too_small"  # a forwarded packet larger than a link's frame limit


@dataclass(frozen=True, slots=True)
class Drop:
    """Something from (or for) `link` (None: our own state) was discarded for `reason`."""

    reason: DropReason
    link: str | None


@dataclass(frozen=True, slots=True)
class Heard:
    """A new, fresh announce or public message (bytes as received) for the node's own use;
    `link` is where it came from."""

    packet: bytes
    link: str | None = None


@dataclass(frozen=True, slots=True)
class Addressed:
    """A new, fresh courier or Nostr carrier packet (0x04, 0x2A, 0x2B, 0x28) addressed to this
    node, from `link`."""

    link: str
    packet: bytes


Action = SendFrame | Drop | Heard | Addressed
