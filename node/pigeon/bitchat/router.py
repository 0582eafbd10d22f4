"""The bitchat relay: a sans-IO state machine, `BitchatRouter.handle(event, now) -> list[Action]`.

Each frame is one bitchat packet. The router refuses what is malformed, too big, over a link's
rate, local-only (sync), stale (over 120 s from our clock, while that is synchronized), already
seen or at its hop limit, and forwards the rest as the received bytes with only the TTL byte
changed, by bitchat's own rules (its RelayController and fan-out selector): TTL capped at 7 and
clamped harder on a node with 6 or more links; directed packets and source routes go to the next
hop's link when known; broadcasts other than announces and fragments go to a log2-sized subset
of links; fragments pass through unassembled. `now` is Unix time in seconds (freshness needs the
wall clock); `rng` only draws the relay jitter. Nothing here reads a clock or does IO.
"""

from __future__ import annotations

import hashlib
import random
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Final

from pigeon.bitchat import packet as wire
from pigeon.bitchat.assembly import FragmentAssembler
from pigeon.bitchat.errors import PacketTooLarge, RemoteError
from pigeon.bitchat.events import (
    Action,
    Addressed,
    Drop,
    DropReason,
    Event,
    FrameReceived,
    Heard,
    LinkDown,
    LinkUp,
    SendFrame,
)
from pigeon.bitchat.fragment import HEADER_SIZE as FRAGMENT_HEADER_SIZE
from pigeon.bitchat.fragment import FragmentHeader, read_fragment_header
from pigeon.bitchat.ratelimit import TokenBucket
from pigeon.bitchat.seen import SEEN_MAX_ENTRIES, SEEN_TTL_S, SeenCache

DEFAULT_TTL: Final = 7  # bitchat's messageTTLDefault
HIGH_DEGREE_LINKS: Final = 6  # bitchat's bleHighDegreeThreshold
DENSE_TTL_CAP: Final = 5
FRESHNESS_MS: Final = 120_000  # bitchat's maxTimestampSkewMs
# Directed types relayed deterministically (no subset, no clamp) when they carry a recipient.
_DIRECTED_TYPES: Final = frozenset(
    {wire.NOISE_ENCRYPTED, wire.COURIER_ENVELOPE, wire.PING, wire.PONG, wire.NOSTR_CARRIER}
)
_NO_SUBSET_TYPES: Final = frozenset({wire.FRAGMENT, wire.ANNOUNCE})
_HEARD_TYPES: Final = frozenset({wire.ANNOUNCE, wire.MESSAGE})
# Addressed to this node, these go to its courier or its Nostr gateway (`Addressed`) instead
# of being dropped.
COURIER_TYPES: Final = frozenset(
    {wire.COURIER_ENVELOPE, wire.COURIER_SPRAY_ACK, wire.COURIER_SPRAY_DECLINE}
)
ADDRESSED_TYPES: Final = COURIER_TYPES | {wire.NOSTR_CARRIER}


@dataclass(frozen=True, slots=True)
class BitchatRouterConfig:
    """Tunables; docs/protocol.md ("bitchat") says why each value."""

    max_packet_bytes: int = 4096  # a GATT value is at most 512; padded blocks at most 2048
    in_packets_per_s: float = 30.0
    in_burst: float = 60.0
    out_packets_per_s: float = 40.0
    out_burst: float = 80.0
    seen_ttl_s: float = SEEN_TTL_S
    seen_max_entries: int = SEEN_MAX_ENTRIES


@dataclass(slots=True, eq=False)
class _Link:
    frame_limit: int
    inbound: TokenBucket
    outbound: TokenBucket
    peer: bytes | None = None  # the bitchat id its direct announce (TTL 7) claimed


def subset_size(count: int) -> int:
    """How many of `count` links a broadcast goes to: all of 1 or 2, else bit_length + 1."""
    if count <= 2:
        return count
    return min(count, (count - 1).bit_length() + 1)


def packet_key(data: bytes, view: wire.PacketView) -> bytes:
    """bitchat's duplicate key: sender, timestamp, type and a digest of the payload."""
    digest = hashlib.sha256(data[view.payload_start : view.payload_end]).digest()[:4]
    return b"".join((view.sender, data[3:11], bytes((view.type,)), digest))


def _subset(names: list[str], key: bytes) -> list[str]:
    """A log2-sized run of `names` starting where the packet's key digest points: deterministic
    for a packet, spread over the links across packets (bitchat ranks links by a hash)."""
    size = subset_size(len(names))
    if size >= len(names):
        return names
    start = int.from_bytes(key[-4:], "big") % len(names)
    return (names[start:] + names[:start])[:size]


ASSEMBLED_MAX_BYTES: Final = 20 * 1024


class BitchatRouter:
    """One node's relay state for bitchat's mesh; feed it events, carry out its actions."""

    def __init__(
        self,
        own_id: bytes,
        rng: random.Random,
        config: BitchatRouterConfig | None = None,
    ) -> None:
        self.own_id = own_id
        self.config = config if config is not None else BitchatRouterConfig()
        self._rng = rng
        self.seen = SeenCache(self.config.seen_ttl_s, self.config.seen_max_entries)
        self._links: dict[str, _Link] = {}
        self._peer_links: dict[bytes, str] = {}  # bitchat id -> the link it is directly on
        self.assembler = FragmentAssembler()  # courier packets addressed to us, fragmented
        self.counters: Counter[str] = Counter()
        self._judge_freshness = True
        # While freshness is not judged: by how much each linked phone's latest direct announce
        # (made just then, by the phone on that link) was ahead of our clock.
        self._clock_offsets: dict[str, float] = {}

    def handle(self, event: Event, now: float) -> list[Action]:
        """Process one event at Unix time `now`; return what to do, in order."""
        actions: list[Action] = []
        if isinstance(event, FrameReceived):
            self._on_frame(event.link, event.frame, now, actions)
        elif isinstance(event, LinkUp):
            self._on_link_up(event, now)
        elif isinstance(event, LinkDown):
            self._forget(event.link)
        else:
            self.seen.expire(now)
            self.assembler.expire(now)
        return actions

    def originate(self, data: bytes, now: float, link: str | None = None) -> list[Action]:
        """Send a packet this node made (its announce, an owner's post) to every link, or to
        `link` only (an announce for a phone that just linked)."""
        view = wire.parse(data, self.config.max_packet_bytes)
        self.seen.add(packet_key(data, view), now)
        actions: list[Action] = []
        targets = [link] if link in self._links else [] if link is not None else list(self._links)
        self._send(data, targets, 0.0, now, actions)
        self.counters["originated"] += 1
        return actions

    def links(self) -> list[str]:
        """The links up now, in the order they came up."""
        return list(self._links)

    def frame_limit(self, link: str) -> int | None:
        """The largest frame `link` takes, or None when it is not up."""
        known = self._links.get(link)
        return known.frame_limit if known is not None else None

    def peer_on(self, link: str) -> bytes | None:
        """The bitchat id whose direct announce came in on `link`, if any."""
        known = self._links.get(link)
        return known.peer if known is not None else None

    def peers(self) -> int:
        """Links whose bitchat peer has announced itself directly."""
        return sum(1 for link in self._links.values() if link.peer is not None)

    # -- events -------------------------------------------------------------------------------

    def _on_link_up(self, event: LinkUp, now: float) -> None:
        link = self._links.get(event.link)
        if link is not None:
            link.frame_limit = event.frame_limit
            return
        config = self.config
        self._links[event.link] = _Link(
            event.frame_limit,
            TokenBucket(config.in_packets_per_s, config.in_burst, now),
            TokenBucket(config.out_packets_per_s, config.out_burst, now),
        )

    @property
    def judge_freshness(self) -> bool:
        """Whether stale packets are dropped: only while the node's own clock is synchronized.
        A Pi without a real-time clock, after a power cut and before any uplink, runs behind:
        judged by it every packet would be stale and nothing relayed. The phones judge
        freshness by their own clocks meanwhile."""
        return self._judge_freshness

    @judge_freshness.setter
    def judge_freshness(self, judge: bool) -> None:
        self._judge_freshness = judge
        if judge:
            self._clock_offsets.clear()  # our clock is right again: what phones said is moot

    def clock_offset_s(self) -> float:
        """How far the linked phones' clocks run ahead of ours while ours is not synchronized:
        the median over their latest direct announces (a lone liar cannot move it while honest
        phones are the majority of links); 0.0 while it is synchronized, or before any."""
        return statistics.median(self._clock_offsets.values()) if self._clock_offsets else 0.0

    def _forget(self, name: str) -> None:
        self._clock_offsets.pop(name, None)
        link = self._links.pop(name, None)
        if link is not None and link.peer is not None and self._peer_links.get(link.peer) == name:
            del self._peer_links[link.peer]

    def _on_frame(self, source: str, data: bytes, now: float, actions: list[Action]) -> None:
        link = self._links.get(source)
        if link is None:
            self._drop(DropReason.NO_LINK, source, actions)
            return
        if len(data) > self.config.max_packet_bytes:
            self._drop(DropReason.TOO_BIG, source, actions)
            return
        if not link.inbound.take(now):
            self._drop(DropReason.RATE, source, actions)  # unseen: a later copy may pass
            return
        header: FragmentHeader | None = None
        try:
            view = wire.parse(data, self.config.max_packet_bytes)
            if view.type == wire.FRAGMENT:
                header = read_fragment_header(data[view.payload_start : view.payload_end])
        except PacketTooLarge:
            self._drop(DropReason.TOO_BIG, source, actions)
            return
        except RemoteError:
            self._drop(DropReason.MALFORMED, source, actions)
            return
        courier = view.type in ADDRESSED_TYPES or (
            header is not None and header.original_type in ADDRESSED_TYPES
        )
        reason = self._refusal(view, now, courier)
        if reason is not None:
            self._drop(reason, source, actions)
            return
        key = packet_key(data, view)
        if not self.seen.add(key, now):
            self._drop(DropReason.DUPLICATE, source, actions)
            return
        if view.type == wire.ANNOUNCE and view.ttl == DEFAULT_TTL:
            self._learn_peer(source, link, view.sender)
            if not self._judge_freshness:
                self._clock_offsets[source] = view.timestamp_ms / 1000.0 - now
        if view.recipient == self.own_id:
            self._addressed(source, data, view, header, now, actions)
            return
        if view.type in _HEARD_TYPES and view.is_broadcast:
            actions.append(Heard(data, source))
        self._relay(source, data, view, key, now, actions)

    def _addressed(
        self,
        source: str,
        data: bytes,
        view: wire.PacketView,
        header: FragmentHeader | None,
        now: float,
        actions: list[Action],
    ) -> None:
        """A courier or carrier packet, or a fragment of one, addressed to us: passed up whole."""
        if header is not None:
            chunk = data[view.payload_start + FRAGMENT_HEADER_SIZE : view.payload_end]
            whole = self.assembler.add(view.sender, header, chunk, now)
            if whole is None:
                return
            try:
                inner = wire.parse(whole, ASSEMBLED_MAX_BYTES)
            except RemoteError:
                self._drop(DropReason.MALFORMED, source, actions)
                return
            if (inner.type, inner.sender, inner.recipient) != (
                header.original_type,
                view.sender,
                self.own_id,
            ):
                self._drop(DropReason.MALFORMED, source, actions)
                return
            data = whole
        self.counters["addressed"] += 1
        actions.append(Addressed(source, data))

    def _refusal(self, view: wire.PacketView, now: float, courier: bool) -> DropReason | None:
        """Why a parsed packet is not relayed before the seen-cache is asked, if it is not."""
        if view.type == wire.REQUEST_SYNC or view.is_rsr:
            return DropReason.LOCAL_ONLY
        if self._judge_freshness and abs(view.timestamp_ms - now * 1000.0) > FRESHNESS_MS:
            return DropReason.STALE
        if view.sender == self.own_id:
            return DropReason.FOR_US
        if view.recipient == self.own_id and not courier:
            return DropReason.FOR_US
        return None

    def _learn_peer(self, name: str, link: _Link, peer: bytes) -> None:
        """A direct announce (TTL 7) on `name`: its sender is the phone on that link."""
        if link.peer is not None and self._peer_links.get(link.peer) == name:
            del self._peer_links[link.peer]
        link.peer = peer
        self._peer_links[peer] = name

    # -- relaying -----------------------------------------------------------------------------

    def _relay(
        self,
        source: str,
        data: bytes,
        view: wire.PacketView,
        key: bytes,
        now: float,
        actions: list[Action],
    ) -> None:
        decision = self._decide(view)
        if decision is None:
            self._drop(DropReason.TTL, source, actions)
            return
        new_ttl, delay_s = decision
        forward = wire.with_ttl(data, new_ttl)
        targets = self._targets(source, view)
        if targets is None:
            others = [name for name in self._links if name != source]
            if view.is_broadcast and view.type not in _NO_SUBSET_TYPES:
                others = _subset(others, key)
            targets = others
        if self._send(forward, targets, delay_s, now, actions):
            self.counters["relayed"] += 1

    def _decide(self, view: wire.PacketView) -> tuple[int, float] | None:
        """bitchat's relay decision: the TTL to forward with and the jitter, or None."""
        capped = min(view.ttl, DEFAULT_TTL)
        if capped <= 1:
            return None
        degree = len(self._links)
        rng = self._rng
        directed = not view.is_broadcast
        if view.type == wire.NOISE_HANDSHAKE:
            return capped - 1, rng.uniform(0.010, 0.035)
        if directed and (view.type in _DIRECTED_TYPES or view.type == wire.FRAGMENT):
            return capped - 1, rng.uniform(0.020, 0.060)
        if view.type in (wire.FRAGMENT, wire.VOICE_FRAME):
            limit = min(capped, DENSE_TTL_CAP if degree >= HIGH_DEGREE_LINKS else DEFAULT_TTL)
            return (limit - 1, rng.uniform(0.008, 0.025)) if limit > 1 else None
        if degree >= HIGH_DEGREE_LINKS:
            limit = max(2, min(capped, DENSE_TTL_CAP))
        elif degree <= 2:
            limit = capped
        else:
            limit = max(2, min(capped, DEFAULT_TTL if view.type == wire.ANNOUNCE else 6))
        return limit - 1, rng.uniform(*_BROADCAST_JITTER_S[min(degree, 10)])

    def _targets(self, source: str, view: wire.PacketView) -> list[str] | None:
        """The one link a routed or directed packet goes to, when known; None: flood."""
        hop: bytes | None = None
        if view.route:
            try:
                index = view.route.index(self.own_id)
            except ValueError:
                hop = view.route[0]
            else:
                hop = view.route[index + 1] if index + 1 < len(view.route) else view.recipient
        elif not view.is_broadcast:
            hop = view.recipient
        name = self._peer_links.get(hop) if hop is not None else None
        if name is None or name == source:
            return None
        return [name]

    def _send(
        self, data: bytes, targets: list[str], delay_s: float, now: float, actions: list[Action]
    ) -> bool:
        sent = 0
        for name in targets:
            link = self._links[name]
            if len(data) > link.frame_limit:
                self._drop(DropReason.LINK_TOO_SMALL, name, actions)
            elif not link.outbound.take(now):
                self._drop(DropReason.RATE, name, actions)
            else:
                actions.append(SendFrame(name, data, delay_s))
                sent += 1
        self.counters["frames_sent"] += sent
        return sent > 0

    def _drop(self, reason: DropReason, link: str | None, actions: list[Action]) -> None:
        self.counters[reason.value] += 1
        actions.append(Drop(reason, link))


# bitchat's broadcast relay jitter by degree (links): 0-2, 3-5, 6-9, 10 and more.
_BROADCAST_JITTER_S: Final = (
    *((0.010, 0.040),) * 3,
    *((0.060, 0.150),) * 3,
    *((0.080, 0.180),) * 4,
    (0.100, 0.220),
)
