"""A simulated radio: nodes in a plane, links within range, lossy frames that take time.

`SimRadio` is a sans-IO discrete-event core: it owns a virtual clock and a heap of events and
advances only when `run_until` is called, so a simulated hour takes seconds and a seed decides
everything. It models range, per-frame loss, latency, per-link bandwidth (frames queue and take
`len / bandwidth` seconds each, per direction), a limit on simultaneous links per node,
random-waypoint mobility and nodes switching off and on. Beside per-frame loss it models the
faults a BLE link really has (its link layer retransmits lost PDUs while connected): a
connection dying mid-transfer (`link_drop` per frame; every frame queued on it is lost and the
pair reconnects after `reconnect_s` if still in range), and a receiving host whose buffer
overflows (`host_buffer_frames` drained at `host_drain_frames_s`; a frame arriving at a full
buffer is dropped silently, though its sender was told it went out). Nodes hear about links
and frames through a `SimListener` (the transport `LinkSink` plus `frame_sent`).

`SimMedium` drives one `SimRadio` in real time from the asyncio loop, and `SimTransport` is one
node's `Transport` on it: several nodes in one process on one medium, for the daemon and `make run`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from pigeon.transport.base import MIN_FRAME_LIMIT, Broken, Busy, Closed, LinkSink, PeerId

_LOGGER = logging.getLogger(__name__)

BLE_FRAME_LIMIT: Final = 244  # one LE data-length PDU; see PLATFORM.md on 511-514 byte writes
# A GATT service is a channel of the radio: links form only between nodes offering the same
# one, so a node carrying two dialects (ours and the Pigeon app's) is one radio node per
# service at the same place, as on BLE one adapter serves both GATT services.
DEFAULT_SERVICE: Final = "pigeon"
BITCHAT_SERVICE: Final = "bitchat"  # bitchat's service, F47B5E2D-4A9E-4C5A-9B3F-8E1D2C3A4B5C
APP_SERVICE: Final = "pigeon-app"  # the Pigeon app's service, 9E7B0001-8F2A-4C3D-9A1B-2E5F7C8D0A10


class SimListener(LinkSink, Protocol):
    """A node's upcalls from the radio; like `LinkSink`, plus transmit completion."""

    def frame_sent(self, peer: PeerId) -> None:
        """A frame queued for `peer` has left the radio (it may still have been lost)."""


@dataclass(frozen=True, slots=True)
class RadioParams:
    """Physical parameters shared by every node on one medium."""

    range_m: float = 50.0
    loss: float = 0.0
    latency_s: float = 0.005
    bandwidth_bytes_s: float = 25_000.0
    max_links: int = 7
    frame_limit: int = BLE_FRAME_LIMIT
    queue_limit_frames: int = 64
    mobility_step_s: float = 1.0
    link_drop: float = 0.0  # chance per frame that the connection dies while it is on air
    reconnect_s: float = 1.0  # how long a dropped pair takes to connect again
    host_buffer_frames: int = 0  # receive buffer of each host, in frames; 0 = never full
    host_drain_frames_s: float = 400.0  # how fast a host empties that buffer

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss < 1.0 or not 0.0 <= self.link_drop < 1.0:
            raise ValueError("loss must be in [0, 1), and so must link_drop")
        if self.reconnect_s < 0 or self.host_buffer_frames < 0 or self.host_drain_frames_s <= 0:
            raise ValueError("reconnect_s and host_buffer_frames >= 0, host drain positive")
        if self.range_m <= 0 or self.bandwidth_bytes_s <= 0 or self.mobility_step_s <= 0:
            raise ValueError("range, bandwidth and mobility step must be positive")
        if self.latency_s < 0 or self.max_links < 1 or self.queue_limit_frames < 1:
            raise ValueError("latency must be >= 0, max_links and queue limit >= 1")
        if self.frame_limit < MIN_FRAME_LIMIT:
            raise ValueError(f"frame_limit must be at least {MIN_FRAME_LIMIT}")


@dataclass(frozen=True, slots=True)
class Mobility:
    """Random-waypoint walking inside a `width_m` x `height_m` area."""

    width_m: float
    height_m: float
    speed_min_m_s: float = 0.8
    speed_max_m_s: float = 1.8
    pause_max_s: float = 60.0


@dataclass(frozen=True, slots=True)
class RadioStats:
    """What the medium counted so far."""

    frames_transmitted: int
    bytes_transmitted: int
    frames_lost: int
    frames_busy: int
    links_up: int
    links_dropped: int = 0
    frames_overflowed: int = 0


class _Node:
    __slots__ = (
        "buffer_at",
        "buffer_level",
        "dest",
        "frame_limit",
        "id",
        "links",
        "listener",
        "mobility",
        "on",
        "pause_until",
        "service",
        "speed",
        "vx",
        "vy",
        "x",
        "y",
    )

    def __init__(
        self,
        node_id: PeerId,
        x: float,
        y: float,
        listener: SimListener,
        mob: Mobility | None,
        service: str,
        frame_limit: int,
    ) -> None:
        self.id = node_id
        self.service = service
        self.frame_limit = frame_limit
        self.x = x
        self.y = y
        self.listener = listener
        self.mobility = mob
        self.on = True
        self.links: dict[PeerId, _Link] = {}
        self.dest = (x, y)
        self.speed = 0.0
        self.vx = 0.0
        self.vy = 0.0
        self.pause_until = 0.0
        self.buffer_level = 0.0  # frames in the host's receive buffer at `buffer_at`
        self.buffer_at = 0.0

    def buffer_accepts(self, now: float, capacity: int, drain_per_s: float) -> bool:
        """Whether a frame arriving now fits the host buffer (and take its place if so)."""
        level = max(0.0, self.buffer_level - (now - self.buffer_at) * drain_per_s)
        self.buffer_at = now
        if level + 1.0 > capacity:
            self.buffer_level = level
            return False
        self.buffer_level = level + 1.0
        return True


class _Link:
    __slots__ = ("a", "b", "busy_until", "epoch", "frame_limit", "in_flight")

    def __init__(self, a: _Node, b: _Node, epoch: int) -> None:
        self.a = a
        self.b = b
        self.epoch = epoch
        self.frame_limit = min(a.frame_limit, b.frame_limit)  # as GATT negotiates the smaller
        self.busy_until: dict[PeerId, float] = {a.id: 0.0, b.id: 0.0}
        self.in_flight: dict[PeerId, int] = {a.id: 0, b.id: 0}

    def other(self, node: _Node) -> _Node:
        return self.b if node is self.a else self.a


_Event = tuple[float, int, Callable[..., None], tuple[object, ...]]


class SimRadio:
    """The shared medium; every time is in simulated seconds from 0."""

    def __init__(self, params: RadioParams, rng: random.Random) -> None:
        self.params = params
        self._rng = rng
        self._now = 0.0
        self._heap: list[_Event] = []
        self._seq = 0
        self._epoch = 0
        self._nodes: dict[PeerId, _Node] = {}
        self._mobile = False
        self._contacts_dirty = False
        self._frames = 0
        self._bytes = 0
        self._lost = 0
        self._busy = 0
        self._links_up = 0
        self._links_dropped = 0
        self._overflowed = 0
        self._holdoff: dict[frozenset[PeerId], float] = {}  # pair -> when it may reconnect

    @property
    def now(self) -> float:
        """The simulated time in seconds."""
        return self._now

    def stats(self) -> RadioStats:
        """Counters of the medium since it was made."""
        return RadioStats(
            self._frames,
            self._bytes,
            self._lost,
            self._busy,
            self._links_up,
            self._links_dropped,
            self._overflowed,
        )

    def add_node(
        self,
        node_id: PeerId,
        x: float,
        y: float,
        listener: SimListener,
        mobility: Mobility | None = None,
        service: str = DEFAULT_SERVICE,
        frame_limit: int | None = None,
    ) -> None:
        """Place a powered-on node offering `service`; links form with nodes offering the same
        one at the next contact check. `frame_limit` (default the medium's) is what this node
        can take; a link carries the smaller of its ends'. Raises ValueError."""
        if node_id in self._nodes:
            raise ValueError("node id already on the medium")
        limit = self.params.frame_limit if frame_limit is None else frame_limit
        if limit < MIN_FRAME_LIMIT:
            raise ValueError(f"frame_limit must be at least {MIN_FRAME_LIMIT}")
        node = _Node(node_id, x, y, listener, mobility, service, limit)
        self._nodes[node_id] = node
        if mobility is not None:
            self._choose_waypoint(node)
            if not self._mobile:
                self._mobile = True
                self.call_at(self._now, self._mobility_step)
        self._mark_contacts_dirty()

    def remove_node(self, node_id: PeerId) -> None:
        """Take a node off the medium for good; its links go down without telling it."""
        node = self._nodes.pop(node_id)
        node.on = False
        for link in list(node.links.values()):
            self._break(link, "node left", tell=link.other(node))

    def position(self, node_id: PeerId) -> tuple[float, float]:
        """Where a node is now."""
        node = self._nodes[node_id]
        return node.x, node.y

    def set_power(self, node_id: PeerId, on: bool) -> None:
        """Switch a node off (its links break at once) or on (links form at the next check)."""
        node = self._nodes[node_id]
        if node.on == on:
            return
        node.on = on
        if not on:
            for link in list(node.links.values()):
                self._break(link, "switched off", tell=None)
        self._mark_contacts_dirty()

    def is_on(self, node_id: PeerId) -> bool:
        """Whether a node is switched on."""
        return self._nodes[node_id].on

    def peers(self, node_id: PeerId) -> list[PeerId]:
        """The nodes `node_id` has a link to."""
        return list(self._nodes[node_id].links)

    def move_node(self, node_id: PeerId, x: float, y: float) -> None:
        """Put a node somewhere else; links follow at the next contact check."""
        node = self._nodes[node_id]
        node.x, node.y = x, y
        self._mark_contacts_dirty()

    def break_link(self, a: PeerId, b: PeerId) -> None:
        """Drop the link between two nodes as interference would; both ends are told."""
        link = self._nodes[a].links.get(b)
        if link is not None:
            self._break(link, "interference", tell=None)

    def call_at(self, when: float, callback: Callable[..., None], *args: object) -> None:
        """Run `callback(*args)` at simulated time `when` (or now, if that is past)."""
        self._seq += 1
        heapq.heappush(self._heap, (max(when, self._now), self._seq, callback, args))

    def next_event_time(self) -> float | None:
        """When the next event is due, or None if nothing is scheduled."""
        if self._contacts_dirty:
            return self._now
        return self._heap[0][0] if self._heap else None

    def run_until(self, until: float) -> None:
        """Process every event due at or before `until`, then set the clock to `until`."""
        heap = self._heap
        while True:
            if self._contacts_dirty:
                self._contacts_dirty = False
                self._update_contacts()
                continue
            if not heap or heap[0][0] > until:
                break
            when, _, callback, args = heapq.heappop(heap)
            self._now = when
            callback(*args)
        self._now = max(self._now, until)

    def frame_limit(self, src: PeerId, dst: PeerId) -> int:
        """The largest frame `src` may send to `dst`; raises Broken without a link."""
        link = self._nodes[src].links.get(dst)
        if link is None:
            raise Broken("no link")
        return link.frame_limit

    def send(self, src: PeerId, dst: PeerId, frame: bytes) -> None:
        """Queue `frame` from `src` to `dst`. Raises Broken, Busy, or ValueError if too large."""
        node = self._nodes[src]
        link = node.links.get(dst)
        if link is None:
            raise Broken("no link")
        size = len(frame)
        params = self.params
        if size > link.frame_limit:
            raise ValueError(f"frame of {size} bytes exceeds the limit of {link.frame_limit}")
        if link.in_flight[src] >= params.queue_limit_frames:
            self._busy += 1
            raise Busy("link queue full")
        link.in_flight[src] += 1
        start = max(self._now, link.busy_until[src])
        end = start + size / params.bandwidth_bytes_s
        link.busy_until[src] = end
        lost = params.loss > 0.0 and self._rng.random() < params.loss
        if params.link_drop > 0.0 and self._rng.random() < params.link_drop:
            self.call_at(start, self._drop_link, link)  # dies as this frame starts out
        self._seq += 1
        heapq.heappush(
            self._heap,
            (
                end + params.latency_s,
                self._seq,
                self._arrive,
                (link, link.epoch, node, frame, lost),
            ),
        )

    def _arrive(self, link: _Link, epoch: int, src: _Node, frame: bytes, lost: bool) -> None:
        if link.epoch != epoch:
            return  # the link went down while the frame was queued
        link.in_flight[src.id] -= 1
        self._frames += 1
        self._bytes += len(frame)
        dst = link.other(src)
        params = self.params
        if lost:
            self._lost += 1
        elif params.host_buffer_frames and not dst.buffer_accepts(
            self._now, params.host_buffer_frames, params.host_drain_frames_s
        ):
            self._overflowed += 1
        else:
            dst.listener.frame_received(src.id, frame)
        if link.epoch == epoch:
            src.listener.frame_sent(dst.id)

    def _drop_link(self, link: _Link) -> None:
        """The connection dies mid-transfer: its queued frames are lost, both ends are told."""
        if link.epoch < 0:
            return
        self._links_dropped += 1
        self._holdoff[frozenset((link.a.id, link.b.id))] = self._now + self.params.reconnect_s
        self._break(link, "connection dropped", tell=None)
        self.call_at(self._now + self.params.reconnect_s, self._mark_contacts_dirty)

    def _mark_contacts_dirty(self) -> None:
        self._contacts_dirty = True

    def _mobility_step(self) -> None:
        step = self.params.mobility_step_s
        for node in self._nodes.values():
            if node.mobility is not None:
                self._walk(node, step)
        self._update_contacts()
        self.call_at(self._now + step, self._mobility_step)

    def _walk(self, node: _Node, step: float) -> None:
        if node.pause_until > self._now:
            return
        dx = node.dest[0] - node.x
        dy = node.dest[1] - node.y
        if dx * dx + dy * dy <= (node.speed * step) ** 2:
            node.x, node.y = node.dest
            self._choose_waypoint(node)
            return
        node.x += node.vx * step
        node.y += node.vy * step

    def _choose_waypoint(self, node: _Node) -> None:
        mob = node.mobility
        assert mob is not None
        rng = self._rng
        node.pause_until = self._now + rng.uniform(0.0, mob.pause_max_s)
        node.dest = (rng.uniform(0.0, mob.width_m), rng.uniform(0.0, mob.height_m))
        node.speed = rng.uniform(mob.speed_min_m_s, mob.speed_max_m_s)
        dx = node.dest[0] - node.x
        dy = node.dest[1] - node.y
        dist = math.hypot(dx, dy) or 1.0
        node.vx = dx / dist * node.speed
        node.vy = dy / dist * node.speed

    def _update_contacts(self) -> None:
        params = self.params
        range_sq = params.range_m**2
        for node in self._nodes.values():
            if node.links:
                for link in list(node.links.values()):
                    if link.a is node and _dist_sq(link.a, link.b) > range_sq:
                        self._break(link, "out of range", tell=None)
        max_links = params.max_links
        holdoff = self._holdoff
        if holdoff:
            for pair in [p for p, until in holdoff.items() if until <= self._now]:
                del holdoff[pair]
        for a, b in self._pairs_in_range(range_sq):
            if b.id not in a.links and len(a.links) < max_links and len(b.links) < max_links:
                if holdoff and frozenset((a.id, b.id)) in holdoff:
                    continue
                self._connect(a, b)
        self._contacts_dirty = False

    def _pairs_in_range(self, range_sq: float) -> list[tuple[_Node, _Node]]:
        """Every pair of powered nodes within range, found through a grid of range-sized cells."""
        cell = self.params.range_m
        grid: dict[tuple[int, int], list[_Node]] = {}
        for node in self._nodes.values():
            if node.on:
                grid.setdefault((int(node.x // cell), int(node.y // cell)), []).append(node)
        pairs = []
        for (cx, cy), members in grid.items():
            for dx, dy in _HALF_NEIGHBOURHOOD:
                others = grid.get((cx + dx, cy + dy))
                if others is None:
                    continue
                same = dx == 0 and dy == 0
                for i, a in enumerate(members):
                    ax, ay = a.x, a.y
                    for b in others[i + 1 :] if same else others:
                        ddx = ax - b.x
                        ddy = ay - b.y
                        if ddx * ddx + ddy * ddy <= range_sq and a.service == b.service:
                            pairs.append((a, b))
        return pairs

    def _connect(self, a: _Node, b: _Node) -> None:
        self._epoch += 1
        link = _Link(a, b, self._epoch)
        a.links[b.id] = link
        b.links[a.id] = link
        self._links_up += 1
        limit = link.frame_limit
        a.listener.link_up(b.id, limit)
        if b.links.get(a.id) is link:
            b.listener.link_up(a.id, limit)

    def _break(self, link: _Link, reason: str, tell: _Node | None) -> None:
        """Drop a link; both ends hear of it unless `tell` names the only one to tell."""
        if link.a.links.get(link.b.id) is not link:
            return
        del link.a.links[link.b.id]
        del link.b.links[link.a.id]
        self._epoch += 1
        link.epoch = -1
        for end in (link.a, link.b):
            if tell is None or end is tell:
                end.listener.link_down(link.other(end).id, reason)
        self._mark_contacts_dirty()


# Each unordered pair of neighbouring grid cells is visited once.
_HALF_NEIGHBOURHOOD: Final = ((0, 0), (1, 0), (-1, 1), (0, 1), (1, 1))


def _dist_sq(a: _Node, b: _Node) -> float:
    dx = a.x - b.x
    dy = a.y - b.y
    return dx * dx + dy * dy


class SimMedium:
    """A `SimRadio` driven in real time (scaled by `time_scale`) by the running asyncio loop."""

    def __init__(
        self, params: RadioParams, rng: random.Random | None = None, time_scale: float = 1.0
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.radio = SimRadio(params, rng if rng is not None else random.Random())
        self._time_scale = time_scale
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._t0 = 0.0
        self._users = 0

    def transport(
        self,
        node_id: str,
        x: float,
        y: float,
        mobility: Mobility | None = None,
        *,
        service: str = DEFAULT_SERVICE,
        frame_limit: int | None = None,
    ) -> SimTransport:
        """A transport for a new node at (x, y) offering `service`; it joins when started.

        A node's transports for other services than the default one get the radio id
        "<node_id>@<service>", so one node can offer several services on one medium.
        """
        radio_id = node_id if service == DEFAULT_SERVICE else f"{node_id}@{service}"
        return SimTransport(
            self, PeerId(radio_id), x, y, mobility, service=service, frame_limit=frame_limit
        )

    def wake(self) -> None:
        """Make the driver look at the event heap again (something was scheduled)."""
        if self._wake is not None:
            self._wake.set()

    def _acquire(self) -> None:
        self._users += 1
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            self._t0 = loop.time() - self.radio.now / self._time_scale
            self._task = loop.create_task(self._drive(), name="sim-radio")

    async def _release(self) -> None:
        self._users -= 1
        if self._users == 0 and self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _sim_now(self) -> float:
        return (asyncio.get_running_loop().time() - self._t0) * self._time_scale

    async def _drive(self) -> None:
        wake = self._wake
        assert wake is not None
        while True:
            wake.clear()
            self.radio.run_until(self._sim_now())
            due = self.radio.next_event_time()
            timeout = None if due is None else max(0.0, (due - self._sim_now()) / self._time_scale)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):  # not wait_for: 3.11's can lose a cancel
                    await wake.wait()


class SimTransport:
    """One node's `Transport` on a `SimMedium`; `send` returns once the frame has left."""

    def __init__(
        self,
        medium: SimMedium,
        node_id: PeerId,
        x: float,
        y: float,
        mobility: Mobility | None,
        *,
        service: str = DEFAULT_SERVICE,
        frame_limit: int | None = None,
    ) -> None:
        self.node_id = node_id
        self.service = service
        self._frame_limit = frame_limit
        self._medium = medium
        self._position = (x, y)
        self._mobility = mobility
        self._sink: LinkSink | None = None
        self._closed = False
        self._pending: dict[PeerId, collections.deque[asyncio.Future[None]]] = {}

    async def start(self, sink: LinkSink) -> None:
        """Join the medium and report links and frames to `sink`."""
        if self._sink is not None or self._closed:
            raise Closed("already started")
        self._sink = sink
        self._medium._acquire()
        x, y = self._position
        self._medium.radio.add_node(
            self.node_id, x, y, self, self._mobility, self.service, self._frame_limit
        )
        self._medium.wake()

    def frame_limit(self, peer: PeerId) -> int:
        """The largest frame for `peer`; raises Closed or Broken."""
        self._check_open()
        return self._medium.radio.frame_limit(self.node_id, peer)

    async def send(self, peer: PeerId, frame: bytes) -> None:
        """Send and wait until the frame left the radio. Raises Closed, Broken, Busy, ValueError."""
        self._check_open()
        self._medium.radio.send(self.node_id, peer, frame)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(peer, collections.deque()).append(done)
        self._medium.wake()
        await done

    async def aclose(self) -> None:
        """Leave the medium; idempotent. No sink calls follow."""
        if self._closed:
            return
        self._closed = True
        started = self._sink is not None
        self._sink = None
        for peer in list(self._pending):
            self._fail_pending(peer, Closed("transport closed"))
        if started:
            self._medium.radio.remove_node(self.node_id)
            await self._medium._release()

    def _check_open(self) -> None:
        if self._closed:
            raise Closed("transport closed")
        if self._sink is None:
            raise Broken("transport not started")

    def _fail_pending(self, peer: PeerId, error: Exception) -> None:
        for done in self._pending.pop(peer, ()):
            if not done.done():
                done.set_exception(error)

    def link_up(self, peer: PeerId, frame_limit: int) -> None:
        if self._sink is not None:
            self._sink.link_up(peer, frame_limit)

    def link_down(self, peer: PeerId, reason: str) -> None:
        self._fail_pending(peer, Broken(f"link down: {reason}"))
        if self._sink is not None:
            self._sink.link_down(peer, reason)

    def frame_received(self, peer: PeerId, frame: bytes) -> None:
        if self._sink is not None:
            self._sink.frame_received(peer, frame)

    def frame_sent(self, peer: PeerId) -> None:
        queue = self._pending.get(peer)
        if queue:
            done = queue.popleft()
            if not done.done():
                done.set_result(None)
