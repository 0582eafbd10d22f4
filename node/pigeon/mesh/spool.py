"""Spool policy: which packets a node keeps for recipients out of range, and which it drops.

An in-memory index (sans-IO); the store mirrors it from the decisions it returns: every
`offer` says whether the packet was accepted and which held packets left and why, and
`expire`, `remove` and `clear_by_receipt` say what they removed. To rebuild after a restart,
re-offer the stored packets in their original order with their original acceptance times,
then call `expire` with the current time.

Eviction order, when a packet does not fit a per-tag quota or a global cap: expired packets
first (always purged before deciding), then the lowest priority class (BULK, then INTERACTIVE,
then CONTROL), oldest first within a class. A packet never displaces one of a higher class:
if room cannot be made from its own class and lower ones, it is rejected instead. Per-depositor
limits are never met by eviction: a neighbour over its share is refused, so one sender cannot
push others out beyond its share.

Per-tag quotas count a tag's receipts and its envelopes apart, each against the same limits:
a busy conversation's receipts (held until they expire, since nobody learns they arrived)
must not crowd out its next envelopes, and a new receipt displaces only the tag's oldest
receipt. Receipts and notices are spooled too (CONTROL class) so they travel on; receipts
clear other spools. Receipts are keyed on the receipt hash, never on an envelope id: a receipt
removes every held envelope whose receipt hash is the hash of its secret, and a held receipt
keeps later envelopes with that hash out. A receipt whose secret matches nothing held clears
nothing; it cannot be forged for an envelope without a preimage of that envelope's hash.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Final

from pigeon.mesh.packet import (
    LINK_LOCAL,
    Packet,
    PacketType,
    Priority,
    decode_receipt,
    encoded_len,
    priority,
)
from pigeon.mesh.receipt import receipt_hash

_CLASSES: Final = tuple(Priority)  # most important first


class SpoolReason(StrEnum):
    """Why a packet was refused or removed."""

    DUPLICATE = "duplicate"  # refused: a packet with this id is held
    NOT_SPOOLABLE = "not_spoolable"  # refused: announces are for neighbours only
    EXPIRED = "expired"  # refused or removed: past its deadline
    TOO_LARGE = "too_large"  # refused: larger than a whole quota
    DEPOSITOR_QUOTA = "depositor_quota"  # refused: the depositor's share is used up
    TAG_QUOTA = "tag_quota"  # refused: no room for this recipient tag
    FULL = "full"  # refused: no room in the spool
    CLEARED = "cleared"  # refused or removed: a valid receipt for this envelope exists
    DISPLACED = "displaced"  # removed: made room for a packet of equal or higher class


@dataclasses.dataclass(frozen=True, slots=True)
class SpoolPolicy:
    """Quotas and caps of one node's spool; all limits are inclusive."""

    max_packets: int = 20_000
    max_bytes: int = 64 * 1024 * 1024
    per_tag_max_packets: int = 500
    per_tag_max_bytes: int = 4 * 1024 * 1024
    per_depositor_max_packets: int = 2_000
    per_depositor_max_bytes: int = 16 * 1024 * 1024
    max_age_s: float = 24 * 3600.0

    def __post_init__(self) -> None:
        limits = dataclasses.astuple(self)
        if any(not value > 0 for value in limits):
            raise ValueError("every spool limit must be positive")
        if self.per_tag_max_packets > self.max_packets or self.per_tag_max_bytes > self.max_bytes:
            raise ValueError("per-tag quotas cannot exceed the global caps")


@dataclasses.dataclass(frozen=True, slots=True)
class Eviction:
    """A held packet that left the spool."""

    packet_id: bytes
    reason: SpoolReason


@dataclasses.dataclass(frozen=True, slots=True)
class SpoolDecision:
    """What `offer` did: accepted or refused (with a reason), and what it removed meanwhile."""

    accepted: bool
    reason: SpoolReason | None
    evicted: tuple[Eviction, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    """Packets and bytes charged to one tag or depositor."""

    packets: int
    size_bytes: int


@dataclasses.dataclass(slots=True, eq=False)
class _Entry:
    packet: Packet
    depositor: str
    size: int
    klass: Priority
    deadline: float
    seq: int


@dataclasses.dataclass(slots=True, eq=False)
class _Bucket:
    """Held ids per class, oldest first, with totals: the whole spool or one tag."""

    classes: tuple[dict[bytes, None], ...] = dataclasses.field(
        default_factory=lambda: ({}, {}, {})  # one per class of `_CLASSES`
    )
    packets: int = 0
    size_bytes: int = 0
    control_packets: int = 0  # of which CONTROL (receipts, in a tag's bucket)
    control_bytes: int = 0

    def victims(self, klass: Priority) -> Iterator[bytes]:
        """Eviction candidates for a newcomer of `klass`: lowest class first, oldest first."""
        for lower in reversed(_CLASSES[klass:]):
            yield from self.classes[lower]

    def usage_like(self, klass: Priority) -> tuple[int, int, Iterator[bytes]]:
        """A tag's quota use by packets of the newcomer's kind (receipts, or envelopes), and
        the candidates to displace among them."""
        if klass is _CONTROL:
            return self.control_packets, self.control_bytes, iter(self.classes[_CONTROL])
        packets, size = self.packets - self.control_packets, self.size_bytes - self.control_bytes
        return packets, size, self.victims(klass)


class Spool:
    """The packets a node holds for others, under a `SpoolPolicy`."""

    def __init__(self, policy: SpoolPolicy | None = None) -> None:
        self.policy = policy or SpoolPolicy()
        self._entries: dict[bytes, _Entry] = {}
        self._all = _Bucket()
        self._tags: dict[bytes, _Bucket] = {}
        self._depositors: dict[str, list[int]] = {}  # depositor -> [packets, bytes]
        self._receipts: dict[bytes, dict[bytes, None]] = {}  # receipt hash -> receipt ids
        self._envelopes: dict[bytes, dict[bytes, None]] = {}  # receipt hash -> envelope ids
        self._deadlines: list[tuple[float, int, bytes]] = []  # heap; stale items skipped
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, packet_id: object) -> bool:
        return packet_id in self._entries

    @property
    def bytes_used(self) -> int:
        """Encoded bytes of every held packet."""
        return self._all.size_bytes

    def usage_for_tag(self, recipient_tag: bytes, *, receipts: bool = False) -> Usage:
        """What `recipient_tag`'s envelopes (or, with `receipts`, its receipts) use of their
        quota."""
        bucket = self._tags.get(recipient_tag)
        if bucket is None:
            return Usage(0, 0)
        packets, size, _ = bucket.usage_like(_CONTROL if receipts else _BULK)
        return Usage(packets, size)

    def usage_for_depositor(self, depositor: str) -> Usage:
        """What `depositor` uses of its share."""
        packets, size = self._depositors.get(depositor, (0, 0))
        return Usage(packets, size)

    def offer(self, packet: Packet, depositor: str, now: float) -> SpoolDecision:
        """Consider holding `packet`, handed over by `depositor`, at unix time `now`."""
        heap = self._deadlines
        evicted = (
            [Eviction(pid, SpoolReason.EXPIRED) for pid in self.expire(now)]
            if heap and (heap[0][0] <= now or len(heap) > 2 * len(self._entries) + 64)
            else []
        )
        if packet.type is _RECEIPT:
            # A receipt clears its envelopes even if the receipt itself is not kept.
            cleared = self.clear_by_receipt(decode_receipt(packet.payload))
            evicted.extend(Eviction(pid, SpoolReason.CLEARED) for pid in cleared)
        size = encoded_len(packet)
        reason = self._refusal(packet, depositor, size, now)
        if reason is not None:
            return SpoolDecision(False, reason, tuple(evicted))
        klass = priority(packet)
        every, policy = self._all, self.policy
        if (
            packet.recipient_tag not in self._tags
            and every.packets < policy.max_packets
            and every.size_bytes + size <= policy.max_bytes
        ):
            victims: list[bytes] | SpoolReason = []  # the common case: room enough for a new tag
        else:
            victims = self._make_room(packet.recipient_tag, size, klass)
        if isinstance(victims, SpoolReason):
            return SpoolDecision(False, victims, tuple(evicted))
        for victim in victims:
            self._remove(victim)
            evicted.append(Eviction(victim, SpoolReason.DISPLACED))
        self._insert(packet, depositor, size, klass, now)
        return SpoolDecision(True, None, tuple(evicted)) if evicted else _ACCEPTED

    def for_tags(self, tags: Iterable[bytes], now: float) -> list[Packet]:
        """Unexpired held packets addressed to any of `tags`, by class, then oldest first."""
        found: list[_Entry] = []
        for tag in set(tags):
            bucket = self._tags.get(tag)
            for held in bucket.classes if bucket else ():
                found.extend(e for e in map(self._entries.__getitem__, held) if e.deadline > now)
        found.sort(key=lambda entry: (entry.klass, entry.seq))
        return [entry.packet for entry in found]

    def receipts(self, now: float) -> list[Packet]:
        """Unexpired held receipts, oldest first, for gossip to any neighbour."""
        held = (self._entries[pid] for pid in self._all.classes[_CONTROL])
        return [e.packet for e in held if e.deadline > now and e.packet.type is _RECEIPT]

    def remove(self, packet_id: bytes) -> bool:
        """Drop a held packet (e.g. handed to its recipient); False if it was not held."""
        if packet_id not in self._entries:
            return False
        self._remove(packet_id)
        return True

    def clear_by_receipt(self, secret: bytes) -> list[bytes]:
        """Drop every held envelope whose receipt hash is `secret`'s; return their ids, oldest
        first (none for a secret of the wrong length)."""
        try:
            key = receipt_hash(secret)
        except ValueError:
            return []
        cleared = list(self._envelopes.get(key, ()))
        for envelope_id in cleared:
            self._remove(envelope_id)
        return cleared

    def expire(self, now: float) -> list[bytes]:
        """Drop packets whose deadline has passed; return their ids, soonest deadline first."""
        heap, expired = self._deadlines, []
        while heap and heap[0][0] <= now:
            _, seq, packet_id = heapq.heappop(heap)
            entry = self._entries.get(packet_id)
            if entry is not None and entry.seq == seq:
                self._remove(packet_id)
                expired.append(packet_id)
        if len(heap) > 2 * len(self._entries) + 64:
            self._deadlines = [(e.deadline, e.seq, pid) for pid, e in self._entries.items()]
            heapq.heapify(self._deadlines)
        return expired

    def _refusal(self, packet: Packet, depositor: str, size: int, now: float) -> SpoolReason | None:
        """Why `packet` (`size` bytes encoded) may not be held at all, before any quota is
        considered."""
        if packet.type in LINK_LOCAL:
            return SpoolReason.NOT_SPOOLABLE
        if packet.packet_id in self._entries:
            return SpoolReason.DUPLICATE
        if packet.expires_at_s <= now:
            return SpoolReason.EXPIRED
        policy = self.policy
        if size > policy.per_tag_max_bytes or size > policy.per_depositor_max_bytes:
            return SpoolReason.TOO_LARGE
        packets, held = self._depositors.get(depositor, (0, 0))
        if (
            packets + 1 > policy.per_depositor_max_packets
            or held + size > policy.per_depositor_max_bytes
        ):
            return SpoolReason.DEPOSITOR_QUOTA
        if packet.type is _ENVELOPE and packet.receipt_hash in self._receipts:
            return SpoolReason.CLEARED  # the held receipt's secret hashes to this envelope's
        return None

    def _make_room(self, tag: bytes, size: int, klass: Priority) -> list[bytes] | SpoolReason:
        """Ids to displace so a `size`-byte packet of `klass` fits, or why it cannot."""
        policy, victims = self.policy, []
        bucket = self._tags.get(tag)
        if bucket is not None:
            packets, held, candidates = bucket.usage_like(klass)
            for_tag = _choose(
                candidates,
                packets + 1 - policy.per_tag_max_packets,
                held + size - policy.per_tag_max_bytes,
                self._entries,
                (),
            )
            if for_tag is None:
                return SpoolReason.TAG_QUOTA
            victims = for_tag
        every = self._all
        freed = sum(self._entries[victim].size for victim in victims) if victims else 0
        excess_packets = every.packets - len(victims) + 1 - policy.max_packets
        excess_bytes = every.size_bytes - freed + size - policy.max_bytes
        if excess_packets <= 0 and excess_bytes <= 0:
            return victims  # the common case: room enough, no candidates to walk
        more = _choose(
            every.victims(klass), excess_packets, excess_bytes, self._entries, set(victims)
        )
        if more is None:
            return SpoolReason.FULL
        return victims + more

    def _insert(
        self, packet: Packet, depositor: str, size: int, klass: Priority, now: float
    ) -> None:
        deadline = min(float(packet.expires_at_s), now + self.policy.max_age_s)
        entry = _Entry(packet, depositor, size, klass, deadline, next(self._seq))
        packet_id = packet.packet_id
        self._entries[packet_id] = entry
        tagged = self._tags.get(packet.recipient_tag)
        if tagged is None:
            tagged = self._tags[packet.recipient_tag] = _Bucket()
        for bucket in (self._all, tagged):
            bucket.classes[klass][packet_id] = None
            bucket.packets += 1
            bucket.size_bytes += size
            if klass is _CONTROL:
                bucket.control_packets += 1
                bucket.control_bytes += size
        usage = self._depositors.setdefault(depositor, [0, 0])
        usage[0] += 1
        usage[1] += size
        heapq.heappush(self._deadlines, (deadline, entry.seq, packet_id))
        if packet.type is _ENVELOPE:  # the common case, without the calls below
            self._envelopes.setdefault(packet.receipt_hash, {})[packet_id] = None
            return
        index = self._hash_index(packet)
        if index is not None:
            index.setdefault(_hash_key(packet), {})[packet_id] = None

    def _remove(self, packet_id: bytes) -> None:
        entry = self._entries.pop(packet_id)
        tag = entry.packet.recipient_tag
        for bucket in (self._all, self._tags[tag]):
            del bucket.classes[entry.klass][packet_id]
            bucket.packets -= 1
            bucket.size_bytes -= entry.size
            if entry.klass is _CONTROL:
                bucket.control_packets -= 1
                bucket.control_bytes -= entry.size
        if not self._tags[tag].packets:
            del self._tags[tag]
        usage = self._depositors[entry.depositor]
        usage[0] -= 1
        usage[1] -= entry.size
        if not usage[0]:
            del self._depositors[entry.depositor]
        index = self._hash_index(entry.packet)
        if index is not None:
            key = _hash_key(entry.packet)
            ids = index[key]
            del ids[packet_id]
            if not ids:
                del index[key]

    def _hash_index(self, packet: Packet) -> dict[bytes, dict[bytes, None]] | None:
        """Where `packet` is indexed by receipt hash: receipts and envelopes apart; notices
        nowhere."""
        if packet.type is _RECEIPT:
            return self._receipts
        if packet.type is _ENVELOPE:
            return self._envelopes
        return None


def _hash_key(packet: Packet) -> bytes:
    """The receipt hash that links receipts and envelopes: an envelope's header field, or the
    hash of a receipt's secret."""
    if packet.type is _RECEIPT:
        return receipt_hash(decode_receipt(packet.payload))
    return packet.receipt_hash


def _choose(
    candidates: Iterator[bytes],
    excess_packets: int,
    excess_bytes: int,
    entries: dict[bytes, _Entry],
    taken: Iterable[bytes],
) -> list[bytes] | None:
    """Victims among `candidates` (in order) that remove the excess, skipping `taken`; None if
    impossible."""
    if excess_packets <= 0 and excess_bytes <= 0:
        return []
    chosen: list[bytes] = []
    skip = set(taken)
    for victim in candidates:
        if excess_packets <= 0 and excess_bytes <= 0:
            break
        if victim in skip:
            continue
        chosen.append(victim)
        excess_packets -= 1
        excess_bytes -= entries[victim].size
    if excess_packets > 0 or excess_bytes > 0:
        return None
    return chosen


# Looked up once: Enum attribute access is slow on the hot path.
_ENVELOPE: Final = PacketType.ENVELOPE
_RECEIPT: Final = PacketType.RECEIPT
_BULK: Final = Priority.BULK
_CONTROL: Final = Priority.CONTROL
_ACCEPTED: Final = SpoolDecision(True, None, ())  # frozen: one answer shared by every call
