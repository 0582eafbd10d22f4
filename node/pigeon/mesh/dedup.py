"""Seen-cache of packet ids: time expiry, a size bound, O(1) per packet, versioned snapshots.

Entries are kept in insertion order (`now` is expected not to run backwards, so that is also
expiry order); expired entries at the front are purged in batches, and a lookup checks the
entry's own time, so expiry is exact even between purges. Snapshots store insertion times as
unix seconds: persist a cache only when `now` is wall-clock time (the router needs wall-clock
time anyway to compare against packet expiry).
"""

from __future__ import annotations

import math
import struct
from collections import OrderedDict
from typing import Final

from pigeon.mesh.errors import CorruptState

# A packet is relayed and spooled for at most a day (SpoolPolicy.max_age_s), so a day of
# memory means no packet is handled twice while it is still alive, as long as the size bound
# does not bite first.
SEEN_CACHE_TTL_S: Final = 24 * 3600.0
# A busy neighbourhood: 500 people each sending 100 messages a day, each message an envelope
# plus a receipt, is 100,000 ids a day: about 12 MB of CPython memory (bench_mesh_core.py).
SEEN_CACHE_MAX_ENTRIES: Final = 100_000
# Expired entries are purged at most this often; lookups are exact regardless.
PURGE_INTERVAL_S: Final = 1.0
SNAPSHOT_VERSION: Final = 1

_HEAD: Final = struct.Struct(">BI")
_TIME: Final = struct.Struct(">d")
_MAX_ID_LEN: Final = 255


class SeenCache:
    """Which packet ids were seen within the last `ttl_s` seconds (at most `max_entries`)."""

    __slots__ = ("_entries", "_max_entries", "_next_purge", "_ttl_s", "evictions")

    def __init__(
        self, ttl_s: float = SEEN_CACHE_TTL_S, max_entries: int = SEEN_CACHE_MAX_ENTRIES
    ) -> None:
        if not ttl_s > 0 or max_entries < 1:
            raise ValueError("need ttl_s > 0 and max_entries >= 1")
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, float] = OrderedDict()  # id -> time first seen
        self._next_purge = float("-inf")
        self.evictions = 0  # entries pushed out by the size bound before they expired

    def __len__(self) -> int:
        return len(self._entries)

    def check_and_add(self, packet_id: bytes, now: float) -> bool:
        """True if `packet_id` was seen within the TTL; otherwise remember it and return False."""
        if now >= self._next_purge:
            self._purge(now)
        entries = self._entries
        seen_at = entries.get(packet_id)
        if seen_at is not None:
            if seen_at > now - self._ttl_s:
                return True
            entries.move_to_end(packet_id)
        entries[packet_id] = now
        if len(entries) > self._max_entries:
            entries.popitem(last=False)
            self.evictions += 1
        return False

    def _purge(self, now: float) -> None:
        self._next_purge = now + PURGE_INTERVAL_S
        cutoff = now - self._ttl_s
        stale = 0
        for seen_at in self._entries.values():
            if seen_at > cutoff:
                break
            stale += 1
        for _ in range(stale):
            self._entries.popitem(last=False)

    def to_bytes(self) -> bytes:
        """A versioned snapshot: version u8 | count u32 | count x (id_len u8 | id | seen_at f64)."""
        parts = [_HEAD.pack(SNAPSHOT_VERSION, len(self._entries))]
        for packet_id, seen_at in self._entries.items():
            if len(packet_id) > _MAX_ID_LEN:
                raise ValueError("packet id too long to snapshot")
            parts.append(bytes((len(packet_id),)))
            parts.append(packet_id)
            parts.append(_TIME.pack(seen_at))
        return b"".join(parts)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        ttl_s: float = SEEN_CACHE_TTL_S,
        max_entries: int = SEEN_CACHE_MAX_ENTRIES,
    ) -> SeenCache:
        """Restore a snapshot under (possibly new) limits, keeping the newest entries.

        Raises CorruptState naming the fault.
        """
        cache = cls(ttl_s, max_entries)
        if len(data) < _HEAD.size:
            raise CorruptState("seen-cache snapshot truncated: header missing")
        version, count = _HEAD.unpack_from(data)
        if version != SNAPSHOT_VERSION:
            raise CorruptState(f"seen-cache snapshot version {version} unsupported")
        offset = _HEAD.size
        entries = cache._entries
        for index in range(count):
            if offset >= len(data):
                raise CorruptState(f"seen-cache snapshot truncated at entry {index}")
            end = offset + 1 + data[offset]
            if end + _TIME.size > len(data):
                raise CorruptState(f"seen-cache snapshot truncated at entry {index}")
            (seen_at,) = _TIME.unpack_from(data, end)
            if not math.isfinite(seen_at):
                raise CorruptState(f"seen-cache snapshot entry {index} has a non-finite time")
            packet_id = data[offset + 1 : end]
            entries.pop(packet_id, None)
            entries[packet_id] = seen_at
            offset = end + _TIME.size
        if offset != len(data):
            raise CorruptState(f"seen-cache snapshot has {len(data) - offset} trailing bytes")
        while len(entries) > max_entries:
            entries.popitem(last=False)
        return cache
