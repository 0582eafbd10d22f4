"""The app-mesh relay: a sans-IO state machine, `AppRouter.handle(event, now) -> list[Action]`.

It reassembles the phones' fragments, drops what is malformed, too big, over a link's rate,
already seen or at its hop limit, and floods the rest to every other link as the received
bytes with only the TTL byte changed: lowered by one, and to at most 7. Packets for a
recipient not known to be in range stay in short custody and go to links that come up
within the window, and are offered once to the uplink bridge (`OfferUplink`). `now` is
seconds on any clock that does not run backwards; nothing here reads a clock or does IO.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Final

from pigeon.appmesh.custody import CUSTODY_MAX_BYTES, CUSTODY_MAX_PACKETS, CUSTODY_WINDOW_S, Custody
from pigeon.appmesh.envelope import route_of
from pigeon.appmesh.errors import AppMeshError, MessageTooLarge
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
)
from pigeon.appmesh.fragment import (
    MAX_VALUE_LENGTH,
    MIN_LINK_VALUE_LENGTH,
    decode_fragment,
    payload_for,
    split,
)
from pigeon.appmesh.packet import DEFAULT_TTL, read_header, with_ttl
from pigeon.appmesh.packet import HEADER_SIZE as PACKET_HEADER_SIZE
from pigeon.appmesh.ratelimit import TokenBucket
from pigeon.appmesh.reassembly import Reassembler
from pigeon.appmesh.seen import SEEN_MAX_ENTRIES, SEEN_TTL_S, SeenCache

# A phone has one identity key; a link claiming more as originator is lying about some.
MAX_ORIGINS_PER_LINK: Final = 4


@dataclass(frozen=True, slots=True)
class AppRouterConfig:
    """Tunables; docs/protocol.md ("The Pigeon app's mesh dialect") says why each value."""

    max_packet_bytes: int = 64 * 1024  # a long text is a few kB; the app's own cap is 256 KiB
    in_packets_per_s: float = 16.0
    in_burst: float = 32.0
    # Out of us into one link: 8/s for the 60 s window is at most 496 ids, under half of the
    # 1,024 a phone remembers, so our own traffic cannot make a phone forget a packet we hold.
    out_packets_per_s: float = 8.0
    out_burst: float = 16.0
    seen_ttl_s: float = SEEN_TTL_S
    seen_max_entries: int = SEEN_MAX_ENTRIES
    custody_window_s: float = CUSTODY_WINDOW_S
    custody_max_packets: int = CUSTODY_MAX_PACKETS
    custody_max_bytes: int = CUSTODY_MAX_BYTES


@dataclass(slots=True, eq=False)
class _Link:
    value_length: int
    inbound: TokenBucket
    outbound: TokenBucket
    origins: set[bytes] = field(default_factory=set)  # sender keys it sent us at full TTL


class AppRouter:
    """One node's relay state for the app's mesh; feed it events, carry out its actions."""

    def __init__(self, config: AppRouterConfig | None = None) -> None:
        self.config = config if config is not None else AppRouterConfig()
        self._reassembler = Reassembler(max_message_bytes=self.config.max_packet_bytes)
        self.seen = SeenCache(self.config.seen_ttl_s, self.config.seen_max_entries)
        self.custody = Custody(
            self.config.custody_window_s,
            self.config.custody_max_packets,
            self.config.custody_max_bytes,
        )
        self._links: dict[str, _Link] = {}
        self._in_range: set[bytes] = set()  # every up link's origins: owners in range now
        self._served: frozenset[bytes] = frozenset()  # the owner's keys: packets end here
        self._next_message_id = 0
        self.counters: Counter[str] = Counter()

    def handle(self, event: Event, now: float) -> list[Action]:
        """Process one event at time `now`; return what to do, in order."""
        actions: list[Action] = []
        if isinstance(event, FrameReceived):  # the most frequent event by far
            self._on_frame(event, now, actions)
        elif isinstance(event, LinkUp):
            self._on_link_up(event, now, actions)
        elif isinstance(event, LinkDown):
            self._forget(event.link)
        elif isinstance(event, Originate):
            self._on_originate(event, now, actions)
        elif isinstance(event, ServeKeys):
            self._served = event.keys
        else:
            self._on_tick(now, actions)
        return actions

    def links(self) -> list[str]:
        """The links up now, in the order they came up."""
        return list(self._links)

    # -- events -------------------------------------------------------------------------------

    def _on_link_up(self, event: LinkUp, now: float, actions: list[Action]) -> None:
        if event.value_length < MIN_LINK_VALUE_LENGTH:
            self._drop(DropReason.LINK_TOO_SMALL, event.link, actions)
            self._forget(event.link)
            return
        link = self._links.get(event.link)
        if link is not None:  # renegotiated: keep its buckets and what it told us
            link.value_length = event.value_length
            return
        config = self.config
        self._links[event.link] = _Link(
            event.value_length,
            TokenBucket(config.in_packets_per_s, config.in_burst, now),
            TokenBucket(config.out_packets_per_s, config.out_burst, now),
        )
        self._hand_over(event.link, now, actions)

    def _on_tick(self, now: float, actions: list[Action]) -> None:
        for _ in range(self._reassembler.expire(now)):
            self._drop(DropReason.STALE, None, actions)
        self.seen.expire(now)
        self.counters["custody_expired"] += self.custody.expire(now)
        for name in list(self._links):
            self._hand_over(name, now, actions)

    def _on_frame(self, event: FrameReceived, now: float, actions: list[Action]) -> None:
        source = event.link
        link = self._links.get(source)
        if link is None:
            self._drop(DropReason.NO_LINK, source, actions)
            return
        try:
            data = self._reassembler.add(source, decode_fragment(event.frame), now)
            if data is None:
                return
            ttl, packet_id = read_header(data)
            _, sender, recipient = route_of(data, PACKET_HEADER_SIZE)
        except MessageTooLarge:
            self._drop(DropReason.TOO_BIG, source, actions)
            return
        except AppMeshError:
            self._drop(DropReason.MALFORMED, source, actions)
            return
        if not link.inbound.take(now):
            self._drop(DropReason.RATE, source, actions)  # not marked seen: a later copy may pass
            return
        if not self.seen.add(packet_id, now):
            self.custody.has_reached(packet_id, source)  # it has a copy: never hand it one
            self._drop(DropReason.DUPLICATE, source, actions)
            return
        if ttl == DEFAULT_TTL and sender not in link.origins:
            self._learn_origin(link, sender)
        if recipient in self._served:  # the owner's: ends here (the app floods; others relay)
            self.counters["delivered_local"] += 1
            actions.append(DeliverLocal(data))
            return
        if recipient not in self._in_range:  # also at TTL 1: the internet is not a radio hop
            self.counters["offered_uplink"] += 1
            actions.append(OfferUplink(sender, recipient, data))
        if ttl <= 1:
            self._drop(DropReason.TTL, source, actions)
            return
        # A sender may stamp any TTL; we never carry a packet further than the app's own 8 hops.
        forward = with_ttl(data, min(ttl, DEFAULT_TTL) - 1)
        self._relay(source, packet_id, forward, recipient, now, actions)

    def _on_originate(self, event: Originate, now: float, actions: list[Action]) -> None:
        """Our own packet: marked seen (an echo is a duplicate), flooded, kept in custody."""
        try:
            _, packet_id = read_header(event.packet)
            _, _, recipient = route_of(event.packet, PACKET_HEADER_SIZE)
        except AppMeshError:
            self._drop(DropReason.MALFORMED, None, actions)
            return
        if not self.seen.add(packet_id, now):
            self._drop(DropReason.DUPLICATE, None, actions)
            return
        self.counters["originated"] += 1
        self._relay("", packet_id, event.packet, recipient, now, actions)

    def _learn_origin(self, link: _Link, sender: bytes) -> None:
        """The phone on `link` sent a packet at full TTL: its owner is in range."""
        if len(link.origins) < MAX_ORIGINS_PER_LINK:
            link.origins.add(sender)
            self._in_range.add(sender)

    # -- relaying -----------------------------------------------------------------------------

    def _relay(
        self,
        source: str,
        packet_id: bytes,
        data: bytes,
        recipient: bytes,
        now: float,
        actions: list[Action],
    ) -> None:
        targets = []
        smallest = MAX_VALUE_LENGTH
        for name, link in self._links.items():
            if name == source:
                continue
            if link.outbound.take(now):
                targets.append(name)
                if link.value_length < smallest:
                    smallest = link.value_length
            else:
                self._drop(DropReason.RATE, name, actions)
        if targets:
            self.counters["relayed"] += 1
            self._send(data, targets, smallest, actions)
        in_range = recipient in self._in_range
        if not in_range and self.custody.hold(packet_id, data, {source, *targets}, now):
            self.counters["custody_held"] += 1

    def _hand_over(self, name: str, now: float, actions: list[Action]) -> None:
        link = self._links[name]
        for _, held in list(self.custody.owed(name, now)):
            if not link.outbound.take(now):
                return  # the rest waits for a later tick, while still fresh
            held.sent_to.add(name)
            self.counters["custody_handed_over"] += 1
            self._send(held.data, [name], link.value_length, actions)

    def _send(self, data: bytes, targets: list[str], smallest: int, actions: list[Action]) -> None:
        """Fragment `data` once for the smallest of the targets' value lengths; send to each."""
        frames = split(data, self._next_message_id, payload_for(smallest))
        self._next_message_id = (self._next_message_id + 1) & 0xFFFF
        actions += [SendFrame(name, frame) for name in targets for frame in frames]
        self.counters["frames_sent"] += len(frames) * len(targets)

    def _forget(self, name: str) -> None:
        if self._links.pop(name, None) is not None:
            self._in_range = {key for link in self._links.values() for key in link.origins}
        self._reassembler.drop(name)

    def _drop(self, reason: DropReason, link: str | None, actions: list[Action]) -> None:
        self.counters[reason.value] += 1
        actions.append(Drop(reason, link))
