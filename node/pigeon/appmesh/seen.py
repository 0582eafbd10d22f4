"""Which app packet ids this node has handled: bounded by time and by count, O(1) a packet.

The phones remember the last 1,024 ids they saw (a FIFO, in memory only). This cache must
forget later than any phone around it, so that a copy of a packet coming back to us is
dropped here instead of being flooded again into a phone that has forgotten the id (a second
delivery of a packet breaks that phone's Olm session). It is 64 times larger than theirs, so
under the same traffic it forgets 64 times later, and time-bounded, so memory stays bounded in
a quiet neighbourhood too. Docs: docs/protocol.md, "The Pigeon app's mesh dialect".
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

PHONE_SEEN_IDS: Final = 1024  # the app's FIFO of packet ids
SEEN_MAX_ENTRIES: Final = 64 * PHONE_SEEN_IDS
SEEN_TTL_S: Final = 3600.0


class SeenCache:
    """Packet ids seen within the last `ttl_s` seconds, at most `max_entries` of them."""

    __slots__ = ("_entries", "_max_entries", "_ttl_s", "evictions")

    def __init__(self, ttl_s: float = SEEN_TTL_S, max_entries: int = SEEN_MAX_ENTRIES) -> None:
        if not ttl_s > 0 or max_entries <= PHONE_SEEN_IDS:
            raise ValueError("need ttl_s > 0 and more entries than a phone keeps (1,024)")
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, float] = OrderedDict()  # id -> first seen, oldest first
        self.evictions = 0  # ids pushed out by the count bound before their time was up

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, packet_id: object) -> bool:
        return packet_id in self._entries

    def add(self, packet_id: bytes, now: float) -> bool:
        """Remember `packet_id`; False if it was already remembered (a duplicate)."""
        entries = self._entries
        seen_at = entries.get(packet_id)
        if seen_at is not None:
            if now - seen_at < self._ttl_s:
                return False
            del entries[packet_id]  # expired but not purged yet: a new sighting
        entries[packet_id] = now
        if len(entries) > self._max_entries:
            entries.popitem(last=False)
            self.evictions += 1
        return True

    def expire(self, now: float) -> None:
        """Forget ids older than the TTL (insertion order is time order)."""
        entries = self._entries
        while entries:
            oldest, seen_at = next(iter(entries.items()))
            if now - seen_at < self._ttl_s:
                return
            del entries[oldest]
