"""The gateway's uplink: Nostr events that mesh-only bitchat peers deposit in 0x28 carriers.

bitchat's rules (GatewayService.swift, BLEService.swift handleNostrCarrier, bitchat 1.6.0 on):
the carrier rides a packet addressed to the gateway, signed by its sender (who may be several
hops away) under the signing key of the sender's announce; direction "to gateway"; a valid
geohash; the event is kind 20000 (ephemeral geohash chat) with a `g` tag naming that geohash,
created within 15 minutes of now. Cheap checks run first, then dedup by event id, then the
depositor's rate (10 a minute), and the Schnorr signature last. The phone expects no answer
(its v1 uplink is fire-and-forget: it keeps the event in its own relay queue). Verified events
wait in a bounded outbox (per depositor too) until a relay accepts them with NIP-01's OK: an
event a relay never answered goes back to the outbox, so a relay restart loses nothing.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pigeon.bitchat import packet as wire
from pigeon.bitchat.carrier import Direction, decode_carrier
from pigeon.bitchat.chat import verify as verify_packet
from pigeon.bitchat.courier_agent import read_payload
from pigeon.bitchat.errors import BitchatError
from pigeon.gateway.ids import RecentIds
from pigeon.nostr.errors import NostrError
from pigeon.nostr.event import Event, parse_json
from pigeon.nostr.event import verify as verify_event

EPHEMERAL_KIND: Final = 20_000  # bitchat's geohash chat (NostrProtocol.EventKind.ephemeralEvent)
MAX_EVENT_AGE_S: Final = 15 * 60  # bitchat's maxEventAgeSeconds: receivers drop older events
PER_DEPOSITOR_PER_MINUTE: Final = 10  # bitchat's uplinkEventsPerMinutePerDepositor
MAX_QUEUED: Final = 200  # an always-on node holds more than a phone's 20
MAX_QUEUED_PER_DEPOSITOR: Final = 5  # bitchat's maxQueuedUplinksPerDepositor
TRACKED_IDS: Final = 4096
TRACKED_LIFETIME_S: Final = 2 * MAX_EVENT_AGE_S  # past this a replay is stale anyway
GEOHASH_ALPHABET: Final = frozenset("0123456789bcdefghjkmnpqrstuvwxyz")

SigningKeyOf = Callable[[bytes], bytes | None]


@dataclass(frozen=True, slots=True)
class Queued:
    """A verified event waiting for a relay's OK; `depositor` is the bitchat peer id."""

    depositor: bytes
    geohash: str
    event: Event


class UplinkPolicy:
    """What the gateway publishes for whom; `counters` name what happened, never who."""

    def __init__(self, signing_key_of: SigningKeyOf, max_queued: int = MAX_QUEUED) -> None:
        self._signing_key_of = signing_key_of  # a sender's announced Ed25519 key, if verified
        self.max_queued = max_queued
        self._queue: OrderedDict[str, Queued] = OrderedDict()  # by event id, oldest first
        self._in_flight: dict[str, Queued] = {}
        self._published = RecentIds(TRACKED_IDS, TRACKED_LIFETIME_S)
        self._deposits: dict[bytes, list[float]] = {}
        self.counters: Counter[str] = Counter()

    @property
    def queued(self) -> int:
        """Events waiting for a relay (in flight included)."""
        return len(self._queue) + len(self._in_flight)

    def deposit(self, packet: bytes, now: float) -> Queued | None:
        """A 0x28 packet addressed to us: the event queued, or None (a counter says why)."""
        try:
            queued = self._check(packet, now)
        except (BitchatError, NostrError) as exc:
            self.counters[f"refused_{type(exc).__name__}"] += 1
            return None
        if queued is not None:
            self._queue[queued.event.id] = queued
            self.counters["accepted"] += 1
        return queued

    def _check(self, packet: bytes, now: float) -> Queued | None:
        view = wire.parse(packet)
        key = self._signing_key_of(view.sender)
        if key is None:
            self.counters["refused_unannounced"] += 1
            return None
        verify_packet(packet, view, key)  # quotas are keyed to an authenticated depositor
        carrier = decode_carrier(read_payload(packet, view))  # bitchat deflates big payloads
        if carrier.direction != Direction.TO_GATEWAY or not valid_geohash(carrier.geohash):
            self.counters["refused_shape"] += 1
            return None
        event = parse_json(carrier.event_json)
        if (
            event.kind != EPHEMERAL_KIND
            or carrier.geohash not in event.tag_values("g")
            or abs(now - event.created_at) > MAX_EVENT_AGE_S
        ):
            self.counters["refused_shape"] += 1
            return None
        if self._known(event.id):
            self.counters["duplicate"] += 1
            return None
        if not self._take_rate(view.sender, now):  # before the costly Schnorr check
            self.counters["refused_rate"] += 1
            return None
        verify_event(event)
        if not self._has_room(view.sender):
            self.counters["refused_full"] += 1
            return None
        return Queued(view.sender, carrier.geohash, event)

    def published(self, ident: str) -> bool:
        """Whether the node uplinked (or is uplinking) the event `ident` itself."""
        return self._known(ident)

    def _known(self, ident: str) -> bool:
        return ident in self._published or ident in self._queue or ident in self._in_flight

    def _take_rate(self, depositor: bytes, now: float) -> bool:
        times = [t for t in self._deposits.get(depositor, ()) if now - t < 60.0]
        if len(times) >= PER_DEPOSITOR_PER_MINUTE:
            self._deposits[depositor] = times
            return False
        self._deposits[depositor] = [*times, now]
        if len(self._deposits) > TRACKED_IDS:  # a churn of depositors must not grow this
            self._deposits = {d: t for d, t in self._deposits.items() if now - t[-1] < 60.0}
        return True

    def _has_room(self, depositor: bytes) -> bool:
        waiting = [*self._queue.values(), *self._in_flight.values()]
        mine = sum(1 for q in waiting if q.depositor == depositor)
        return mine < MAX_QUEUED_PER_DEPOSITOR and len(waiting) < self.max_queued

    def take(self) -> list[Queued]:
        """Everything waiting, now in flight: publish each and settle it."""
        taken = list(self._queue.values())
        self._queue.clear()
        self._in_flight.update((q.event.id, q) for q in taken)
        return taken

    def settle(self, event_id: str, accepted: bool | None, now: float) -> None:
        """A relay accepted (True) or refused (False) the event, or none answered (None: it
        goes back to wait for the next connection)."""
        item = self._in_flight.pop(event_id, None)
        if item is None:
            return
        if accepted is None:
            self._queue[event_id] = item
            self._queue.move_to_end(event_id, last=False)
            return
        self._published.add(event_id, now)  # a refusal is final too: never retried
        self.counters["published" if accepted else "relay_refused"] += 1


def valid_geohash(geohash: str) -> bool:
    """bitchat's geohash check: 1 to 12 characters of the geohash alphabet."""
    return 0 < len(geohash) <= 12 and all(c in GEOHASH_ALPHABET for c in geohash)
