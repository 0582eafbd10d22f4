"""The node as a bitchat courier: a sans-IO policy over the envelopes it holds for absent phones.

bitchat's rules (CourierStore.swift, BLEService.swift): a deposit is a courier envelope in a
signed 0x04 packet addressed to us by the peer on that link (the caller checks the signature and
the link); an envelope already expired, or living past 24 h plus 1 h of clock slack, is refused;
identical ciphertext is the same envelope (its budget may grow only before it was sprayed).
When a peer's verified direct announce shows its Noise key, envelopes whose tag matches that key
(yesterday, today, tomorrow) are handed over, then forgotten; envelopes with a copy budget over 1
give half of it to another courier (binary spray-and-wait), never to their depositor or to their
recipient, and never twice to one courier; a signed decline (0x2B) within the receipt window
restores what was given. Our own quotas replace a phone's 40 slots: `max_held` in all (refused
when full, never evicting) and `per_depositor` each. Every change is returned as a `Keep` or
`Forget` for the caller to persist before it acts. Times are Unix seconds from the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final

from pigeon.bitchat.courier_wire import MAX_LIFETIME_S, CourierEnvelope, candidate_tags

EXPIRY_SLACK_S: Final = 60 * 60  # bitchat's maxExpirySlack: depositors' clocks drift
RECEIPT_WINDOW_S: Final = 10.0  # bitchat's courierSprayAckTimeoutSeconds
# Copies offered to one courier per encounter: a node holding thousands must not flood one
# phone's link (40 packets/s out) and spend budgets on copies the link never carried.
SPRAY_PER_ENCOUNTER: Final = 8


@dataclass(frozen=True, slots=True)
class CourierConfig:
    """Quotas; docs/protocol.md ("bitchat courier") says why each value."""

    max_held: int = 10_000
    per_depositor: int = 100
    lifetime_s: float = MAX_LIFETIME_S


@dataclass(frozen=True, slots=True)
class HeldEnvelope:
    """An envelope the node carries, with who gave it, when it goes, and whom it was sprayed to."""

    envelope: CourierEnvelope
    depositor: bytes  # the depositor's Noise static public key
    stored_at: float
    expires_at: float
    sprayed_to: frozenset[bytes] = field(default=frozenset())

    @property
    def identity(self) -> bytes:
        """The envelope's identity (its ciphertext hash)."""
        return self.envelope.identity


@dataclass(frozen=True, slots=True)
class Keep:
    """Persist `held` (new, or its copy budget or spray list changed)."""

    held: HeldEnvelope


@dataclass(frozen=True, slots=True)
class Forget:
    """Delete the envelope `identity` (handed over or expired); a hand-over also says until when
    a copy of it (a Nostr drop, another courier's spray) is still its recipient's mail."""

    identity: bytes
    delivered_until: float | None = None  # the envelope's own expiry, when handed over


CourierOp = Keep | Forget


class Refusal(StrEnum):
    """Why a deposit was declined; each is also a counter."""

    EXPIRED = "expired"
    TOO_LONG = "too_long"  # expiry past 24 h plus slack
    FULL = "full"
    DEPOSITOR_QUOTA = "depositor_quota"


@dataclass(frozen=True, slots=True)
class DepositResult:
    """A deposit's outcome: `refusal` None means held (or already held, or `delivered` to its
    recipient already: taken, and kept no more); `ops` to persist."""

    refusal: Refusal | None
    ops: list[CourierOp]
    delivered: bool = False


Delivered = Callable[[bytes, float], bool]  # an envelope identity handed over before `now`?


@dataclass(frozen=True, slots=True)
class SprayCopy:
    """A copy to send to a courier: `envelope` carries the budget given away."""

    envelope: CourierEnvelope


class CourierPolicy:
    """The envelopes held and the rules for taking, handing over and spraying them."""

    def __init__(
        self,
        config: CourierConfig | None = None,
        held: Iterable[HeldEnvelope] = (),
        delivered: Delivered = lambda identity, now: False,
    ) -> None:
        self.config = config if config is not None else CourierConfig()
        self._delivered = delivered  # the caller's durable record of hand-overs
        self._held: dict[bytes, HeldEnvelope] = {}
        self._by_tag: dict[bytes, set[bytes]] = {}
        self._by_depositor: dict[bytes, int] = {}
        self._pending: dict[tuple[bytes, bytes], tuple[int, float]] = {}  # (id, courier)
        for entry in held:
            self._put(entry)

    def __len__(self) -> int:
        return len(self._held)

    def has_room(self) -> bool:
        """Whether another depositor's envelope would be taken now."""
        return len(self._held) < self.config.max_held

    def held_bytes(self) -> int:
        """Ciphertext bytes held."""
        return sum(len(h.envelope.ciphertext) for h in self._held.values())

    def held(self) -> list[HeldEnvelope]:
        """Every envelope held, oldest first."""
        return sorted(self._held.values(), key=lambda h: h.stored_at)

    def deposit(self, envelope: CourierEnvelope, depositor: bytes, now: float) -> DepositResult:
        """Take `envelope` from `depositor` (its Noise key, checked by the caller) at `now`."""
        ops = self.expire(now)
        now_ms = int(now * 1000)
        if envelope.expired_at(now_ms):
            return DepositResult(Refusal.EXPIRED, ops)
        if envelope.expiry_ms > (now + self.config.lifetime_s + EXPIRY_SLACK_S) * 1000:
            return DepositResult(Refusal.TOO_LONG, ops)
        same = self._held.get(envelope.identity)
        if same is not None:
            if not same.sprayed_to and envelope.copies > same.envelope.copies:
                grown = replace(same, envelope=envelope.with_copies(envelope.copies))
                self._held[same.identity] = grown
                ops.append(Keep(grown))
            return DepositResult(None, ops)
        if self._delivered(envelope.identity, now):
            # Another courier's copy of mail its recipient has: acked (the giver's budget is
            # spent, rightly) and not kept, so the recipient never gets it from us twice.
            return DepositResult(None, ops, delivered=True)
        if not self.has_room():
            return DepositResult(Refusal.FULL, ops)
        if self._by_depositor.get(depositor, 0) >= self.config.per_depositor:
            return DepositResult(Refusal.DEPOSITOR_QUOTA, ops)
        expires_at = min(envelope.expiry_ms / 1000, now + self.config.lifetime_s)
        entry = HeldEnvelope(envelope, depositor, now, expires_at)
        self._put(entry)
        ops.append(Keep(entry))
        return DepositResult(None, ops)

    def for_recipient(self, noise_key: bytes, now: float) -> list[HeldEnvelope]:
        """Envelopes addressed to the peer with `noise_key` around `now`, oldest first."""
        found: list[HeldEnvelope] = []
        for tag in candidate_tags(noise_key, now):
            found += (self._held[i] for i in self._by_tag.get(tag, ()))
        return sorted((h for h in found if h.expires_at > now), key=lambda h: h.stored_at)

    def delivered(self, identity: bytes) -> list[CourierOp]:
        """The envelope was handed to its recipient: forget it."""
        entry = self._remove(identity)
        if entry is None:
            return []
        return [Forget(identity, entry.envelope.expiry_ms / 1000)]

    def spray(
        self, courier: bytes, now: float, limit: int = SPRAY_PER_ENCOUNTER
    ) -> tuple[list[SprayCopy], list[CourierOp]]:
        """Half the budget of up to `limit` eligible envelopes for the courier with Noise key
        `courier`; the caller persists the ops first, then sends every copy (`unsent` undoes
        one the link did not take)."""
        own_tags = candidate_tags(courier, now)
        copies: list[SprayCopy] = []
        ops: list[CourierOp] = []
        for entry in self.held():
            if len(copies) >= limit:
                break
            envelope = entry.envelope
            if (
                envelope.copies <= 1
                or entry.expires_at <= now
                or entry.depositor == courier
                or courier in entry.sprayed_to
                or envelope.recipient_tag in own_tags
            ):
                continue
            given = envelope.copies // 2
            kept = replace(
                entry,
                envelope=envelope.with_copies(envelope.copies - given),
                sprayed_to=entry.sprayed_to | {courier},
            )
            self._held[entry.identity] = kept
            self._pending[(entry.identity, courier)] = (given, now)
            copies.append(SprayCopy(envelope.with_copies(given)))
            ops.append(Keep(kept))
        return copies, ops

    def unsent(self, identity: bytes, courier: bytes) -> list[CourierOp]:
        """A spray copy for `courier` never left: give its budget back, as if never offered."""
        pending = self._pending.pop((identity, courier), None)
        entry = self._held.get(identity)
        if pending is None or entry is None:
            return []
        restored = replace(
            entry,
            envelope=entry.envelope.with_copies(entry.envelope.copies + pending[0]),
            sprayed_to=entry.sprayed_to - {courier},
        )
        self._held[identity] = restored
        return [Keep(restored)]

    def receipt(
        self, identity: bytes, courier: bytes, declined: bool, now: float
    ) -> list[CourierOp]:
        """A courier's signed ack or decline of a copy we sprayed; a decline in time restores."""
        pending = self._pending.pop((identity, courier), None)
        entry = self._held.get(identity)
        if pending is None or entry is None or not declined:
            return []
        given, at = pending
        if now - at > RECEIPT_WINDOW_S:
            return []  # assumed delivered, as bitchat's giver does after its timeout
        restored = replace(
            entry, envelope=entry.envelope.with_copies(entry.envelope.copies + given)
        )
        self._held[identity] = restored
        return [Keep(restored)]

    def expire(self, now: float) -> list[CourierOp]:
        """Forget envelopes whose time is up, and receipt windows long closed."""
        gone = [i for i, h in self._held.items() if h.expires_at <= now]
        for identity in gone:
            self._remove(identity)
        for key in [k for k, (_, at) in self._pending.items() if now - at > RECEIPT_WINDOW_S]:
            del self._pending[key]
        return [Forget(i) for i in gone]

    def _put(self, entry: HeldEnvelope) -> None:
        self._held[entry.identity] = entry
        self._by_tag.setdefault(entry.envelope.recipient_tag, set()).add(entry.identity)
        self._by_depositor[entry.depositor] = self._by_depositor.get(entry.depositor, 0) + 1

    def _remove(self, identity: bytes) -> HeldEnvelope | None:
        entry = self._held.pop(identity, None)
        if entry is None:
            return None
        tag = entry.envelope.recipient_tag
        self._by_tag[tag].discard(identity)
        if not self._by_tag[tag]:
            del self._by_tag[tag]
        left = self._by_depositor[entry.depositor] - 1
        if left:
            self._by_depositor[entry.depositor] = left
        else:
            del self._by_depositor[entry.depositor]
        return entry
