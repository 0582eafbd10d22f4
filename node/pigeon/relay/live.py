"""A reader's queue of newly deposited envelopes, bounded in envelopes and bytes (pure logic).

A reader that does not read (its socket is full) must not make the relay hold everything
deposited for it meanwhile. Past either bound the queue drops what it holds and remembers that
it did: the reader then pages the dropped envelopes from the store, which holds them anyway.
Envelopes that another relay process stored (a shared PostgreSQL store) never pass through
here: the queue is only marked stale, and the reader pages them from the store too.
"""

from __future__ import annotations

from collections import deque

from pigeon.relay.storage import StoredEnvelope


class LiveQueue:
    """Envelopes offered to one reader, at most `max_envelopes` and `max_bytes` of ciphertext."""

    def __init__(self, max_envelopes: int, max_bytes: int) -> None:
        self._max_envelopes = max_envelopes
        self._max_bytes = max_bytes
        self._items: deque[StoredEnvelope] = deque()
        self._bytes = 0
        self._dropped = False
        self._stale = False

    @property
    def held_bytes(self) -> int:
        """Ciphertext bytes held now (never above `max_bytes`)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, envelope: StoredEnvelope) -> None:
        """Queue `envelope`, or drop everything queued if it would not fit."""
        if self._dropped:
            return
        size = len(envelope.ciphertext)
        if len(self._items) >= self._max_envelopes or self._bytes + size > self._max_bytes:
            self._items.clear()
            self._bytes = 0
            self._dropped = True
            return
        self._items.append(envelope)
        self._bytes += size

    def mark_stale(self) -> None:
        """Another process stored envelopes for this reader: the next take says to page."""
        self._stale = True

    def take_stale(self) -> bool:
        """True once after `mark_stale`: the reader must page from the store."""
        stale, self._stale = self._stale, False
        return stale

    def take(self) -> tuple[list[StoredEnvelope], bool]:
        """Empty the queue: what it held, and True if envelopes were dropped since the last take."""
        items, dropped = list(self._items), self._dropped
        self._items.clear()
        self._bytes = 0
        self._dropped = False
        return items, dropped
