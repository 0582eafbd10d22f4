"""What goes into the app router (events) and what comes out (actions): plain frozen values.

Links are named by the transport's opaque string ids (one per BLE connection to a phone).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class LinkUp:
    """A link to a phone is usable; `value_length` is its negotiated GATT value length."""

    link: str
    value_length: int


@dataclass(frozen=True, slots=True)
class LinkDown:
    """The link is gone."""

    link: str


@dataclass(frozen=True, slots=True)
class FrameReceived:
    """The link wrote or notified one frame (an app fragment)."""

    link: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: expire reassembly, seen-cache and custody; hand over owed packets."""


@dataclass(frozen=True, slots=True)
class Originate:
    """A packet the node itself made (the owner's messenger to an app contact), TTL 8."""

    packet: bytes


@dataclass(frozen=True, slots=True)
class ServeKeys:
    """The Ed25519 keys whose packets are the owner's: delivered here, not relayed on."""

    keys: frozenset[bytes]


Event = LinkUp | LinkDown | FrameReceived | Tick | Originate | ServeKeys


@dataclass(frozen=True, slots=True)
class SendFrame:
    """Give `frame` to the transport for `link`."""

    link: str
    frame: bytes


class DropReason(StrEnum):
    """Why the router discarded something; each reason is also a counter."""

    MALFORMED = "malformed"  # not a fragment, packet or envelope of the app's format
    DUPLICATE = "duplicate"  # a packet id seen before
    TTL = "ttl"  # TTL 1 or 0: the hop limit is reached, not relayed
    TOO_BIG = "too_big"  # over the reassembly or relay size cap
    RATE = "rate"  # over a link's packet rate (inbound), or a send skipped for it (outbound)
    STALE = "stale"  # a partial message idle past the reassembly timeout
    NO_LINK = "no_link"  # a frame from a link we do not have (never up, or down)
    LINK_TOO_SMALL = "link_too_small"  # a link offering under 157 bytes cannot carry the app


@dataclass(frozen=True, slots=True)
class Drop:
    """Something from `link` (None: our own state) was discarded for `reason`."""

    reason: DropReason
    link: str | None


@dataclass(frozen=True, slots=True)
class OfferUplink:
    """A new packet for a recipient not in range: the internet may reach it (the bridge's call).

    `packet` is the packet's bytes exactly as they arrived (its sender's TTL kept), `sender` and
    `recipient` the envelope's Ed25519 keys.
    """

    sender: bytes
    recipient: bytes
    packet: bytes


@dataclass(frozen=True, slots=True)
class DeliverLocal:
    """A packet for a served key (the owner's): hand its envelope to the messenger."""

    packet: bytes


Action = SendFrame | Drop | OfferUplink | DeliverLocal
