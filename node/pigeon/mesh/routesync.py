"""Routes kept in step by deltas: what one neighbour knows of our routes table, both ends.

A node sends a neighbour its whole table once, when the link comes up, and after that only the
entries that changed. Each update has a sequence number (per link, from 1); a delta also names
its base, the last update the neighbour confirmed (by a hop ack, which the receiver sends only
for an update it applied or already has). A delta holds every tag that changed since its base,
the tags of every unconfirmed update included, at their values now: so it brings the neighbour
to our table from whichever of those updates it last applied, whatever was lost or reordered.
The receiver applies an update newer than its own and based on no later one than it holds; an
older one it has superseded (acked, nothing to do); a delta based on an update it never had is
a gap (not acked: the sender, after a few tries, sends the whole table again). Sans-IO.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from pigeon.mesh.routecodec import WITHDRAWN, RoutesUpdate


class Verdict(Enum):
    """What the receiver made of an update."""

    APPLIED = "applied"  # its view changed to the sender's table at that update: ack it
    STALE = "stale"  # it has this update or a newer one: ack it, nothing to do
    GAP = "gap"  # based on an update it never applied: no ack, the sender will resync


@dataclass(frozen=True, slots=True)
class _Sent:
    view: dict[bytes, int]  # the sender's table as this update told it
    touched: frozenset[bytes]  # tags whose value differs from the previous update's
    full: bool


class RouteSender:
    """Our routes as told to one neighbour: which update to send next."""

    __slots__ = ("_acked_seq", "_acked_view", "_pending", "_resync", "_seq")

    def __init__(self) -> None:
        self._seq = 0  # the last update made
        self._acked_seq = 0  # the newest update the neighbour confirmed; 0: none yet
        self._acked_view: dict[bytes, int] = {}
        self._pending: dict[int, _Sent] = {}  # unconfirmed updates by seq, oldest first
        self._resync = False

    @property
    def told(self) -> Mapping[bytes, int]:
        """The table as last told (confirmed or not)."""
        if self._pending:
            return self._pending[next(reversed(self._pending))].view
        return self._acked_view

    @property
    def in_flight(self) -> bool:
        """Whether an update awaits its ack (and will be resent, not resynced)."""
        return bool(self._pending) and not self._resync

    def wants(self, table: Mapping[bytes, int]) -> bool:
        """Whether the neighbour should get an update: it was told otherwise (at first, an
        empty table), or did not take what it was told."""
        return self._resync or table != self.told

    def update(self, table: Mapping[bytes, int]) -> RoutesUpdate | None:
        """The update that brings the neighbour to `table`; None if it was told that last."""
        if not self.wants(table):
            return None
        view = dict(table)
        touched = _differs(self.told, view)
        full = self._resync or not self._acked_seq
        self._seq += 1
        self._pending[self._seq] = _Sent(view, frozenset(touched), full)
        if full:
            self._resync = False
            return RoutesUpdate(True, self._seq, 0, _entries(view, view.keys()))
        tags = _differs(self._acked_view, view)
        for sent in self._pending.values():
            tags.update(sent.touched)
        return RoutesUpdate(False, self._seq, self._acked_seq, _entries(view, tags))

    def confirmed(self, seq: int) -> None:
        """The neighbour acked update `seq`: it holds that update or a newer one."""
        sent = self._pending.get(seq)
        if sent is None or seq <= self._acked_seq:
            return
        self._acked_seq, self._acked_view = seq, sent.view
        for old in [s for s in self._pending if s <= seq]:
            del self._pending[old]

    def was_full(self, seq: int) -> bool:
        """Whether unconfirmed update `seq` was a whole table."""
        sent = self._pending.get(seq)
        return sent is not None and sent.full

    def resync(self) -> None:
        """The neighbour did not take our updates: the next one is the whole table."""
        self._resync = True


class RouteReceiver:
    """A neighbour's routes as it told them to us, updated in its order."""

    __slots__ = ("seq", "view")

    def __init__(self) -> None:
        self.seq = 0  # the newest update applied; 0: none yet
        self.view: dict[bytes, int] = {}  # tag -> the neighbour's distance to it

    def accept(self, update: RoutesUpdate) -> Verdict:
        """Apply `update` if it is newer than what we hold and based on what we hold."""
        if update.seq <= self.seq:
            return Verdict.STALE
        if update.full:
            self.view = {tag: distance for distance, tag in update.routes}
        elif update.base > self.seq:
            return Verdict.GAP
        else:
            view = self.view
            for distance, tag in update.routes:
                if distance == WITHDRAWN:
                    view.pop(tag, None)
                else:
                    view[tag] = distance
        self.seq = update.seq
        return Verdict.APPLIED


def _differs(old: Mapping[bytes, int], new: Mapping[bytes, int]) -> set[bytes]:
    """The tags whose distance differs between two tables (present in one only included)."""
    tags = {tag for tag, distance in new.items() if old.get(tag) != distance}
    tags.update(tag for tag in old if tag not in new)
    return tags


def _entries(view: Mapping[bytes, int], tags: Iterable[bytes]) -> tuple[tuple[int, bytes], ...]:
    """(distance, tag) for `tags`, withdrawn ones as 0, nearest first then by tag."""
    return tuple(sorted((view.get(tag, WITHDRAWN), tag) for tag in tags))
