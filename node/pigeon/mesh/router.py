"""The mesh router: a sans-IO state machine, `Router.handle(event, now) -> list[Action]`.

It reassembles frames, drops malformed, expired, throttled and duplicate packets, delivers
envelopes and notices for the tags our endpoint serves, carries packets for others (spool
admission and expiry), hands a recipient its envelopes when it announces its tag, clears
carried envelopes with receipts, keyed on the receipt hash (and answers a neighbour that offers
an envelope we know was delivered with its receipt), and lets a `Policy` pick the neighbours
that get relay copies. It reads no payload but a receipt's secret. `now` is unix time in
seconds; randomness comes from the injected rng.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from pigeon.mesh.dedup import SEEN_CACHE_MAX_ENTRIES, SEEN_CACHE_TTL_S, SeenCache
from pigeon.mesh.errors import MalformedFrame, MalformedPacket
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
from pigeon.mesh.fragment import MAX_MESSAGE_ID, Reassembler
from pigeon.mesh.gradient import ANNOUNCE_HOPS, ROUTE_HORIZON, TagGradient
from pigeon.mesh.hopack import ACK_BATCH_S, HopAcks, InFlight
from pigeon.mesh.outbox import Outbox
from pigeon.mesh.packet import (
    ACK_ID_LEN,
    MAX_ACK_IDS,
    MAX_HOLDS_IDS,
    MAX_TTL,
    Flag,
    Packet,
    PacketType,
    Priority,
    decode_ack,
    decode_announce,
    decode_holds,
    decode_packet,
    decode_receipt,
    decode_routes,
    encode_packet,
    encoded_with_ttl,
    make_ack,
    make_announce,
    make_holds,
    make_routes,
    make_routes_update,
    priority,
)
from pigeon.mesh.policy import DEFAULT_WAIT_TTL, Policy, make_policy
from pigeon.mesh.ratelimit import LimiterPolicy, LimitKind, NeighbourLimiter, ThrottleCounts
from pigeon.mesh.receipt import receipt_hash
from pigeon.mesh.routecodec import decode_routes_update
from pigeon.mesh.routesync import RouteReceiver, RouteSender, Verdict
from pigeon.mesh.spool import Spool, SpoolPolicy, SpoolReason

_LOGGER = logging.getLogger(__name__)

LOCAL: Final = ""  # the depositor name of packets from our own endpoint
# Depositor prefix of packets taken back from storage after a restart. Who deposited them is not
# stored, so each recipient tag stands in: per-tag quotas still apply, and one big restored
# spool is not refused for exceeding a single depositor's share.
RESTORED: Final = "\x00restored/"
ANNOUNCE_LIFETIME_S: Final = 600
ACK_LIFETIME_S: Final = 60
# A routes update sent this many times without an ack is given up: the neighbour gets the
# whole table instead (at once after a delta, which it may have refused for a gap; after the
# interval for a whole table, which a node of the previous version never acks).
ROUTES_RESYNC_TRIES: Final = 4
# An update that names a nearer tag goes at once, but at most one this often per neighbour
# (beside the one in flight, which waits for its ack): once resends joined frames, acks came
# back sooner, and a walking crowd sent an update per round trip (60 people in a 500 m
# square, seed 5: 37% more routes updates, 13% more frames).
ROUTES_URGENT_GAP_S: Final = 1.0
# What a new neighbour gets as the link comes up waits this long at most for its holds.
HOLDS_WAIT_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """Tunables; the defaults suit a Pi relaying a busy neighbourhood."""

    routing: str = "default"
    spray_wait_ttl: int = DEFAULT_WAIT_TTL
    send_window_frames: int = 4
    outbox_max_packets: int = 4096
    # An envelope handed to its recipient is offered again after this long while the recipient
    # stays in range and no receipt came back (the frames may have been lost).
    handover_retry_s: float = 15.0
    handover_max_retries: int = 2
    # Routes change with every link around us: a neighbour hears of new tags at once, of other
    # changes (distances, withdrawals) at most this often.
    gradient_announce_interval_s: float = 30.0
    # Other changes also wait until they have lasted this long: a link that drops and comes
    # back (BLE reconnects within seconds) costs its neighbours no update, and nothing beyond
    # it loses its routes for an interval (a withdrawal told at once was undone only by the
    # next interval's update, the route back being no nearer than ever told). The routes a
    # neighbour told us outlive its link by as long (see `TagGradient.lapse`).
    gradient_hold_s: float = 5.0
    gradient_max_handovers: int = 2
    # Ticks may come every second (unacked packets are resent on them); the rest of the
    # upkeep (expiry, handover retries) runs at most this often.
    housekeeping_interval_s: float = 10.0
    # Our own envelopes with no receipt after this long are given a fresh copy budget (the
    # policy decides what that means), then again after twice as long, and so on.
    origin_retry_s: float = 600.0
    receipts_max: int = 50_000
    seen_ttl_s: float = SEEN_CACHE_TTL_S
    seen_max_entries: int = SEEN_CACHE_MAX_ENTRIES
    spool: SpoolPolicy = field(default_factory=SpoolPolicy)
    limits: LimiterPolicy = field(default_factory=LimiterPolicy)


@dataclass(slots=True, eq=False)
class Carried:
    """A packet this node carries: its bytes, our TTL for it and who is known to have it."""

    packet: Packet
    encoded: bytes
    ttl: int
    priority: int
    holders: set[str] = field(default_factory=set)
    last_sent: float = -math.inf  # when a copy was last queued for anyone
    retries: int = 0  # handovers repeated because no receipt came back
    relayed: int = 0  # handovers down the gradient to a neighbour nearer the recipient


@dataclass(slots=True, eq=False)
class _Neighbour:
    outbox: Outbox
    tags: tuple[bytes, ...] = ()  # what it serves, in announced order (runs stay reproducible)
    spent: set[bytes] = field(default_factory=set)  # unacked copies the policy paid for
    handed: set[bytes] = field(default_factory=set)  # unacked copies handed down a route
    acks: HopAcks = field(default_factory=HopAcks)
    announced: tuple[bytes, ...] = ()  # our own tags, as last announced to it
    announce_id: bytes | None = None  # our last announce to it
    routes_sent: tuple[tuple[int, bytes], ...] = ()  # our routes, as last told to it
    routes_id: bytes | None = None  # our last routes packet to it
    routes_told: dict[bytes, int] = field(default_factory=dict)  # tag -> nearest ever told
    routes_v1: bool = False  # it sends routes version 1 (type 7): it gets them too
    routes_out: RouteSender = field(default_factory=RouteSender)  # version 2, what it was told
    routes_in: RouteReceiver = field(default_factory=RouteReceiver)  # version 2, what it said
    routes_seqs: dict[bytes, int] = field(default_factory=dict)  # unacked update id -> seq
    holds_due: float = math.inf  # until when the link-up spray waits for its holds
    holds_heard: bool = False  # its holds came: a link's first is its only one heeded
    gradient_at: float = -math.inf  # when we last told it our routes
    routes_changed_at: float = math.inf  # since when it was told otherwise (not urgently)


class Router:
    """One node's routing state; feed it events, carry out the actions it returns."""

    def __init__(
        self, config: RouterConfig, rng: random.Random, seen: SeenCache | None = None
    ) -> None:
        """`seen` restores a persisted seen-cache (see `SeenCache.from_bytes`)."""
        self.config = config
        self._rng = rng
        self._policy: Policy = make_policy(config.routing, config.spray_wait_ttl)
        self._reassembler = Reassembler()
        self.seen = (
            seen if seen is not None else SeenCache(config.seen_ttl_s, config.seen_max_entries)
        )
        self._spool = Spool(config.spool)
        self._limiter = NeighbourLimiter(config.limits)
        self._neighbours: dict[str, _Neighbour] = {}
        self._carried: dict[bytes, Carried] = {}
        self._by_tag: dict[bytes, dict[bytes, None]] = {}
        self._receipts: OrderedDict[bytes, Packet] = OrderedDict()  # receipt hash -> receipt
        self._served: frozenset[bytes] = frozenset()
        self._announced: tuple[bytes, ...] = ()  # the part of `_served` we tell neighbours
        self._gradient = TagGradient()
        self._announce_due = False
        self._routes_due = False
        self._acks_due = False  # a tick came: every pending ack goes out
        self._next_housekeeping = -math.inf
        self._dirty: dict[str, None] = {}
        self._originated: dict[bytes, tuple[float, float]] = {}  # id -> (due, interval)
        self._next_retry = -math.inf
        self._now = 0.0
        self.metrics: Counter[str] = Counter()

    # -- public API ---------------------------------------------------------------------------

    def handle(self, event: Event, now: float) -> list[Action]:
        """Process one event at unix time `now`; return what to do, in order."""
        actions: list[Action] = []
        if type(event) is FrameSent:  # the most frequent event by far: a short path
            neighbour = self._neighbours.get(event.peer)
            # Most frames finish with nothing more to send (the rest of the packet is in
            # flight): those are answered without the pull.
            if neighbour is not None and neighbour.outbox.sent():
                self._pull(event.peer, neighbour, now, actions)
            return actions
        self._now = now
        if type(event) is FrameReceived:  # the next most frequent: no lookup
            self._on_frame(event, now, actions)
        else:
            _HANDLERS[type(event)](self, event, now, actions)
        if self._dirty or self._announce_due:
            self._pump(actions)
        return actions

    def neighbours(self) -> list[str]:
        """The peers with a link now, in the order they came up."""
        return list(self._neighbours)

    def carried_packets(self) -> list[Carried]:
        """Every packet carried now (envelopes and receipts), oldest first."""
        return list(self._carried.values())

    def carried_envelopes(self) -> Iterator[Carried]:
        """The envelopes carried now, oldest first."""
        return (c for c in list(self._carried.values()) if c.packet.type is _T_ENVELOPE)

    @property
    def spool_envelopes(self) -> int:
        """How many envelopes this node holds for others."""
        return self.metrics["carried_envelopes"]

    def throttled_peers(self) -> dict[str, ThrottleCounts]:
        """Neighbours the rate limiter refused, and how often, per kind."""
        return self._limiter.throttled_peers()

    def restore(self, encoded: bytes, now: float) -> bool:
        """Carry again a packet this node stored before a restart; False if it is not carried.

        Malformed, expired, already carried or refused packets are not carried. Their ids are
        in the restored seen-cache already, so nothing here touches it.
        """
        try:
            packet = decode_packet(encoded)
        except MalformedPacket:
            self.metrics["restore_malformed"] += 1
            return False
        if packet.expires_at_s <= now or packet.packet_id in self._carried:
            return False
        self._now = now
        actions: list[Action] = []
        self._carry(packet, encoded, RESTORED + packet.recipient_tag.hex(), now, actions)
        if self._dirty or self._announce_due:
            self._pump(actions)
        return packet.packet_id in self._carried

    def has_route(self, tag: bytes) -> bool:
        """Whether the gradient knows a neighbour nearer to `tag`, linked now."""
        return self._gradient.via(tag) in self._neighbours

    def send_copy(
        self, carried: Carried, peer: str, ttl: int, *, spent: bool = False, urgent: bool = False
    ) -> bool:
        """Queue a copy of `carried` at `ttl` for `peer` (a policy's decision); True if queued."""
        neighbour = self._neighbours.get(peer)
        if neighbour is None:
            return False
        packet_id = carried.packet.packet_id
        encoded = carried.encoded
        if ttl != encoded[2]:  # the TTL byte; the packet is valid, so only the byte changes
            if not 0 <= ttl <= MAX_TTL:
                raise ValueError(f"ttl {ttl} outside 0..{MAX_TTL}")
            encoded = b"".join((encoded[:2], _TTL_BYTES[ttl], encoded[3:]))
        if neighbour.outbox.put(packet_id, encoded, carried.priority, urgent):
            carried.holders.add(peer)
            carried.last_sent = self._now
            if spent:
                neighbour.spent.add(packet_id)
            self._dirty[peer] = None
            self.metrics["copies_queued"] += 1
            return True
        self.metrics["outbox_refused"] += 1
        return False

    # -- events -------------------------------------------------------------------------------

    def _on_link_up(self, event: LinkUp, now: float, actions: list[Action]) -> None:
        if event.peer in self._neighbours:
            self._on_link_down(LinkDown(event.peer), now, actions)
        first_id = self._rng.randrange(MAX_MESSAGE_ID + 1)
        outbox = Outbox(
            event.frame_limit,
            self.config.send_window_frames,
            self.config.outbox_max_packets,
            first_id,
        )
        self._neighbours[event.peer] = _Neighbour(outbox)
        self.metrics["links_up"] += 1
        self._announce_due = True
        self._routes_due = True
        if self._gradient.relinked(event.peer):  # back: what waited for it goes on
            for tag, via in self._gradient.routes():
                if via == event.peer:
                    for packet_id in self._by_tag.get(tag, ()):
                        self._hand_down(self._carried[packet_id], via)
        if self._policy.follows_gradient:
            # What goes to it as the link comes up waits for its holds (or `HOLDS_WAIT_S`).
            self._queue_holds(event.peer, now)
            self._neighbours[event.peer].holds_due = now + HOLDS_WAIT_S
        else:
            self._policy.on_link_up(self, event.peer)

    def _on_link_down(self, event: LinkDown, now: float, actions: list[Action]) -> None:
        neighbour = self._neighbours.pop(event.peer, None)
        self._reassembler.drop_peer(event.peer)
        self._dirty.pop(event.peer, None)
        if neighbour is None:
            return
        self._gradient.lapse(event.peer, now)
        self._gradient_changed()
        # Queued or sent but never acked: the neighbour may not have it, so it is offered
        # again at the next meeting, and the budget spent on it comes back.
        unacked = [entry.packet_id for entry in neighbour.acks.give_up()]
        for packet_id in (*neighbour.outbox.queued_ids(), *unacked):
            carried = self._carried.get(packet_id)
            if carried is None:
                continue
            carried.holders.discard(event.peer)
            self._refund(neighbour, packet_id, carried)

    def _pull(self, peer: str, neighbour: _Neighbour, now: float, actions: list[Action]) -> None:
        """Add the frames that may go to `peer` now; what starts going out awaits its ack."""
        outbox = neighbour.outbox
        frames = outbox.pull()
        if not frames:
            return
        acks = neighbour.acks
        for packet_id, encoded, prio, message_id in outbox.take_started():
            kind = encoded[1]
            if kind != _ACK and kind != _HOLDS:  # never acked; routes updates acked at once
                acks.started(packet_id, encoded, prio, now, kind == _ROUTES2, message_id)
        self.metrics["frames_out"] += len(frames)
        for frame in frames:
            actions.append(SendFrame(peer, frame))

    def _on_frame(self, event: FrameReceived, now: float, actions: list[Action]) -> None:
        peer = event.peer
        self.metrics["frames_in"] += 1
        if not self._limiter.allow(peer, _L_BYTES, len(event.frame), now):
            self._drop(_D_THROTTLED, peer, actions)
            return
        try:
            data = self._reassembler.add(peer, event.frame, now)
            if data is None:
                return
            packet = decode_packet(data)
        except (MalformedFrame, MalformedPacket) as exc:
            self.metrics["drop_malformed"] += 1
            _LOGGER.debug("malformed input from a neighbour: %s", exc)
            actions.append(Drop(_D_MALFORMED, peer))
            return
        self._on_packet(packet, data, peer, now, actions)

    def _on_packet(
        self, packet: Packet, data: bytes, peer: str, now: float, actions: list[Action]
    ) -> None:
        self.metrics["packets_in"] += 1
        limiter = self._limiter
        if not limiter.allow(peer, _L_PACKETS, 1, now) or (
            packet.flags & _HANDSHAKE and not limiter.allow(peer, _L_HANDSHAKES, 1, now)
        ):
            self._drop(_D_THROTTLED, peer, actions)
            return
        ptype = packet.type
        packet_id = packet.packet_id
        neighbour = self._neighbours.get(peer)
        if ptype is _T_ACK:
            if neighbour is not None:
                self._on_ack(peer, neighbour, decode_ack(packet.payload), now)
            return
        if ptype is _T_ROUTES2:
            if neighbour is not None:
                self._on_routes_update(packet, peer, neighbour, now, actions)
            return
        if ptype is _T_HOLDS:
            # Heeded once a link: each costs a walk over all we carry, and a node sends one
            # as the link comes up (more from a neighbour would only make work for us).
            if neighbour is not None and self._policy.follows_gradient:
                if neighbour.holds_heard:
                    self.metrics["holds_ignored"] += 1
                else:
                    neighbour.holds_heard = True
                    self._on_holds(neighbour, peer, decode_holds(packet.payload))
            return
        if neighbour is not None:  # acked even if expired or a duplicate: it need not resend
            self._ack(peer, neighbour, packet_id, now)
        if packet.expires_at_s <= now:
            self._drop(_D_EXPIRED, peer, actions)
            return
        if ptype is _T_ANNOUNCE:
            self._on_announce(packet, peer)
            return
        if ptype is _T_ROUTES:
            if neighbour is not None and not neighbour.routes_v1:
                # A node of the previous version: it gets version 1 from now on, at once (it
                # could not read the version 2 updates it was sent).
                neighbour.routes_v1 = True
                neighbour.routes_sent = ()
                neighbour.gradient_at = neighbour.routes_changed_at = -math.inf
                self._routes_due = self._announce_due = True
            if self._policy.follows_gradient:
                self._gradient.heard_routes(peer, decode_routes(packet.payload))
                self._gradient_changed()
            return
        if neighbour is not None and neighbour.outbox.cancel(packet_id):
            self.metrics["copies_cancelled"] += 1  # managed rebroadcast: it has it already
        carried = self._carried.get(packet_id)
        if carried is not None:
            carried.holders.add(peer)
            self._policy.on_duplicate(carried, packet.ttl)
        if self.seen.check_and_add(packet_id, now):
            self._answer_with_receipt(packet, peer)
            self._drop(_D_DUPLICATE, peer, actions)
            return
        if packet.type is _T_RECEIPT:
            self._on_receipt(packet, data, peer, now, actions)
        elif packet.type is _T_NOTICE:
            self._on_notice(packet, data, peer, now, actions)
        else:
            self._on_envelope(packet, data, peer, now, actions)

    def _ack(
        self, peer: str, neighbour: _Neighbour, packet_id: bytes, now: float, urgent: bool = False
    ) -> None:
        """Ack `packet_id` to `peer`: the first in a second at once (a lone packet on a quiet
        link is acked without delay), the rest of a burst at the next tick or once one is full;
        `urgent` (a routes update), at once, without using up the second's first ack: the
        sender counts on that for the next other packet (see `hopack`)."""
        acks = neighbour.acks
        acks.to_ack.append(packet_id)
        if acks.ack_again(packet_id):
            urgent = True
            self.metrics["acks_repeated"] += 1
        if urgent or now >= acks.acked_at + ACK_BATCH_S:
            if not urgent:
                acks.acked_at = now
            acks.ack_now = True
            self._dirty[peer] = None
        elif len(acks.to_ack) >= MAX_ACK_IDS:
            self._dirty[peer] = None

    def _on_routes_update(
        self, packet: Packet, peer: str, neighbour: _Neighbour, now: float, actions: list[Action]
    ) -> None:
        """A routes version 2 update: acked only if applied or superseded, so that an ack
        tells the sender what we hold (an expired one is neither: its sender resyncs)."""
        if packet.expires_at_s <= now:
            self._drop(_D_EXPIRED, peer, actions)
            return
        if not self._policy.follows_gradient:
            self._ack(peer, neighbour, packet.packet_id, now)  # routes are not for us
            return
        verdict = neighbour.routes_in.accept(decode_routes_update(packet.payload))
        if verdict is _V_GAP:
            self.metrics["routes_gaps"] += 1
            return
        # At once: the sender holds back its next update until this ack comes.
        self._ack(peer, neighbour, packet.packet_id, now, urgent=True)
        if verdict is _V_APPLIED:
            self._gradient.set_routes(peer, neighbour.routes_in.view)
            self._gradient_changed()

    def _on_envelope(
        self, packet: Packet, data: bytes, peer: str | None, now: float, actions: list[Action]
    ) -> None:
        if packet.receipt_hash in self._receipts and self._answer_with_receipt(packet, peer):
            self._drop(_D_CLEARED, peer, actions)
            return
        if packet.recipient_tag in self._served:
            self.metrics["delivered"] += 1
            actions.append(Deliver(packet))
            return
        self._carry(packet, data, peer, now, actions)

    def _on_receipt(
        self, packet: Packet, data: bytes, peer: str | None, now: float, actions: list[Action]
    ) -> None:
        # Carried on, never delivered: it is addressed to the cleared envelope's tag, and the
        # sender's endpoint learns of delivery from the notice that goes with it.
        secret = decode_receipt(packet.payload)
        for envelope_id in self._spool.clear_by_receipt(secret):
            self._forget(envelope_id)
            self.metrics["receipts_cleared"] += 1
        self._remember_receipt(receipt_hash(secret), packet)
        self._carry(packet, data, peer, now, actions)

    def _on_notice(
        self, packet: Packet, data: bytes, peer: str | None, now: float, actions: list[Action]
    ) -> None:
        if packet.recipient_tag in self._served:
            self.metrics["notices_delivered"] += 1
            actions.append(Deliver(packet))
            return
        self._carry(packet, data, peer, now, actions)

    def _on_announce(self, packet: Packet, peer: str) -> None:
        neighbour = self._neighbours.get(peer)
        if neighbour is None:
            return
        tags = decode_announce(packet.payload)
        self.metrics["announces_in"] += 1
        if packet.ttl >= ANNOUNCE_HOPS:
            neighbour.tags = tags
            for tag in tags:
                for packet_id in list(self._by_tag.get(tag, ())):
                    self._hand_over(self._carried[packet_id], peer)
        if self._policy.follows_gradient:
            self._gradient.heard(peer, packet.ttl, tags)
            self._gradient_changed()

    def _on_ack(self, peer: str, neighbour: _Neighbour, prefixes: list[bytes], now: float) -> None:
        self.metrics["acks_in"] += 1
        tags = neighbour.tags
        seqs = neighbour.routes_seqs
        outbox = neighbour.outbox
        for packet_id in neighbour.acks.acked(prefixes, now):
            if outbox.cancel(packet_id):  # a resend queued before the ack came
                self.metrics["resends_cancelled"] += 1
            if seqs and packet_id in seqs:
                self._routes_confirmed(neighbour, seqs[packet_id])
                continue
            neighbour.spent.discard(packet_id)
            neighbour.handed.discard(packet_id)
            if tags:
                self._recipient_has(packet_id, tags)
        self._resend_due(peer, neighbour, now)  # what the ack shows lost goes again at once

    def _queue_holds(self, peer: str, now: float) -> None:
        """Tell a new neighbour the newest packets we carry, before anything else goes to it:
        it sends us none of them (both ends spray what they carry as a link comes up)."""
        holds = make_holds(list(self._carried)[-MAX_HOLDS_IDS:], int(now) + ACK_LIFETIME_S)
        if self._neighbours[peer].outbox.put(
            holds.packet_id, encode_packet(holds), _P_CONTROL, True
        ):
            self.metrics["holds_out"] += 1
            self._dirty[peer] = None

    def _on_holds(self, neighbour: _Neighbour, peer: str, prefixes: list[bytes]) -> None:
        """`peer` carries these packets: it is a holder, and copies queued for it are not sent
        (a copy budget spent on one comes back, a handover down a route is not used up)."""
        wanted = set(prefixes)
        outbox = neighbour.outbox
        for packet_id, carried in self._carried.items():
            if packet_id[:ACK_ID_LEN] not in wanted:
                continue
            carried.holders.add(peer)
            if not outbox.cancel(packet_id):
                continue
            self.metrics["holds_cancelled"] += 1
            self._refund(neighbour, packet_id, carried)
        self._holds_heard(neighbour, peer)

    def _refund(self, neighbour: _Neighbour, packet_id: bytes, carried: Carried) -> None:
        """A copy or handover to `neighbour` that did not happen: its copy budget comes back,
        and a handover the link never confirmed is not one (without this, two links dying
        mid-transfer used the whole route budget and the packet sat still)."""
        if packet_id in neighbour.spent:
            neighbour.spent.discard(packet_id)
            self._policy.on_unsent(carried)
        if packet_id in neighbour.handed:
            neighbour.handed.discard(packet_id)
            carried.relayed -= 1

    def _holds_heard(self, neighbour: _Neighbour, peer: str) -> None:
        """Spray to `peer` what it does not hold, now that we know (or waited long enough)."""
        if neighbour.holds_due != math.inf:
            neighbour.holds_due = math.inf
            self._policy.on_link_up(self, peer)

    def _routes_confirmed(self, neighbour: _Neighbour, seq: int) -> None:
        neighbour.routes_out.confirmed(seq)
        self._routes_due = self._announce_due = True  # what changed meanwhile can go now
        seqs = neighbour.routes_seqs
        for packet_id in [pid for pid, s in seqs.items() if s <= seq]:
            del seqs[packet_id]

    def _recipient_has(self, packet_id: bytes, tags: tuple[bytes, ...]) -> None:
        """A neighbour serving `tags` acked `packet_id`: if it is the packet's recipient, our
        custody is over. An envelope or notice its own recipient holds needs no more copies
        from us: carried on, it was sprayed to new neighbours and handed down routes to the
        recipient until it expired (notices have no receipt to clear them). Receipts are for
        the spools on the way, not for the recipient, and stay."""
        carried = self._carried.get(packet_id)
        if (
            carried is not None
            and carried.packet.type is not _T_RECEIPT
            and carried.packet.recipient_tag in tags
        ):
            self._uncarry(packet_id)
            self.metrics["custody_ended"] += 1

    def _gradient_changed(self) -> None:
        """Routes may have moved: hand carried packets down the gradient, re-announce."""
        if not self._policy.follows_gradient:
            return
        gradient = self._gradient
        changed = gradient.recompute(self._served)
        if changed:
            self._routes_due = self._announce_due = True
        for tag in changed:
            via = gradient.via(tag)
            for packet_id in list(self._by_tag.get(tag, ())):
                if via is not None:
                    self._hand_down(self._carried[packet_id], via)

    def _on_local_send(self, event: LocalSend, now: float, actions: list[Action]) -> None:
        packet = event.packet
        self.seen.check_and_add(packet.packet_id, now)
        data = encode_packet(packet)
        if packet.type is _T_RECEIPT:
            self._on_receipt(packet, data, None, now, actions)
        elif packet.type is _T_NOTICE:
            self._on_notice(packet, data, None, now, actions)
        elif packet.type is _T_ENVELOPE:
            retry_s = self.config.origin_retry_s
            self._originated[packet.packet_id] = (now + retry_s, retry_s)
            self._carry(packet, data, None, now, actions)
        else:
            raise ValueError("the local endpoint sends envelopes, receipts and notices only")

    def _on_serve_tags(self, event: ServeTags, now: float, actions: list[Action]) -> None:
        self._served = frozenset(event.tags) | frozenset(event.silent)
        self._announced = tuple(sorted(frozenset(event.tags)))
        self._announce_due = True
        self._gradient_changed()
        for tag in (*event.tags, *event.silent):
            for packet_id in list(self._by_tag.get(tag, ())):
                if self._carried[packet_id].packet.type is _T_RECEIPT:
                    continue  # receipts are for spools, not for the endpoint
                carried = self._uncarry(packet_id)
                if carried is not None:
                    self.metrics["delivered"] += 1
                    actions.append(Deliver(carried.packet))

    def _on_tick(self, event: Tick, now: float, actions: list[Action]) -> None:
        self._acks_due = True
        for peer, neighbour in self._neighbours.items():
            if neighbour.acks.to_ack:
                self._dirty[peer] = None
        self._resend_unacked(now)
        for peer, neighbour in list(self._neighbours.items()):
            if neighbour.holds_due <= now:  # an older node, or its holds were lost
                self._holds_heard(neighbour, peer)
        config = self.config
        if self._gradient.lapsed and self._gradient.expire(
            now, config.gradient_hold_s, config.gradient_announce_interval_s
        ):
            self._gradient_changed()
        if self._routes_due:
            self._announce_due = True
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + self.config.housekeeping_interval_s
        self._reassembler.expire(now)
        for packet_id in self._spool.expire(now):
            self._forget(packet_id)
            self.metrics["expired"] += 1
        self._retry_originated(now)
        for peer, neighbour in self._neighbours.items():
            if neighbour.spent:
                neighbour.spent = _pending(neighbour, neighbour.spent)
            if neighbour.handed:
                neighbour.handed = _pending(neighbour, neighbour.handed)
            for tag in neighbour.tags:
                for packet_id in self._by_tag.get(tag, ()):
                    self._hand_over(self._carried[packet_id], peer)
        for tag, via in self._gradient.routes():
            for packet_id in self._by_tag.get(tag, ()):
                self._hand_down(self._carried[packet_id], via)
        receipts = self._receipts
        while receipts and next(iter(receipts.values())).expires_at_s <= now:
            receipts.popitem(last=False)

    # -- carrying -----------------------------------------------------------------------------

    def _carry(
        self, packet: Packet, data: bytes, peer: str | None, now: float, actions: list[Action]
    ) -> None:
        decision = self._spool.offer(packet, LOCAL if peer is None else peer, now)
        for eviction in decision.evicted:
            self._forget(eviction.packet_id)
            self.metrics["spool_" + eviction.reason.value] += 1
        if not decision.accepted:
            cleared = decision.reason is SpoolReason.CLEARED
            self.metrics["spool_refused_" + str(decision.reason)] += 1
            self._drop(_D_CLEARED if cleared else _D_SPOOL_REFUSED, peer, actions)
            return
        holders = {peer} if peer is not None else set()
        carried = Carried(packet, data, packet.ttl, priority(packet), holders)
        packet_id = packet.packet_id
        tag = packet.recipient_tag
        self._carried[packet_id] = carried
        self._by_tag.setdefault(tag, {})[packet_id] = None
        if packet.type is _T_ENVELOPE:
            self.metrics["carried_envelopes"] += 1
            if peer is not None and packet.flags & _MAILBOX_HINT:
                actions.append(OfferUplink(packet))
        for other, neighbour in self._neighbours.items():
            if tag in neighbour.tags:
                self._hand_over(carried, other)
        via = self._gradient.via(tag)
        if via is not None:
            self._hand_down(carried, via)
        self._policy.on_new(self, carried, peer)

    def _resend_unacked(self, now: float) -> None:
        """Queue again what a neighbour has not acked in time, if it is still worth sending."""
        for peer, neighbour in self._neighbours.items():
            if len(neighbour.acks):
                self._resend_due(peer, neighbour, now)

    def _resend_due(self, peer: str, neighbour: _Neighbour, now: float) -> None:
        acks = neighbour.acks
        for entry in acks.due(now):
            if not self._still_wanted(neighbour, entry):
                acks.forget(entry.packet_id)
            elif neighbour.outbox.put(
                entry.packet_id, entry.encoded, entry.priority, True, _resend_id(entry)
            ):
                self.metrics["hop_resends"] += 1
                self._dirty[peer] = None

    def _still_wanted(self, neighbour: _Neighbour, entry: InFlight) -> bool:
        kind = entry.encoded[1]
        if kind == _ANNOUNCE:
            return entry.packet_id == neighbour.announce_id
        if kind == _ROUTES:
            return entry.packet_id == neighbour.routes_id
        if kind == _ROUTES2:
            return self._routes_update_wanted(neighbour, entry)
        return kind == _RECEIPT or entry.packet_id in self._carried

    def _routes_update_wanted(self, neighbour: _Neighbour, entry: InFlight) -> bool:
        """Resend our latest routes update, up to `ROUTES_RESYNC_TRIES` times; then the whole
        table goes instead."""
        if entry.packet_id != neighbour.routes_id:
            return False  # superseded: the newer update holds its changes
        if entry.tries < ROUTES_RESYNC_TRIES:
            return True
        seq = neighbour.routes_seqs.get(entry.packet_id, 0)
        self.metrics["routes_resyncs"] += 1
        if not neighbour.routes_out.was_full(seq):
            # A delta refused for a gap, maybe: resync at once.
            neighbour.gradient_at = neighbour.routes_changed_at = -math.inf
        neighbour.routes_out.resync()
        neighbour.routes_id = None
        self._routes_due = True
        return False

    def _retry_originated(self, now: float) -> None:
        originated = self._originated
        if not originated or now < self._next_retry:
            return
        self._next_retry = now + self.config.origin_retry_s / 4
        for packet_id, (due, interval) in list(originated.items()):
            carried = self._carried.get(packet_id)
            if carried is None:
                del originated[packet_id]
            elif due <= now:
                originated[packet_id] = (now + 2 * interval, 2 * interval)
                self.metrics["origin_retries"] += 1
                self._policy.on_retry(self, carried)

    def _hand_down(self, carried: Carried, peer: str) -> None:
        """Hand a packet to the neighbour nearest its recipient, a bounded number of times."""
        neighbour = self._neighbours.get(peer)
        if neighbour is None or carried.packet.type is _T_RECEIPT:
            return  # a receipt is for the spools on the way, not for the recipient
        if carried.packet.recipient_tag in neighbour.tags or peer in carried.holders:
            self._hand_over(carried, peer)  # to the recipient, or a retry (both bounded there)
        elif carried.relayed < self.config.gradient_max_handovers and self._hand_over(
            carried, peer
        ):
            carried.relayed += 1
            neighbour.handed.add(carried.packet.packet_id)

    def _hand_over(self, carried: Carried, peer: str) -> bool:
        """Queue a copy for `peer` unless it holds one (or a retry is not due); True if queued."""
        if peer in carried.holders:
            neighbour = self._neighbours.get(peer)
            if neighbour is None or not neighbour.acks.silent:
                return False  # its acks tell whether it has the packet; unacked are resent
            if (
                self._now < carried.last_sent + self.config.handover_retry_s
                or carried.retries >= self.config.handover_max_retries
            ):
                return False
            carried.retries += 1
            self.metrics["handover_retries"] += 1
        self.metrics["handovers"] += 1
        return self.send_copy(carried, peer, max(carried.ttl - 1, 0), urgent=True)

    def _uncarry(self, packet_id: bytes) -> Carried | None:
        """Stop carrying a packet: out of the spool and out of every outbox."""
        self._spool.remove(packet_id)
        return self._forget(packet_id)

    def _forget(self, packet_id: bytes) -> Carried | None:
        """Drop our bookkeeping of a packet the spool no longer holds."""
        carried = self._carried.pop(packet_id, None)
        if carried is None:
            return None
        tag = carried.packet.recipient_tag
        by_tag = self._by_tag[tag]
        del by_tag[packet_id]
        if not by_tag:
            del self._by_tag[tag]
        if carried.packet.type is _T_ENVELOPE:
            self.metrics["carried_envelopes"] -= 1
        for peer in carried.holders:
            neighbour = self._neighbours.get(peer)
            if neighbour is not None:
                neighbour.outbox.cancel(packet_id)
        return carried

    # -- receipts -----------------------------------------------------------------------------

    def _remember_receipt(self, key: bytes, receipt: Packet) -> None:
        receipts = self._receipts
        receipts[key] = receipt
        receipts.move_to_end(key)
        if len(receipts) > self.config.receipts_max:
            receipts.popitem(last=False)

    def _answer_with_receipt(self, packet: Packet, peer: str | None) -> bool:
        """If `packet` is an envelope we hold a receipt for, send it to `peer`.

        Receipts are kept under the hash of their own secret, so a match is a valid receipt.
        """
        if packet.type is not _T_ENVELOPE:
            return False
        receipt = self._receipts.get(packet.receipt_hash)
        if receipt is None:
            return False
        neighbour = self._neighbours.get(peer) if peer is not None else None
        if neighbour is not None and neighbour.outbox.put(
            receipt.packet_id, encoded_with_ttl(encode_packet(receipt), 0), priority(receipt)
        ):
            self.metrics["receipts_answered"] += 1
            self._dirty[peer] = None  # type: ignore[index]
        return True

    # -- sending ------------------------------------------------------------------------------

    def _send_announces(self, now: float) -> None:
        """Tell each neighbour what changed: our own tags, and (gradient) the routes we know."""
        self._announce_due = False
        own = self._announced
        routes_due, self._routes_due = self._routes_due, False
        interval = self.config.gradient_announce_interval_s
        hold = self.config.gradient_hold_s
        for peer, neighbour in self._neighbours.items():
            if own != neighbour.announced:
                self._queue_announce(peer, neighbour, own, now)
            if not routes_due or not self._policy.follows_gradient:
                continue
            if neighbour.routes_out.in_flight and not _speaks_routes_v1(neighbour):
                # One update in flight per link: what changes meanwhile goes in the next
                # delta, once this one is acked (changes come in bursts as links come up).
                self._routes_due = True
                continue
            routes = self._gradient.routes_for(peer)
            if not self._routes_wanted(neighbour, routes):
                neighbour.routes_changed_at = math.inf  # changed back before it was told
                continue
            if not _adds_tags(routes, neighbour.routes_told):
                neighbour.routes_changed_at = min(neighbour.routes_changed_at, now)
                if now < max(neighbour.gradient_at + interval, neighbour.routes_changed_at + hold):
                    self._routes_due = True  # the next tick looks again
                    continue
            elif now < neighbour.gradient_at + ROUTES_URGENT_GAP_S:
                self._routes_due = True  # what else comes this second goes in the same delta
                continue
            neighbour.gradient_at = now
            neighbour.routes_changed_at = math.inf
            self._queue_routes(peer, neighbour, routes, now)

    def _queue_announce(
        self, peer: str, neighbour: _Neighbour, tags: tuple[bytes, ...], now: float
    ) -> None:
        if neighbour.announce_id is not None:
            neighbour.outbox.cancel(neighbour.announce_id)
        announce = make_announce(tags, int(now) + ANNOUNCE_LIFETIME_S, ttl=ANNOUNCE_HOPS)
        if neighbour.outbox.put(announce.packet_id, encode_packet(announce), priority(announce)):
            neighbour.announced = tags
            neighbour.announce_id = announce.packet_id
            self.metrics["announces_out"] += 1
            self._dirty[peer] = None

    @staticmethod
    def _routes_wanted(neighbour: _Neighbour, routes: tuple[tuple[int, bytes], ...]) -> bool:
        """Whether `neighbour` should hear `routes` (not what it was told last)."""
        if _speaks_routes_v1(neighbour):
            return routes != neighbour.routes_sent
        return neighbour.routes_out.wants({tag: distance for distance, tag in routes})

    def _queue_routes(
        self, peer: str, neighbour: _Neighbour, routes: tuple[tuple[int, bytes], ...], now: float
    ) -> None:
        """Queue `routes` for `neighbour`: version 2 (a whole table at first, deltas after) or
        a version 1 whole table for a node of the previous version."""
        expires_at_s = int(now) + ANNOUNCE_LIFETIME_S
        if _speaks_routes_v1(neighbour):
            packet = make_routes(routes, expires_at_s)
        else:
            update = neighbour.routes_out.update({tag: distance for distance, tag in routes})
            if update is None:
                return
            packet = make_routes_update(update, expires_at_s)
            neighbour.routes_seqs[packet.packet_id] = update.seq
            self.metrics["routes_full_out" if update.full else "routes_delta_out"] += 1
        if neighbour.routes_id is not None:
            neighbour.outbox.cancel(neighbour.routes_id)
        if not neighbour.outbox.put(packet.packet_id, encode_packet(packet), _P_CONTROL):
            neighbour.routes_out.resync()  # never sent, so nothing is in flight: start again
            self._routes_due = True
            return
        neighbour.routes_sent = routes
        told = neighbour.routes_told
        for distance, tag in routes:
            if distance < told.get(tag, ROUTE_HORIZON + 1):
                told[tag] = distance
        neighbour.routes_id = packet.packet_id
        self.metrics["routes_out"] += 1
        self._dirty[peer] = None

    def _pump(self, actions: list[Action]) -> None:
        if self._announce_due:
            self._send_announces(self._now)
        dirty, self._dirty = self._dirty, {}
        expires_at_s = int(self._now) + ACK_LIFETIME_S
        acks_due, self._acks_due = self._acks_due, False
        for peer in dirty:
            neighbour = self._neighbours.get(peer)
            if neighbour is None:
                continue
            acks = neighbour.acks
            if acks.to_ack:
                everything, acks.ack_now = acks_due or acks.ack_now, False
                for ids in acks.take_acks(everything):
                    ack = make_ack(ids, expires_at_s)
                    neighbour.outbox.put(ack.packet_id, encode_packet(ack), _P_CONTROL, True)
                    self.metrics["acks_out"] += 1
            self._pull(peer, neighbour, self._now, actions)

    def _drop(self, reason: DropReason, peer: str | None, actions: list[Action]) -> None:
        self.metrics["drop_" + reason.value] += 1
        actions.append(Drop(reason, peer))


# Plain functions, not bound methods kept on the router: those made each router a reference
# cycle, left for the garbage collector to find (with every packet it held) instead of freed
# when the last reference goes.
_HANDLERS: Final[dict[type, Callable[..., None]]] = {
    FrameReceived: Router._on_frame,
    LinkUp: Router._on_link_up,
    LinkDown: Router._on_link_down,
    LocalSend: Router._on_local_send,
    Tick: Router._on_tick,
    ServeTags: Router._on_serve_tags,
}


def _pending(neighbour: _Neighbour, ids: set[bytes]) -> set[bytes]:
    """The ids still queued for `neighbour` or awaiting its ack."""
    outbox, acks = neighbour.outbox, neighbour.acks
    return {pid for pid in ids if pid in outbox or pid[:ACK_ID_LEN] in acks}


def _resend_id(entry: InFlight) -> int | None:
    """The message id a resend goes under: its last send's every other time, so that the
    neighbour completes the packet from the frames of both sends (where each frame is lost
    with probability p, a 3-frame packet gets through a send with (1 - p)^3, two sends joined
    with (1 - p^2)^3), and a new one in between: a node of the previous version ignores a
    message it completed when it comes again under its id, so if our ack was what was lost, it
    would never ack the resend."""
    return entry.message_id if entry.tries % 2 else None


def _speaks_routes_v1(neighbour: _Neighbour) -> bool:
    """Whether `neighbour` gets routes version 1: it sent us version 1, or it never acks (it
    could not confirm a version 2 update)."""
    return neighbour.routes_v1 or neighbour.acks.silent


def _adds_tags(routes: tuple[tuple[int, bytes], ...], told: dict[bytes, int]) -> bool:
    """Whether `routes` name a tag nearer than ever told before (or never told at all).

    Each tag can trigger at most `ROUTE_HORIZON` such updates per neighbour, however much the
    neighbourhood moves; every other change waits for the interval. (Telling at once every
    route nearer than the neighbour was last told, as DSDV tells good news, cost a walking
    crowd 28% more routes frames for 0.2 s of `street`'s p95: see docs/protocol.md.)
    """
    return any(distance < told.get(tag, ROUTE_HORIZON + 1) for distance, tag in routes)


_TTL_BYTES: Final = tuple(bytes((ttl,)) for ttl in range(MAX_TTL + 1))
_HANDSHAKE: Final = int(Flag.HANDSHAKE)
_ACK: Final = int(PacketType.ACK)
_ANNOUNCE: Final = int(PacketType.ANNOUNCE)
_ROUTES: Final = int(PacketType.ROUTES)
_ROUTES2: Final = int(PacketType.ROUTES2)
_HOLDS: Final = int(PacketType.HOLDS)
_RECEIPT: Final = int(PacketType.RECEIPT)
_MAILBOX_HINT: Final = int(Flag.MAILBOX_HINT)
# Enum members looked up once: attribute access on an Enum class is slow on the hot path.
_T_ACK: Final = PacketType.ACK
_T_ANNOUNCE: Final = PacketType.ANNOUNCE
_T_ENVELOPE: Final = PacketType.ENVELOPE
_T_NOTICE: Final = PacketType.NOTICE
_T_RECEIPT: Final = PacketType.RECEIPT
_T_ROUTES: Final = PacketType.ROUTES
_T_ROUTES2: Final = PacketType.ROUTES2
_T_HOLDS: Final = PacketType.HOLDS
_V_APPLIED: Final = Verdict.APPLIED
_V_GAP: Final = Verdict.GAP
_P_CONTROL: Final = Priority.CONTROL
_L_BYTES: Final = LimitKind.BYTES
_L_PACKETS: Final = LimitKind.PACKETS
_L_HANDSHAKES: Final = LimitKind.HANDSHAKES
_D_CLEARED: Final = DropReason.CLEARED
_D_DUPLICATE: Final = DropReason.DUPLICATE
_D_EXPIRED: Final = DropReason.EXPIRED
_D_MALFORMED: Final = DropReason.MALFORMED
_D_SPOOL_REFUSED: Final = DropReason.SPOOL_REFUSED
_D_THROTTLED: Final = DropReason.THROTTLED
