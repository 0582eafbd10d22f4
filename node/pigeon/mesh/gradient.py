"""Tag gradient: which recipient tags are a few hops away, and through which neighbour.

Every node announces the tags its endpoint serves with TTL `ANNOUNCE_HOPS`. A node that
follows the gradient re-announces tags it heard at TTL t > 0 with TTL t - 1 (never back to the
neighbour its best route goes through: split horizon), so a tag heard at TTL t is
`ANNOUNCE_HOPS - t + 1` hops away. Announces are link-local: each node re-originates its own;
none is relayed. A carrier hands an envelope to the neighbour closest to its recipient, so in a
static neighbourhood envelopes walk down the gradient instead of waiting for a chance meeting.
A neighbour's announce at a level replaces what it said at that level before (an empty one
withdraws it). Tags therefore travel at most `ANNOUNCE_HOPS` + 1 hops from their owner.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

ANNOUNCE_HOPS: Final = 2
# Learned tags re-announced per level: where more are near, the neighbourhood is dense and
# spraying finds recipients anyway; this keeps a re-announce to a frame or two.
GRADIENT_MAX_TAGS: Final = 24


class TagGradient:
    """Distances to tags through each neighbour, from the neighbours' announces."""

    __slots__ = ("_best", "_heard")

    def __init__(self) -> None:
        self._heard: dict[str, dict[int, tuple[bytes, ...]]] = {}  # peer -> level -> tags
        self._best: dict[bytes, tuple[int, str]] = {}  # tag -> (distance, via peer)

    def heard(self, peer: str, level: int, tags: tuple[bytes, ...]) -> None:
        """`peer` announced `tags` at TTL `level` (replacing what it said at that level)."""
        levels = self._heard.setdefault(peer, {})
        if tags:
            levels[min(level, ANNOUNCE_HOPS)] = tags
        else:
            levels.pop(min(level, ANNOUNCE_HOPS), None)

    def forget(self, peer: str) -> None:
        """`peer` is gone, and so is everything it announced."""
        self._heard.pop(peer, None)

    def recompute(self, served: frozenset[bytes]) -> list[bytes]:
        """Rebuild the best routes; return the tags whose route appeared or changed."""
        best: dict[bytes, tuple[int, str]] = {}
        for peer, levels in self._heard.items():
            for level in sorted(levels, reverse=True):
                distance = ANNOUNCE_HOPS - level + 1
                for tag in levels[level]:
                    if tag not in served and distance < best.get(tag, (ANNOUNCE_HOPS + 2, ""))[0]:
                        best[tag] = (distance, peer)
        old, self._best = self._best, best
        return [tag for tag, route in best.items() if old.get(tag) != route]

    def via(self, tag: bytes) -> str | None:
        """The neighbour closest to `tag`, or None if it is not known to be near."""
        route = self._best.get(tag)
        return None if route is None else route[1]

    def routes(self) -> Iterator[tuple[bytes, str]]:
        """Every known (tag, closest neighbour), nearest first within each neighbour's order."""
        for tag, (_, peer) in self._best.items():
            yield tag, peer

    def announce_for(self, peer: str) -> dict[int, tuple[bytes, ...]]:
        """What to re-announce to `peer`, by level (TTL): learned tags not routed via `peer`."""
        levels: dict[int, list[bytes]] = {level: [] for level in range(ANNOUNCE_HOPS)}
        for tag, (distance, via) in self._best.items():
            level = ANNOUNCE_HOPS - distance
            if via != peer and level >= 0 and len(levels[level]) < GRADIENT_MAX_TAGS:
                levels[level].append(tag)
        return {level: tuple(tags) for level, tags in levels.items()}
