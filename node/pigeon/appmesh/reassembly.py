"""Per-link reassembly of the app's fragments, with the app's caps plus a staleness timeout.

The app's own caps: 256 KiB a message, 64 messages pending a source, 16 sources (least
recently used forgotten first). A message id that comes back with a different count starts
over; duplicate fragments are ignored. Ours adds what a relay needs and the app lacks: a
partial message idle for `timeout_s` is dropped (so a link that stops mid-message does not pin
memory) and a byte cap per source. `now` is passed in; nothing here reads a clock.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from pigeon.appmesh.errors import MessageTooLarge
from pigeon.appmesh.fragment import Fragment

MAX_MESSAGE_BYTES: Final = 256 * 1024
MAX_PENDING: Final = 64
MAX_SOURCES: Final = 16
# An app fragment is one write with response (about one connection interval, tens of ms), so
# 15 s without the next fragment means the sender stopped; it resends the whole packet anyway.
TIMEOUT_S: Final = 15.0
MAX_SOURCE_BYTES: Final = 2 * MAX_MESSAGE_BYTES


class _Partial:
    __slots__ = ("count", "last_at", "parts", "size")

    def __init__(self, count: int, last_at: float) -> None:
        self.count = count
        self.last_at = last_at
        self.size = 0
        self.parts: dict[int, bytes] = {}


@dataclass(slots=True, eq=False)
class _Source:
    pending: OrderedDict[int, _Partial] = field(default_factory=OrderedDict)  # oldest first
    size: int = 0


class Reassembler:
    """Fragments in, whole messages out, per source (a link id)."""

    def __init__(
        self,
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_pending: int = MAX_PENDING,
        max_sources: int = MAX_SOURCES,
        max_source_bytes: int = MAX_SOURCE_BYTES,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        if min(max_message_bytes, max_pending, max_sources, max_source_bytes) < 1:
            raise ValueError("reassembly caps must be positive")
        if not timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        self.max_message_bytes = max_message_bytes
        self._max_pending = max_pending
        self._max_sources = max_sources
        self._max_source_bytes = max_source_bytes
        self._timeout_s = timeout_s
        self._sources: OrderedDict[str, _Source] = OrderedDict()
        self.evicted = 0  # partial messages pushed out by a cap before they completed

    @property
    def bytes_held(self) -> int:
        """Payload bytes of every partial message held now."""
        return sum(source.size for source in self._sources.values())

    def pending_count(self) -> int:
        """Partial messages held now, over every source."""
        return sum(len(source.pending) for source in self._sources.values())

    def add(self, source: str, fragment: Fragment, now: float) -> bytes | None:
        """Take one fragment; the whole message once its last fragment is in, else None.

        Raises MessageTooLarge (the partial message is dropped).
        """
        if fragment.count == 1:  # the common case: nothing to hold
            held = self._sources.get(source)
            if held is not None:
                self._discard(held, fragment.message_id)
            if len(fragment.payload) > self.max_message_bytes:
                raise MessageTooLarge("message larger than the reassembly cap")
            return fragment.payload
        held = self._source(source)
        partial = held.pending.get(fragment.message_id)
        if partial is None or partial.count != fragment.count:
            self._discard(held, fragment.message_id)
            partial = held.pending[fragment.message_id] = _Partial(fragment.count, now)
        partial.last_at = now
        if fragment.index not in partial.parts:
            self._store(held, fragment, partial)
        if len(partial.parts) == partial.count:
            self._discard(held, fragment.message_id)
            parts = partial.parts
            return b"".join([parts[index] for index in range(partial.count)])
        while len(held.pending) > self._max_pending:
            self._evict_oldest(held)
        return None

    def drop(self, source: str) -> None:
        """Forget a source's partial messages (its link went down)."""
        self._sources.pop(source, None)

    def expire(self, now: float) -> int:
        """Drop partial messages idle for the timeout; return how many were dropped."""
        dropped = 0
        for name in list(self._sources):
            held = self._sources[name]
            for message_id in [
                mid for mid, p in held.pending.items() if now - p.last_at >= self._timeout_s
            ]:
                self._discard(held, message_id)
                dropped += 1
            if not held.pending:
                del self._sources[name]
        return dropped

    def _source(self, name: str) -> _Source:
        held = self._sources.get(name)
        if held is not None:
            self._sources.move_to_end(name)
            return held
        held = self._sources[name] = _Source()
        while len(self._sources) > self._max_sources:
            _, retired = self._sources.popitem(last=False)
            self.evicted += len(retired.pending)
        return held

    def _store(self, held: _Source, fragment: Fragment, partial: _Partial) -> None:
        added = len(fragment.payload)
        if partial.size + added > self.max_message_bytes:
            self._discard(held, fragment.message_id)
            raise MessageTooLarge("message larger than the reassembly cap")
        partial.parts[fragment.index] = fragment.payload
        partial.size += added
        held.size += added
        while held.size > self._max_source_bytes:
            if next(iter(held.pending)) == fragment.message_id and len(held.pending) == 1:
                self._discard(held, fragment.message_id)
                raise MessageTooLarge("source over its reassembly byte cap")
            self._evict_oldest(held, keep=fragment.message_id)

    def _evict_oldest(self, held: _Source, keep: int | None = None) -> None:
        victim = next(mid for mid in held.pending if mid != keep)
        self._discard(held, victim)
        self.evicted += 1

    @staticmethod
    def _discard(held: _Source, message_id: int) -> None:
        partial = held.pending.pop(message_id, None)
        if partial is not None:
            held.size -= partial.size
