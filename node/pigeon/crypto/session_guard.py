"""Node-wide freshness check of handshake payloads: recent timestamps, ids never seen before.

Noise XX already binds messages 2 and 3 to both sides' fresh ephemeral keys, so a replayed
handshake message cannot complete a new handshake; this guard is the second, explicit layer
the protocol promises. One guard serves every session of a node (the messenger keeps it and
stores its bytes). It remembers ids only while their timestamps are inside the window (an
older one is refused as stale anyway), and at most `capacity` of them, oldest first out.

State bytes, version 1: u8 version | u32 count | count x (16 id | u64 timestamp), oldest first.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from typing import Final

from pigeon.crypto.errors import MalformedInput, Replayed
from pigeon.crypto.session_payload import HANDSHAKE_ID_LEN

GUARD_VERSION: Final = 1
MAX_AGE_S: Final = 600
MAX_AHEAD_S: Final = 600
CAPACITY: Final = 4096

_HEAD: Final = struct.Struct(">BI")
_ENTRY: Final = struct.Struct(f">{HANDSHAKE_ID_LEN}sQ")


class HandshakeGuard:
    """Refuses stale, future-dated and repeated handshake ids; mutable, bounded, serializable."""

    __slots__ = ("_capacity", "_max_age_s", "_max_ahead_s", "_seen")

    def __init__(
        self, max_age_s: int = MAX_AGE_S, max_ahead_s: int = MAX_AHEAD_S, capacity: int = CAPACITY
    ) -> None:
        self._max_age_s = max_age_s
        self._max_ahead_s = max_ahead_s
        self._capacity = capacity
        self._seen: OrderedDict[bytes, int] = OrderedDict()

    def check(self, handshake_id: bytes, timestamp_s: int, now: float) -> None:
        """Raise Replayed if the payload is stale, too far ahead or already seen."""
        if timestamp_s < now - self._max_age_s:
            raise Replayed("handshake payload is stale")
        if timestamp_s > now + self._max_ahead_s:
            raise Replayed("handshake payload is dated too far in the future")
        if handshake_id in self._seen:
            raise Replayed("handshake id was seen before")

    def remember(self, handshake_id: bytes, timestamp_s: int, now: float) -> None:
        """Record an accepted id; forget ids now outside the window, then the oldest over cap."""
        oldest_fresh = now - self._max_age_s
        for stale in [key for key, seen_at in self._seen.items() if seen_at < oldest_fresh]:
            del self._seen[stale]
        self._seen[handshake_id] = timestamp_s
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)

    def to_bytes(self) -> bytes:
        """The version-1 byte form."""
        entries = (_ENTRY.pack(key, seen_at) for key, seen_at in self._seen.items())
        return _HEAD.pack(GUARD_VERSION, len(self._seen)) + b"".join(entries)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        max_age_s: int = MAX_AGE_S,
        max_ahead_s: int = MAX_AHEAD_S,
        capacity: int = CAPACITY,
    ) -> HandshakeGuard:
        """Restore from `to_bytes` under the given policy; raises MalformedInput."""
        if len(data) < _HEAD.size:
            raise MalformedInput("handshake guard state is truncated")
        version, count = _HEAD.unpack_from(data)
        if version != GUARD_VERSION:
            raise MalformedInput(f"unsupported handshake guard version {version}")
        if len(data) != _HEAD.size + count * _ENTRY.size:
            raise MalformedInput("handshake guard state has the wrong length")
        guard = cls(max_age_s, max_ahead_s, capacity)
        for key, seen_at in _ENTRY.iter_unpack(data[_HEAD.size :]):
            if key in guard._seen:
                raise MalformedInput("handshake guard state repeats an id")
            guard._seen[key] = seen_at
        while len(guard._seen) > capacity:
            guard._seen.popitem(last=False)
        return guard
