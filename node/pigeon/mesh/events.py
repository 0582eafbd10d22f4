"""What goes into the router (events) and what comes out (actions): plain frozen values.

Peers are named by the transport's opaque string ids. The driver (daemon or simulator) turns
transport upcalls into events, feeds them to `Router.handle`, and carries out the actions.

The three made once per frame (`FrameReceived`, `FrameSent`, `SendFrame`) fill their slots
through the slots' own setters: a frozen dataclass's generated `__init__` goes through
`object.__setattr__` for each field, which cost a tenth of the router's time per packet.
They are as frozen as the others (assigning a field raises `FrozenInstanceError`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

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


@dataclass(frozen=True, slots=True, init=False)
class FrameReceived:
    """`peer` sent `frame`."""

    peer: str
    frame: bytes

    def __init__(self, peer: str, frame: bytes) -> None:
        _RECEIVED_PEER(self, peer)
        _RECEIVED_FRAME(self, frame)


@dataclass(frozen=True, slots=True, init=False)
class FrameSent:
    """The transport is done with one frame for `peer` (sent or failed): a send slot is free."""

    peer: str

    def __init__(self, peer: str) -> None:
        _SENT_PEER(self, peer)


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


@dataclass(frozen=True, slots=True, init=False)
class SendFrame:
    """Give `frame` to the transport for `peer`; report `FrameSent(peer)` when it is done."""

    peer: str
    frame: bytes

    def __init__(self, peer: str, frame: bytes) -> None:
        _SEND_PEER(self, peer)
        _SEND_FRAME(self, frame)


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


def _slot_setter(cls: type, name: str) -> Callable[[object, object], None]:
    """The setter of slot `name` of `cls`, which a frozen class's `__setattr__` does not stop."""
    setter: Callable[[object, object], None] = cls.__dict__[name].__set__
    return setter


_RECEIVED_PEER: Final = _slot_setter(FrameReceived, "peer")
_RECEIVED_FRAME: Final = _slot_setter(FrameReceived, "frame")
_SENT_PEER: Final = _slot_setter(FrameSent, "peer")
_SEND_PEER: Final = _slot_setter(SendFrame, "peer")
_SEND_FRAME: Final = _slot_setter(SendFrame, "frame")
