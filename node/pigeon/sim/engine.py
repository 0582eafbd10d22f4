"""One simulation run: a scenario's nodes, each a Router with an endpoint, on one SimRadio.

Every node's router is fed from the radio's upcalls and its actions are carried out at once
on the virtual clock. Endpoints stand in for the messenger: they send envelopes of random
bytes (standing in for ciphertext) with a receipt hash, and on delivery send the receipt,
whose secret the engine's message table plays the part of decryption for. As with Olm, a
sender's messages to someone it has not heard from yet are first-contact (pre-key) messages,
in the short form the messenger writes (`SHORT_PREKEY_EXTRA_BYTES` larger), to the recipient's
intro tag, sent at once; the recipient answers the first
with a normal message, after which both sides use session tags. One seed decides
everything; only `wall_s` differs between two runs of the same seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass

from pigeon.mesh.events import (
    Deliver,
    Event,
    FrameReceived,
    FrameSent,
    LinkDown,
    LinkUp,
    LocalSend,
    SendFrame,
    ServeTags,
    Tick,
)
from pigeon.mesh.packet import Packet, PacketType, make_notice, make_receipt
from pigeon.mesh.receipt import (
    RECEIPT_SECRET_LEN,
    open_notice,
    receipt_hash,
    seal_notice,
    verify_receipt,
)
from pigeon.mesh.router import Router, RouterConfig
from pigeon.mesh.tags import SECONDS_PER_DAY, day_number, derive_tag, tags_for_window
from pigeon.messenger.envelope import SHORT_PREKEY_EXTRA_BYTES
from pigeon.sim.scenario import Group, Scenario
from pigeon.transport.base import Broken, Busy, PeerId
from pigeon.transport.sim import Mobility, SimRadio

_LOGGER = logging.getLogger(__name__)

# Simulated time 0 is 06:00 UTC on a fixed day, so tags do not rotate during a run.
START_UNIX_S = 20_000 * SECONDS_PER_DAY + 6 * 3600
TICK_S = 1.0
SAMPLE_S = 10.0
TAG_KEY_LEN = 32
# What the messenger's short pre-key envelope adds to a normal one: the sender's Ed25519 key,
# the prekey's id and the base key (72 bytes: 650 against 578 bytes for a one-block text).
PREKEY_EXTRA_BYTES = SHORT_PREKEY_EXTRA_BYTES


@dataclass(frozen=True, slots=True)
class SimResult:
    """The measurements of one run (every field is JSON-ready)."""

    scenario: str
    routing: str
    seed: int
    nodes: int
    duration_s: float
    messages: int
    delivered: int
    delivery_ratio: float
    latency_p50_s: float | None
    latency_p95_s: float | None
    first_contact_messages: int
    first_contact_latency_p50_s: float | None
    first_contact_latency_p95_s: float | None
    ordinary_latency_p50_s: float | None
    ordinary_latency_p95_s: float | None
    receipts_returned: int
    transmissions: int
    transmissions_per_delivery: float | None
    bytes_on_air: int
    frames_lost: int
    duplicates_delivered: int
    misdelivered: int
    peak_spool_envelopes: int
    peak_spool_envelopes_total: int
    throttled: int
    wall_s: float

    def to_dict(self) -> dict[str, object]:
        """The fields as a dict, for `--json`."""
        return asdict(self)


@dataclass(slots=True)
class _Message:
    src: int
    dst: int
    sent_at: float
    secret: bytes
    tag: bytes  # the envelope's recipient tag
    first_contact: bool = False
    answer: bool = False  # the answer to a new session: receipted like a message, not counted
    delivered_at: float | None = None
    deliveries: int = 0
    receipt_back: bool = False


class RouterUpcalls(ABC):
    """The simulated radio's upcalls turned into router events; subclasses feed them."""

    __slots__ = ()

    def link_up(self, peer: PeerId, frame_limit: int) -> None:
        self.feed(LinkUp(peer, frame_limit))

    def link_down(self, peer: PeerId, reason: str) -> None:
        self.feed(LinkDown(peer))

    def frame_received(self, peer: PeerId, frame: bytes) -> None:
        self.feed(FrameReceived(peer, frame))

    def frame_sent(self, peer: PeerId) -> None:
        self.feed(FrameSent(peer))

    @abstractmethod
    def feed(self, event: Event) -> None:
        """Give the router `event` now and carry out its actions."""


class _Node(RouterUpcalls):
    """A simulated device: radio upcalls in, router actions out, a messaging endpoint."""

    __slots__ = ("index", "intro_key", "name", "radio", "router", "sim", "tag_key")

    def __init__(self, sim: Simulation, index: int, router: Router, tag_key: bytes) -> None:
        self.sim = sim
        self.index = index
        self.name = PeerId(f"n{index}")
        self.radio = sim.radio
        self.router = router
        self.tag_key = tag_key
        # The public intro tag key (first contact), derived so no extra randomness is drawn.
        self.intro_key = hashlib.sha256(b"sim intro" + tag_key).digest()

    def feed(self, event: Event) -> None:
        """Give the router an event now and carry out its actions."""
        for action in self.router.handle(event, START_UNIX_S + self.radio.now):
            if type(action) is SendFrame:
                try:
                    self.radio.send(self.name, PeerId(action.peer), action.frame)
                except (Broken, Busy):
                    self.sim.send_failures += 1
            elif type(action) is Deliver:
                self.sim.delivered(self, action.packet)


class Simulation:
    """Builds a scenario's neighbourhood and runs it on the virtual clock."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        routing: str = "default",
        config: RouterConfig | None = None,
        *,
        sessions_established: bool = False,
        prekey_extra_bytes: int = PREKEY_EXTRA_BYTES,
    ) -> None:
        self.scenario = scenario
        self.prekey_extra_bytes = prekey_extra_bytes  # another pre-key form, to compare with
        self.seed = seed
        self.routing = routing
        # True: every pair has a session already (no first contact), the reference to compare
        # first-contact latency with on the same traffic.
        self.sessions_established = sessions_established
        master = random.Random(seed)
        self._traffic_rng = random.Random(master.getrandbits(64))
        # First-contact bytes and session answers draw from their own stream, so a run with
        # `sessions_established` sends the very same messages (common random numbers).
        self._olm_rng = random.Random(seed ^ 0x01_0A_11)
        self.radio = SimRadio(scenario.radio, random.Random(master.getrandbits(64)))
        self.send_failures = 0
        self._messages: dict[bytes, _Message] = {}
        self._heard: set[tuple[int, int]] = set()  # (a, b): a has received from b
        self._answered: set[tuple[int, int]] = set()  # (a, b): a answered b's new session
        self._nodes: list[_Node] = []
        self._endpoints: list[int] = []
        self._peak_node = 0
        self._peak_total = 0
        self._misdelivered = 0
        self._duplicates = 0
        self._progress: Callable[[float], None] | None = None
        config = dataclasses.replace(config or RouterConfig(), routing=routing)
        place_rng = random.Random(master.getrandbits(64))
        for group in scenario.groups:
            for x, y in _positions(group, scenario.area_m, place_rng):
                self._add_node(group, x, y, config, random.Random(master.getrandbits(64)))
        self._schedule_traffic()
        self.radio.call_at(0.0, self._sample)
        self._schedule_churn(random.Random(master.getrandbits(64)))

    def _add_node(
        self, group: Group, x: float, y: float, config: RouterConfig, rng: random.Random
    ) -> None:
        index = len(self._nodes)
        node = _Node(self, index, Router(config, rng), rng.randbytes(TAG_KEY_LEN))
        self._nodes.append(node)
        mobility = None
        if group.mobile:
            width, height = self.scenario.area_m
            mobility = Mobility(
                width, height, group.speed_min_m_s, group.speed_max_m_s, group.pause_max_s
            )
        if group.endpoints:
            self._endpoints.append(index)
            today, *neighbouring_days = tags_for_window(node.tag_key, START_UNIX_S)
            intro_today, *intro_days = tags_for_window(node.intro_key, START_UNIX_S)
            node.feed(ServeTags((today, intro_today), (*neighbouring_days, *intro_days)))
        self.radio.add_node(node.name, x, y, node, mobility)
        self.radio.call_at(rng.uniform(0.0, TICK_S), self._tick, node)

    def _schedule_traffic(self) -> None:
        rng = self._traffic_rng
        window = self.scenario.send_window_s
        if len(self._endpoints) < 2:
            return
        for _ in range(self.scenario.messages):
            src, dst = rng.sample(self._endpoints, 2)
            self.radio.call_at(rng.uniform(0.0, window), self._send, src, dst)

    def _schedule_churn(self, rng: random.Random) -> None:
        churn = self.scenario.churn
        chosen = [n for n in self._nodes if rng.random() < churn.fraction]
        for node in chosen:
            self.radio.call_at(rng.expovariate(1.0 / churn.mean_on_s), self._toggle, node, rng)

    def _toggle(self, node: _Node, rng: random.Random) -> None:
        on = not self.radio.is_on(node.name)
        self.radio.set_power(node.name, on)
        mean = self.scenario.churn.mean_on_s if on else self.scenario.churn.mean_off_s
        self.radio.call_at(self.radio.now + rng.expovariate(1.0 / mean), self._toggle, node, rng)

    def _tick(self, node: _Node) -> None:
        node.feed(Tick())
        self.radio.call_at(self.radio.now + TICK_S, self._tick, node)

    def _sample(self) -> None:
        counts = [node.router.spool_envelopes for node in self._nodes]
        self._peak_node = max(self._peak_node, max(counts))
        self._peak_total = max(self._peak_total, sum(counts))
        if self._progress is not None:
            self._progress(self.radio.now / self.scenario.duration_s)
        self.radio.call_at(self.radio.now + SAMPLE_S, self._sample)

    def _send(self, src: int, dst: int) -> None:
        rng = self._traffic_rng
        now = self.radio.now
        unix_now = START_UNIX_S + now
        secret = rng.randbytes(RECEIPT_SECRET_LEN)
        # As the messenger does: until src has heard from dst (a message, or the answer dst
        # sends when a first message opens a session), src's messages to dst are Olm pre-key
        # messages to dst's intro tag, sent at once with no round trip.
        first = not self.sessions_established and (src, dst) not in self._heard
        key = self._nodes[dst].intro_key if first else self._nodes[dst].tag_key
        size = self.scenario.payload_bytes + (self.prekey_extra_bytes if first else 0)
        envelope = Packet(
            type=PacketType.ENVELOPE,
            recipient_tag=derive_tag(key, day_number(unix_now)),
            expires_at_s=int(unix_now) + self.scenario.message_lifetime_s,
            payload=rng.randbytes(self.scenario.payload_bytes)
            + self._olm_rng.randbytes(size - self.scenario.payload_bytes),
            receipt_hash=receipt_hash(secret),
        )
        message = _Message(src, dst, now, secret, envelope.recipient_tag, first)
        self._messages[envelope.packet_id] = message
        self._nodes[src].feed(LocalSend(envelope))

    def _answer(self, src: int, dst: int) -> None:
        """The messenger's answer to a session a first message opened (a normal message to
        the opener's session tag; not counted as a message)."""
        unix_now = START_UNIX_S + self.radio.now
        secret = self._olm_rng.randbytes(RECEIPT_SECRET_LEN)
        envelope = Packet(
            type=PacketType.ENVELOPE,
            recipient_tag=derive_tag(self._nodes[dst].tag_key, day_number(unix_now)),
            expires_at_s=int(unix_now) + self.scenario.message_lifetime_s,
            payload=self._olm_rng.randbytes(self.scenario.payload_bytes),
            receipt_hash=receipt_hash(secret),
        )
        answer = _Message(src, dst, self.radio.now, secret, envelope.recipient_tag, answer=True)
        self._messages[envelope.packet_id] = answer
        self._nodes[src].feed(LocalSend(envelope))

    def delivered(self, node: _Node, packet: Packet) -> None:
        """A router handed `packet` to `node`'s endpoint."""
        if packet.type is PacketType.NOTICE:
            self._notice_back(node, packet)
            return
        message = self._messages.get(packet.packet_id)
        if message is None or message.dst != node.index:
            self._misdelivered += 1
            return
        message.deliveries += 1
        if message.deliveries > 1:
            self._duplicates += not message.answer
            return
        self._heard.add((message.dst, message.src))
        if message.first_contact:
            self.radio.call_at(self.radio.now, self._answer, message.dst, message.src)
        now = self.radio.now
        message.delivered_at = now
        unix_now = START_UNIX_S + now
        sender = self._nodes[message.src]
        # What a messenger sends: the receipt to the envelope's tag, the notice to the sender's.
        receipt = make_receipt(message.secret, packet.recipient_tag, packet.expires_at_s)
        notice = make_notice(
            seal_notice(sender.tag_key, message.secret, packet.packet_id),
            derive_tag(sender.tag_key, day_number(unix_now)),
            packet.expires_at_s,
        )
        # Scheduled, not fed inline: the router that delivered is still inside `handle`.
        self.radio.call_at(now, node.feed, LocalSend(receipt))
        self.radio.call_at(now, node.feed, LocalSend(notice))

    def _notice_back(self, node: _Node, packet: Packet) -> None:
        """The sender's endpoint opens a notice and, like a messenger, sends the receipt (TTL 0:
        it clears our own copy and answers neighbours offering it back)."""
        secret, envelope_id = open_notice(node.tag_key, packet.payload)
        message = self._messages.get(envelope_id)
        if message is None or message.src != node.index or message.receipt_back:
            return
        if not verify_receipt(secret, receipt_hash(message.secret)):
            return
        message.receipt_back = True
        receipt = make_receipt(secret, message.tag, packet.expires_at_s, ttl=0)
        self.radio.call_at(self.radio.now, node.feed, LocalSend(receipt))

    def run(self, progress: Callable[[float], None] | None = None) -> SimResult:
        """Run to the scenario's end; `progress` hears the fraction done now and then."""
        self._progress = progress
        started = time.perf_counter()
        self.radio.run_until(self.scenario.duration_s)
        return self._result(time.perf_counter() - started)

    def _result(self, wall_s: float) -> SimResult:
        messages = [m for m in self._messages.values() if not m.answer]
        latencies = sorted(
            m.delivered_at - m.sent_at for m in messages if m.delivered_at is not None
        )
        firsts = sorted(
            m.delivered_at - m.sent_at
            for m in messages
            if m.delivered_at is not None and m.first_contact
        )
        ordinary = sorted(
            m.delivered_at - m.sent_at
            for m in messages
            if m.delivered_at is not None and not m.first_contact
        )
        delivered = len(latencies)
        stats = self.radio.stats()
        throttled = sum(n.router.metrics["drop_throttled"] for n in self._nodes)
        return SimResult(
            scenario=self.scenario.name,
            routing=self.routing,
            seed=self.seed,
            nodes=len(self._nodes),
            duration_s=self.scenario.duration_s,
            messages=len(messages),
            delivered=delivered,
            delivery_ratio=round(delivered / len(messages), 6) if messages else 1.0,
            latency_p50_s=_percentile(latencies, 0.50),
            latency_p95_s=_percentile(latencies, 0.95),
            first_contact_messages=sum(m.first_contact for m in messages),
            first_contact_latency_p50_s=_percentile(firsts, 0.50),
            first_contact_latency_p95_s=_percentile(firsts, 0.95),
            ordinary_latency_p50_s=_percentile(ordinary, 0.50),
            ordinary_latency_p95_s=_percentile(ordinary, 0.95),
            receipts_returned=sum(m.receipt_back for m in messages),
            transmissions=stats.frames_transmitted,
            transmissions_per_delivery=(
                round(stats.frames_transmitted / delivered, 3) if delivered else None
            ),
            bytes_on_air=stats.bytes_transmitted,
            frames_lost=stats.frames_lost,
            duplicates_delivered=self._duplicates,
            misdelivered=self._misdelivered,
            peak_spool_envelopes=self._peak_node,
            peak_spool_envelopes_total=self._peak_total,
            throttled=throttled,
            wall_s=round(wall_s, 3),
        )


def _percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile, rounded to milliseconds; None for no values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return round(sorted_values[rank - 1], 3)


def _positions(
    group: Group, area: tuple[float, float], rng: random.Random
) -> list[tuple[float, float]]:
    width, height = area
    n = group.count
    if group.placement == "line":
        return [(i * group.spacing_m, height / 2) for i in range(n)]
    if group.placement == "grid" and n:
        cols = max(1, round(math.sqrt(n * width / height)))
        rows = math.ceil(n / cols)
        return [
            ((i % cols + 0.5) * width / cols, (i // cols + 0.5) * height / rows) for i in range(n)
        ]
    return [(rng.uniform(0.0, width), rng.uniform(0.0, height)) for _ in range(n)]


def run_simulation(
    scenario: Scenario,
    seed: int,
    routing: str = "default",
    progress: Callable[[float], None] | None = None,
    *,
    sessions_established: bool = False,
    prekey_extra_bytes: int = PREKEY_EXTRA_BYTES,
) -> SimResult:
    """Build and run one simulation (`sessions_established`: no first contact at all;
    `prekey_extra_bytes`: how much larger a first-contact message is than an ordinary one)."""
    simulation = Simulation(
        scenario,
        seed,
        routing,
        sessions_established=sessions_established,
        prekey_extra_bytes=prekey_extra_bytes,
    )
    return simulation.run(progress)
