"""Drives the sans-IO router from one transport: upcalls in, actions carried out, time ticking.

The transport given to `run` calls `link_up`, `link_down` and `frame_received` (the `LinkSink`);
each becomes a router event at the current unix time. `SendFrame` actions go to a per-neighbour
queue drained by one sender task per link (a frame is sent, then `FrameSent` frees the router's
send slot, whether the frame left or failed). `Deliver` actions go to the endpoint callback,
`OfferUplink` actions (a neighbour's envelope with a mailbox hint) to the uplink callback.
`run` starts a transport, ticks the router and, on the way out, closes the transport; the router
(and what it carries) outlives a transport, so a failed radio is restarted with a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Final

from pigeon.daemon.verdict import frame_verdict
from pigeon.mesh.events import (
    Action,
    Deliver,
    Drop,
    DropReason,
    Event,
    FrameReceived,
    FrameSent,
    LinkDown,
    LinkUp,
    LocalSend,
    OfferUplink,
    SendFrame,
    ServeTags,
    Tick,
)
from pigeon.mesh.packet import Packet
from pigeon.mesh.router import Router
from pigeon.transport.base import Broken, Busy, Closed, FrameVerdict, PeerId, Transport

_LOGGER = logging.getLogger(__name__)

TICK_S: Final = 1.0
BUSY_RETRY_S: Final = 0.05
BUSY_RETRIES: Final = 20
# What a frame's drops say about its link (daemon.verdict).
REFUSED_DROPS: Final = frozenset({DropReason.MALFORMED})
IGNORED_DROPS: Final = frozenset(
    {DropReason.THROTTLED, DropReason.DUPLICATE, DropReason.EXPIRED, DropReason.NO_LINK}
)

DeliverCallback = Callable[[Packet], None]


class MeshDriver:
    """The router's I/O: one transport, a clock for router time, a monotonic clock for health."""

    def __init__(
        self,
        router: Router,
        *,
        deliver: DeliverCallback | None = None,
        clock: Callable[[], float] = time.time,
        tick_s: float = TICK_S,
    ) -> None:
        self.router = router
        self._transport: Transport | None = None
        self._deliver = deliver
        self._uplink: DeliverCallback | None = None
        self._clock = clock
        self.tick_s = tick_s
        self._queues: dict[str, asyncio.Queue[bytes]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}
        self.last_tick_monotonic = time.monotonic()
        self.counters: Counter[str] = Counter()

    # -- LinkSink (called by the transport, synchronously) --------------------------------------

    def link_up(self, peer: PeerId, frame_limit: int) -> None:
        """A neighbour came into reach."""
        self._stop_sender(peer)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._queues[peer] = queue
        self._senders[peer] = asyncio.get_running_loop().create_task(
            self._send_loop(peer, queue), name=f"mesh-send-{peer}"
        )
        self.feed(LinkUp(peer, frame_limit))

    def link_down(self, peer: PeerId, reason: str) -> None:
        """A neighbour left."""
        _LOGGER.debug("link to a neighbour down: %s", reason)
        self._stop_sender(peer)
        self.feed(LinkDown(peer))

    def frame_received(self, peer: PeerId, frame: bytes) -> FrameVerdict:
        """A neighbour sent a frame; whether it was useful, ignored or refused."""
        actions = self.feed(FrameReceived(peer, frame))
        drops = ((a.reason.value, a.peer) for a in actions if type(a) is Drop)
        return frame_verdict(drops, peer, REFUSED_DROPS, IGNORED_DROPS)

    # -- the local endpoint ---------------------------------------------------------------------

    def set_deliver(self, deliver: DeliverCallback | None) -> None:
        """Where packets for our own tags go from now on (None: nowhere, counted as dropped)."""
        self._deliver = deliver

    def set_uplink(self, uplink: DeliverCallback | None) -> None:
        """Where neighbours' envelopes that ask for an internet deposit go (None: nowhere)."""
        self._uplink = uplink

    def local_send(self, packet: Packet) -> None:
        """Carry our own envelope or receipt."""
        self.feed(LocalSend(packet))

    def serve_tags(self, tags: tuple[bytes, ...], silent: tuple[bytes, ...] = ()) -> None:
        """Announce `tags` and serve them and `silent` (never announced) from now on."""
        self.feed(ServeTags(tags, silent))

    def feed(self, event: Event) -> list[Action]:
        """Give the router one event now, carry out what it returns, and return it."""
        actions = self.router.handle(event, self._clock())
        for action in actions:
            if type(action) is SendFrame:
                queue = self._queues.get(action.peer)
                if queue is None:
                    self.counters["send_without_link"] += 1
                else:
                    queue.put_nowait(action.frame)
            elif type(action) is Deliver:
                self._hand_to_endpoint(action.packet)
            elif type(action) is Drop:
                self.counters["drop_" + action.reason.value] += 1
            elif type(action) is OfferUplink and self._uplink is not None:
                self._uplink(action.packet)
        return actions

    # -- running --------------------------------------------------------------------------------

    @property
    def neighbours(self) -> list[str]:
        """Peers linked now."""
        return self.router.neighbours()

    async def run(self, transport: Transport) -> None:
        """Start `transport` and tick the router until cancelled; closes the transport."""
        if self._transport is not None:
            raise RuntimeError("the mesh driver already runs a transport")
        self._transport = transport
        try:
            await transport.start(self)
            while True:
                self.tick()
                await asyncio.sleep(self.tick_s)
        finally:
            self._transport = None
            await transport.aclose()
            for peer in list(self._senders):
                self._stop_sender(peer)
                self.feed(LinkDown(peer))

    def tick(self) -> None:
        """Let router time pass now (expiry, retries, hand-overs)."""
        self.feed(Tick())
        self.last_tick_monotonic = time.monotonic()

    def _hand_to_endpoint(self, packet: Packet) -> None:
        if self._deliver is None:
            self.counters["delivered_without_endpoint"] += 1
            return
        try:
            self._deliver(packet)
        except Exception:  # the endpoint's fault must not stop the radio for everyone else
            self.counters["endpoint_errors"] += 1
            _LOGGER.exception("the local endpoint failed on a delivered packet")

    def _stop_sender(self, peer: str) -> None:
        self._queues.pop(peer, None)
        task = self._senders.pop(peer, None)
        if task is not None:
            task.cancel()

    async def _send_loop(self, peer: str, queue: asyncio.Queue[bytes]) -> None:
        transport = self._transport
        assert transport is not None
        with contextlib.suppress(Closed):
            while True:
                frame = await queue.get()
                await self._send_one(transport, PeerId(peer), frame)
                if self._queues.get(peer) is not queue:
                    return  # the link went down (and maybe up again) while we were sending
                self.feed(FrameSent(peer))

    async def _send_one(self, transport: Transport, peer: PeerId, frame: bytes) -> None:
        for _ in range(BUSY_RETRIES):
            try:
                await transport.send(peer, frame)
            except Busy:
                await asyncio.sleep(BUSY_RETRY_S)
                continue
            except (Broken, ValueError) as exc:
                self.counters["send_failed"] += 1
                _LOGGER.debug("a frame to a neighbour was not sent: %s", exc)
            return
        self.counters["send_busy"] += 1
