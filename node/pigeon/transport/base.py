"""The Transport seam: a dumb byte pipe to neighbours, shared by the sim radio, BLE and relays.

A transport knows links and frames, nothing about packets. It reports what happens through a
`LinkSink` (a synchronous upcall, like Reticulum's inbound handler, so the sans-IO router can be
fed directly) and moves frames with `send`. Errors say who caused them (after trio): `Closed`
(we closed it), `Broken` (the peer or the radio did), `Busy` (try again later).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, NewType, Protocol

PeerId = NewType("PeerId", str)

MIN_FRAME_LIMIT: Final = 20  # ATT payload at the BLE minimum MTU of 23


class TransportError(Exception):
    """Root of every transport error."""


class Closed(TransportError):
    """The transport or link was closed by us."""


class Broken(TransportError):
    """The link was broken by the peer or the radio."""


class Busy(TransportError):
    """The link cannot take the frame now (queue full, connection pending); retry later."""


class FrameVerdict(StrEnum):
    """What the upper layer made of a received frame (a transport may evict links by it)."""

    USEFUL = "useful"  # accepted: the link carries something
    IGNORED = "ignored"  # well-formed but nothing new (a duplicate, over the sender's rate)
    REFUSED = "refused"  # malformed or oversized: counts against the link


class LinkSink(Protocol):
    """What a transport calls when something happens; implementations must not block."""

    def link_up(self, peer: PeerId, frame_limit: int) -> None:
        """A link to `peer` is usable; frames up to `frame_limit` bytes may be sent on it."""

    def link_down(self, peer: PeerId, reason: str) -> None:
        """The link to `peer` is gone; frames sent to it now raise Broken."""

    def frame_received(self, peer: PeerId, frame: bytes) -> FrameVerdict | None:
        """`peer` sent `frame`; the verdict on it, or None (a sink that does not judge: the
        frame counts as useful)."""


class Transport(Protocol):
    """A set of links to neighbours."""

    async def start(self, sink: LinkSink) -> None:
        """Begin reporting links and frames to `sink`; called once."""

    def frame_limit(self, peer: PeerId) -> int:
        """The largest frame `send` accepts for `peer`; raises Broken if there is no link."""

    async def send(self, peer: PeerId, frame: bytes) -> None:
        """Queue `frame` for `peer`. Raises Closed, Broken, Busy, or ValueError if too large."""

    async def aclose(self) -> None:
        """Close every link; idempotent. No sink calls follow its return."""
