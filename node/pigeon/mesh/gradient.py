"""Tag gradient: how many hops away each recipient tag is, and through which neighbour.

Every node announces the tags its endpoint serves (an ANNOUNCE at TTL `ANNOUNCE_HOPS`), and a
node that follows the gradient tells each neighbour, in a ROUTES packet, the tags it can reach
and in how many hops (distance-vector routing, split horizon: never a route back to the
neighbour it goes through; `mesh/routesync.py` keeps each neighbour's table in step by
deltas). A tag a neighbour reaches in d hops is d + 1 hops from us. Routes
travel up to `ROUTE_HORIZON` hops, far beyond the TTL: the TTL bounds blind spraying, not how
far an envelope in custody may walk toward its recipient. Nodes of the previous version send
learned tags as announces at TTL 0 and 1 (distance `ANNOUNCE_HOPS` - TTL + 1); those are still
understood. What a neighbour says replaces what it said before in the same form; it is all
forgotten when the link goes down. Loops cannot form around a packet: the router hands a packet
down a route only to a neighbour not known to hold it, and a node drops a copy it has seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final

ANNOUNCE_HOPS: Final = 2
# A route this long is not passed on: bounds count-to-infinity after a partition.
ROUTE_HORIZON: Final = 24
# Routes per ROUTES packet, nearest first: where more are near, the neighbourhood is dense and
# spraying finds recipients anyway; this keeps the packet to a few frames.
ROUTES_MAX_OUT: Final = 48

_FAR: Final = (ROUTE_HORIZON + 1, "")


class TagGradient:
    """Distances to tags through each neighbour, from the neighbours' announces and routes."""

    __slots__ = ("_best", "_levels", "_routes")

    def __init__(self) -> None:
        self._levels: dict[str, dict[int, tuple[bytes, ...]]] = {}  # peer -> TTL -> tags
        self._routes: dict[str, dict[bytes, int]] = {}  # peer -> tag -> its distance from peer
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

    def set_routes(self, peer: str, routes: Mapping[bytes, int]) -> None:
        """`peer` reaches each tag of `routes` in so many hops (its whole table, kept as is)."""
        self._routes[peer] = dict(routes)

    def forget(self, peer: str) -> None:
        """`peer` is gone, and so is everything it announced."""
        self._levels.pop(peer, None)
        self._routes.pop(peer, None)

    def recompute(self, served: frozenset[bytes]) -> list[bytes]:
        """Rebuild the best routes; return the tags whose route appeared, changed or went."""
        best: dict[bytes, tuple[int, str]] = {}
        for peer, levels in self._levels.items():
            for level, tags in levels.items():
                distance = ANNOUNCE_HOPS - level + 1
                for tag in tags:
                    if distance < best.get(tag, _FAR)[0] and tag not in served:
                        best[tag] = (distance, peer)
        for peer, routes in self._routes.items():
            for tag, peer_distance in routes.items():
                distance = peer_distance + 1
                if distance < best.get(tag, _FAR)[0] and tag not in served:
                    best[tag] = (distance, peer)
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
        """What to tell `peer`: (our distance, tag), nearest first, none routed via `peer`."""
        out = sorted(
            (distance, tag)
            for tag, (distance, via) in self._best.items()
            if via != peer and distance < ROUTE_HORIZON
        )
        return tuple(out[:ROUTES_MAX_OUT])
