"""What goes into the router (events) and what comes out (actions): plain frozen values.

Peers are named by the transport's opaque string ids. The driver (daemon or simulator) turns
transport upcalls into events, feeds them to `Router.handle`, and carries out the actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pigeon.mesh.packet import Packet


@dataclass(frozen=True, slots=True)
class LinkUp:
    """A link to `peer` is usable for frames of up to `frame_limit` bytes."""

    peer: str
    frame_limit: int


@dataclass(frozen=True, slots=True)
class LinkDown:
    """The link to `peer` is gone."""

    peer: str


@dataclass(frozen=True, slots=True)
class FrameReceived:
    """`peer` sent `frame`."""

    peer: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class FrameSent:
    """The transport is done with one frame for `peer` (sent or failed): a send slot is free."""

    peer: str


@dataclass(frozen=True, slots=True)
class LocalSend:
    """Our own endpoint hands over an envelope or a receipt to carry."""

    packet: Packet


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: expire reassembly, dedup, spool and receipt state."""


@dataclass(frozen=True, slots=True)
class ServeTags:
    """The recipient tags our own endpoint answers to from now on (replaces the previous set).

    `tags` are announced to neighbours; `silent` ones (a key's neighbouring days, for clock
    skew) are served, never announced.
    """

    tags: tuple[bytes, ...]
    silent: tuple[bytes, ...] = ()


Event = LinkUp | LinkDown | FrameReceived | FrameSent | LocalSend | Tick | ServeTags


@dataclass(frozen=True, slots=True)
class SendFrame:
    """Give `frame` to the transport for `peer`; report `FrameSent(peer)` when it is done."""

    peer: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand `packet` (an envelope or notice for one of our tags) to the local endpoint."""

    packet: Packet


@dataclass(frozen=True, slots=True)
class OfferUplink:
    """A neighbour's envelope flagged MAILBOX_HINT was taken on: a node with an internet uplink
    may deposit it at the recipient's mailbox. Offered once, when the envelope is first carried.
    """

    packet: Packet


class DropReason(StrEnum):
    """Why the router discarded something; each reason is also a metrics counter."""

    MALFORMED = "malformed"
    THROTTLED = "throttled"
    DUPLICATE = "duplicate"
    EXPIRED = "expired"
    CLEARED = "cleared"  # the envelope was already delivered (we hold its receipt)
    SPOOL_REFUSED = "spool_refused"
    NO_LINK = "no_link"


@dataclass(frozen=True, slots=True)
class Drop:
    """Something from `peer` (None: from us) was discarded for `reason`."""

    reason: DropReason
    peer: str | None


Action = SendFrame | Deliver | Drop | OfferUplink
