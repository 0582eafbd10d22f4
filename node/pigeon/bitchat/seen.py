"""Which bitchat packets this node has handled, bounded by time and count, O(1) a packet.

bitchat keys a packet by sender, timestamp, type and a digest of its payload and remembers
1,000 keys for 5 minutes. A node sees the traffic of many phones, so it keeps more for as long;
a packet older than the 120 s freshness window is refused anyway, so 300 s covers every copy.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

SEEN_TTL_S: Final = 300.0
SEEN_MAX_ENTRIES: Final = 16 * 1024


class SeenCache:
    """Keys seen within the last `ttl_s` seconds, at most `max_entries` of them."""

    __slots__ = ("_entries", "_max_entries", "_ttl_s")

    def __init__(self, ttl_s: float = SEEN_TTL_S, max_entries: int = SEEN_MAX_ENTRIES) -> None:
        if not ttl_s > 0 or max_entries < 1:
            raise ValueError("need ttl_s > 0 and max_entries >= 1")
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, float] = OrderedDict()  # key -> first seen, oldest first

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, key: bytes, now: float) -> bool:
        """Remember `key`; False if it was already remembered (a duplicate)."""
        entries = self._entries
        seen_at = entries.get(key)
        if seen_at is not None:
            if now - seen_at < self._ttl_s:
                return False
            del entries[key]
        entries[key] = now
        if len(entries) > self._max_entries:
            entries.popitem(last=False)
        return True

    def expire(self, now: float) -> None:
        """Forget keys older than the TTL (insertion order is time order)."""
        entries = self._entries
        while entries:
            oldest, seen_at = next(iter(entries.items()))
            if now - seen_at < self._ttl_s:
                return
            del entries[oldest]
