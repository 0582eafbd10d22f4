"""Drives the sans-IO app router (`pigeon.appmesh`) from its own transport: the app's service.

The Pigeon app's GATT service is a second service on the node's adapter, so the node runs it
as a second `Transport` beside ours: on the simulated radio a `SimTransport` on the app's
service, on BLE (later) one more transport over the same adapter. Upcalls become router events
at monotonic time; `SendFrame` actions go to a bounded per-link queue drained by one sender task
per link; `OfferUplink` actions go to the uplink callback (the app-relay bridge). `run` starts a
transport, ticks the router once a second (custody hand-overs, expiry) and closes the transport
on the way out; the router outlives a transport, so a failed radio restarts with a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Final

from pigeon.appmesh.events import (
    Action,
    DeliverLocal,
    Drop,
    DropReason,
    Event,
    FrameReceived,
    LinkDown,
    LinkUp,
    OfferUplink,
    Originate,
    SendFrame,
    ServeKeys,
    Tick,
)
from pigeon.appmesh.router import AppRouter
from pigeon.daemon.link_senders import LinkSenders
from pigeon.daemon.verdict import frame_verdict
from pigeon.transport.base import FrameVerdict, PeerId, Transport

_LOGGER = logging.getLogger(__name__)

TICK_S: Final = 1.0  # custody hands over within a second of a phone's rate allowing it
# Frames waiting for one link: 8 packets/s of at most 64 KiB at >= 150 bytes a fragment would
# be far more; this bounds memory to ~1 MiB a link and drops the excess (counted), as a phone
# whose link cannot keep up loses packets to its own queue too.
MAX_QUEUED_FRAMES: Final = 2048
# What a frame's drops say about its link (daemon.verdict).
REFUSED_DROPS: Final = frozenset({DropReason.MALFORMED, DropReason.TOO_BIG})
IGNORED_DROPS: Final = frozenset({DropReason.DUPLICATE, DropReason.RATE, DropReason.NO_LINK})

UplinkCallback = Callable[[OfferUplink], None]
DeliverCallback = Callable[[bytes], object]  # a whole app packet for the owner


class AppMeshDriver:
    """The app router's I/O: one transport at a time, monotonic router time."""

    def __init__(
        self,
        router: AppRouter,
        *,
        uplink: UplinkCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
        tick_s: float = TICK_S,
    ) -> None:
        self.router = router
        self._uplink = uplink
        self._deliver: DeliverCallback | None = None
        self._clock = clock
        self.tick_s = tick_s
        self._transport: Transport | None = None
        self.counters: Counter[str] = Counter()  # the driver's own: sends and queue overflow
        self._senders = LinkSenders("app-mesh", MAX_QUEUED_FRAMES, self.counters)

    # -- LinkSink (called by the transport, synchronously) --------------------------------------

    def link_up(self, peer: PeerId, frame_limit: int) -> None:
        """A phone (or a node's app service) linked; `frame_limit` is its value length."""
        assert self._transport is not None  # links come up only while a transport runs
        self._senders.open(peer, self._transport)
        self.feed(LinkUp(peer, frame_limit))
        if peer not in self.router.links():  # refused (under 157 bytes): no sender for it
            self._senders.close(peer)

    def link_down(self, peer: PeerId, reason: str) -> None:
        """The link is gone."""
        _LOGGER.debug("an app-mesh link went down: %s", reason)
        self._senders.close(peer)
        self.feed(LinkDown(peer))

    def frame_received(self, peer: PeerId, frame: bytes) -> FrameVerdict:
        """The link sent one fragment; whether it was useful, ignored or refused."""
        actions = self.feed(FrameReceived(peer, frame))
        drops = ((a.reason.value, a.link) for a in actions if type(a) is Drop)
        return frame_verdict(drops, peer, REFUSED_DROPS, IGNORED_DROPS)

    # -- the router -----------------------------------------------------------------------------

    def set_uplink(self, uplink: UplinkCallback | None) -> None:
        """Where packets for recipients not in range go from now on (None: nowhere)."""
        self._uplink = uplink

    def set_deliver(self, deliver: DeliverCallback | None, keys: frozenset[bytes]) -> None:
        """Packets for `keys` (the owner's) go to `deliver` from now on, not relayed on."""
        self._deliver = deliver
        self.feed(ServeKeys(keys if deliver is not None else frozenset()))

    def originate(self, packet: bytes) -> None:
        """Send a packet the node made (the owner's messenger to an app contact)."""
        self.feed(Originate(packet))

    def feed(self, event: Event) -> list[Action]:
        """Give the router one event now, carry out what it returns, and return it."""
        frames: dict[str, list[bytes]] = {}
        actions = self.router.handle(event, self._clock())
        for action in actions:
            if type(action) is SendFrame:
                frames.setdefault(action.link, []).append(action.frame)
            elif type(action) is OfferUplink and self._uplink is not None:
                self._uplink(action)
            elif type(action) is DeliverLocal and self._deliver is not None:
                self._deliver(action.packet)
            elif type(action) is Drop:
                pass  # the router counts drops by reason itself
        for link, batch in frames.items():
            # whole or not at all: a partial packet would only hold a phone's reassembly slot
            self._senders.offer(link, batch)
        return actions

    @property
    def links(self) -> list[str]:
        """App-mesh links up now."""
        return self.router.links()

    def tick(self) -> None:
        """Let router time pass now (custody hand-overs and expiry, stale reassembly)."""
        self.feed(Tick())

    async def run(self, transport: Transport) -> None:
        """Start `transport` and tick the router until cancelled; closes the transport."""
        if self._transport is not None:
            raise RuntimeError("the app-mesh driver already runs a transport")
        self._transport = transport
        try:
            await transport.start(self)
            while True:
                self.tick()
                await asyncio.sleep(self.tick_s)
        finally:
            self._transport = None
            await transport.aclose()
            for peer in self._senders.close_all():
                self.feed(LinkDown(peer))
