"""Tag gradient: how many hops away each recipient tag is, and through which neighbour.

Every node announces the tags its endpoint serves (an ANNOUNCE at TTL `ANNOUNCE_HOPS`), and a
node that follows the gradient tells each neighbour, in a ROUTES packet, the tags it can reach
and in how many hops (distance-vector routing, split horizon: never a route back to the
neighbour it goes through; `mesh/routesync.py` keeps each neighbour's table in step by
deltas). A tag a neighbour reaches in d hops is d + 1 hops from us. Routes
travel up to `ROUTE_HORIZON` hops, far beyond the TTL: the TTL bounds blind spraying, not how
far an envelope in custody may walk toward its recipient. Nodes of the previous version send
learned tags as announces at TTL 0 and 1 (distance `ANNOUNCE_HOPS` - TTL + 1); those are still
understood. What a neighbour says replaces what it said before in the same form. When its link
goes down, what it said lapses: it is used only for tags no live neighbour has a route to, told
to no one until the neighbour is back, and forgotten once it has been gone `hold_s`, or, if it
came back, when it sends routes again (or after `max_s`): a link that drops and reconnects, as
BLE links do, then changes no route and costs no update beyond it, however long the whole
table takes to come again, while a neighbour that walked off passes its routes to no one.
Loops cannot form around a packet: the router hands a packet down a route only to a neighbour
not known to hold it, and a node drops a copy it has seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

ANNOUNCE_HOPS: Final = 2
# A route this long is not passed on: bounds count-to-infinity after a partition.
ROUTE_HORIZON: Final = 24
# Routes told to a neighbour, nearest first: where more are near, the neighbourhood is dense
# and spraying finds recipients anyway; this keeps a whole table to a few frames (8 of 244).
# It was 48: each node serves two tags (today's and its intro tag), so 48 covered 24 nodes,
# and on `backbone` (66 nodes) first messages across the grid waited for sprays (seed 3: p95
# 7.9 s with 32 copies; 2.3 s at 96, for 22% more frames, routes deltas of walkers' tags).
ROUTES_MAX_OUT: Final = 96

_FAR: Final = (ROUTE_HORIZON + 1, "")


@dataclass(slots=True)
class _Lapsed:
    """What a neighbour said before its link went down at `since`."""

    since: float
    levels: dict[int, tuple[bytes, ...]]
    routes: dict[bytes, int]
    back: bool = False  # its link is up again (it has not sent routes since)


class TagGradient:
    """Distances to tags through each neighbour, from the neighbours' announces and routes."""

    __slots__ = ("_best", "_lapsed", "_levels", "_routes")

    def __init__(self) -> None:
        self._levels: dict[str, dict[int, tuple[bytes, ...]]] = {}  # peer -> TTL -> tags
        self._routes: dict[str, dict[bytes, int]] = {}  # peer -> tag -> its distance from peer
        self._lapsed: dict[str, _Lapsed] = {}  # peers whose link went down, what they said
        self._best: dict[bytes, tuple[int, str]] = {}  # tag -> (our distance, via peer)

    def heard(self, peer: str, level: int, tags: tuple[bytes, ...]) -> None:
        """`peer` announced `tags` at TTL `level` (replacing what it said at that level)."""
        levels = self._levels.setdefault(peer, {})
        if tags:
            levels[min(level, ANNOUNCE_HOPS)] = tags
        else:
            levels.pop(min(level, ANNOUNCE_HOPS), None)

    def heard_routes(self, peer: str, routes: list[tuple[int, bytes]]) -> None:
        """`peer` reaches each tag in `routes` in so many hops (replacing its previous routes)."""
        self._routes[peer] = {tag: distance for distance, tag in routes}
        self._lapsed.pop(peer, None)

    def set_routes(self, peer: str, routes: Mapping[bytes, int]) -> None:
        """`peer` reaches each tag of `routes` in so many hops (its whole table, kept as is)."""
        self._routes[peer] = dict(routes)
        self._lapsed.pop(peer, None)

    def forget(self, peer: str) -> None:
        """`peer` is gone, and so is everything it announced."""
        self._levels.pop(peer, None)
        self._routes.pop(peer, None)
        self._lapsed.pop(peer, None)

    def lapse(self, peer: str, now: float) -> None:
        """`peer`'s link went down at `now`: what it said is kept, below any live route."""
        levels = self._levels.pop(peer, {})
        routes = self._routes.pop(peer, {})
        if levels or routes:
            self._lapsed[peer] = _Lapsed(now, levels, routes)

    @property
    def lapsed(self) -> bool:
        """Whether anything lapsed is kept (see `expire`)."""
        return bool(self._lapsed)

    def relinked(self, peer: str) -> bool:
        """`peer`'s link is up again; True if what it said had lapsed (it is told again)."""
        lapsed = self._lapsed.get(peer)
        if lapsed is not None:
            lapsed.back = True
        return lapsed is not None

    def expire(self, now: float, hold_s: float, max_s: float) -> bool:
        """Forget what lapsed `hold_s` ago from a peer not back, or `max_s` ago from one that
        came back and has sent no routes since; True if anything was forgotten."""
        gone = [
            peer
            for peer, lapsed in self._lapsed.items()
            if now >= lapsed.since + (max_s if lapsed.back else hold_s)
        ]
        for peer in gone:
            del self._lapsed[peer]
        return bool(gone)

    def recompute(self, served: frozenset[bytes]) -> list[bytes]:
        """Rebuild the best routes; return the tags whose route appeared, changed or went.

        Routes from live neighbours come first; a lapsed one is used only where none is known.
        """
        best: dict[bytes, tuple[int, str]] = {}
        _add(best, self._levels, self._routes, served)
        if self._lapsed:
            fallback: dict[bytes, tuple[int, str]] = {}
            _add(
                fallback,
                {peer: lapsed.levels for peer, lapsed in self._lapsed.items()},
                {peer: lapsed.routes for peer, lapsed in self._lapsed.items()},
                served,
            )
            for tag, route in fallback.items():
                best.setdefault(tag, route)
        old, self._best = self._best, best
        changed = [tag for tag, route in best.items() if old.get(tag) != route]
        changed.extend(tag for tag in old if tag not in best)
        return changed

    def via(self, tag: bytes) -> str | None:
        """The neighbour closest to `tag`, or None if no route to it is known."""
        route = self._best.get(tag)
        return None if route is None else route[1]

    def distance(self, tag: bytes) -> int | None:
        """Hops from us to `tag` along the best route, or None if none is known."""
        route = self._best.get(tag)
        return None if route is None else route[0]

    def routes(self) -> Iterator[tuple[bytes, str]]:
        """Every known (tag, closest neighbour)."""
        for tag, (_, peer) in self._best.items():
            yield tag, peer

    def routes_for(self, peer: str) -> tuple[tuple[int, bytes], ...]:
        """What to tell `peer`: (our distance, tag), nearest first, none routed via `peer` nor
        via a neighbour whose link is down."""
        lapsed = self._lapsed
        out = sorted(
            (distance, tag)
            for tag, (distance, via) in self._best.items()
            if via != peer and distance < ROUTE_HORIZON and (via not in lapsed or lapsed[via].back)
        )
        return tuple(out[:ROUTES_MAX_OUT])


def _add(
    best: dict[bytes, tuple[int, str]],
    levels_by_peer: Mapping[str, Mapping[int, tuple[bytes, ...]]],
    routes_by_peer: Mapping[str, Mapping[bytes, int]],
    served: frozenset[bytes],
) -> None:
    """Put into `best` the nearest route to each tag the peers announce or route to."""
    for peer, levels in levels_by_peer.items():
        for level, tags in levels.items():
            distance = ANNOUNCE_HOPS - level + 1
            for tag in tags:
                if distance < best.get(tag, _FAR)[0] and tag not in served:
                    best[tag] = (distance, peer)
    for peer, routes in routes_by_peer.items():
        for tag, peer_distance in routes.items():
            distance = peer_distance + 1
            if distance < best.get(tag, _FAR)[0] and tag not in served:
                best[tag] = (distance, peer)
