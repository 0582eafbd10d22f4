"""Token buckets per neighbour for packets, bytes and handshakes, with visible throttle counts.

Handshakes are envelopes flagged `Flag.HANDSHAKE` (a Noise handshake message): each costs the
recipient public-key work and session state, so they get their own, much slower bucket.
Memory is bounded: neighbours idle for `idle_s` are forgotten (a returning neighbour starts
with full buckets, having been silent that long) and at most `max_neighbours` are tracked,
least recently active forgotten first. Totals survive forgetting.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from enum import StrEnum


class TokenBucket:
    """`burst` tokens, refilled at `rate_per_s`; starts full."""

    __slots__ = ("_tokens", "_updated", "burst", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: float) -> None:
        if not (rate_per_s > 0 and burst > 0):
            raise ValueError("rate_per_s and burst must be positive")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = burst
        self._updated: float | None = None

    def take(self, now: float, amount: float = 1) -> bool:
        """Spend `amount` tokens if available; a refusal spends nothing."""
        updated = self._updated
        if updated is None or now > updated:
            if updated is not None:
                self._tokens = min(self.burst, self._tokens + (now - updated) * self.rate_per_s)
            self._updated = now
        if amount > self._tokens:
            return False
        self._tokens -= amount
        return True


class LimitKind(StrEnum):
    """What a neighbour spends."""

    PACKETS = "packets"
    BYTES = "bytes"
    HANDSHAKES = "handshakes"


@dataclasses.dataclass(frozen=True, slots=True)
class LimiterPolicy:
    """Per-neighbour rates and bursts, and how many neighbours to remember."""

    # A BLE link carries tens of kB/s; these leave an honest neighbour room to spare while one
    # flooder cannot take more than a sliver of a router that handles ~20,000 packets/s.
    packets_per_s: float = 200.0
    packets_burst: float = 500.0
    bytes_per_s: float = 64 * 1024.0
    bytes_burst: float = 256 * 1024.0
    handshakes_per_s: float = 0.5
    handshakes_burst: float = 10.0
    idle_s: float = 600.0
    max_neighbours: int = 1024

    def __post_init__(self) -> None:
        if any(not value > 0 for value in dataclasses.astuple(self)):
            raise ValueError("every limiter setting must be positive")

    def rate_and_burst(self, kind: LimitKind) -> tuple[float, float]:
        """The (rate per second, burst) of `kind`."""
        return (
            getattr(self, f"{kind.value}_per_s"),
            getattr(self, f"{kind.value}_burst"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class ThrottleCounts:
    """How many requests were refused, per kind."""

    packets: int = 0
    bytes: int = 0
    handshakes: int = 0


@dataclasses.dataclass(slots=True, eq=False)
class _Neighbour:
    buckets: dict[LimitKind, TokenBucket]
    refused: dict[LimitKind, int]
    last_seen: float


class NeighbourLimiter:
    """Rate limits per neighbour (a transport peer id) under one `LimiterPolicy`."""

    def __init__(self, policy: LimiterPolicy | None = None) -> None:
        self.policy = policy or LimiterPolicy()
        self._neighbours: OrderedDict[str, _Neighbour] = OrderedDict()  # least recent first
        self._refused_total = dict.fromkeys(LimitKind, 0)
        # No neighbour goes idle before this: the least recently active one's deadline.
        self._next_idle_at = math.inf
        # The neighbour touched last, already at the end of the recency order: a burst from
        # one neighbour (every frame of a packet) skips the reordering.
        self._last_peer: str | None = None
        self._last: _Neighbour | None = None

    def __len__(self) -> int:
        return len(self._neighbours)

    def allow(self, peer: str, kind: LimitKind, amount: float, now: float) -> bool:
        """Spend `amount` of `peer`'s `kind` budget; False (and counted) if it is used up."""
        neighbour = self._last
        if peer != self._last_peer or neighbour is None or now >= self._next_idle_at:
            neighbour = self._touch(peer, now)
        elif now > neighbour.last_seen:
            neighbour.last_seen = now
        if neighbour.buckets[kind].take(now, amount):
            return True
        neighbour.refused[kind] += 1
        self._refused_total[kind] += 1
        return False

    def throttled(self, peer: str) -> ThrottleCounts:
        """Refusals of `peer` while it has been remembered."""
        neighbour = self._neighbours.get(peer)
        if neighbour is None:
            return ThrottleCounts()
        return ThrottleCounts(**{kind.value: n for kind, n in neighbour.refused.items()})

    def throttled_peers(self) -> dict[str, ThrottleCounts]:
        """Every remembered neighbour refused at least once, with its counts (for metrics)."""
        return {
            peer: self.throttled(peer)
            for peer, neighbour in self._neighbours.items()
            if any(neighbour.refused.values())
        }

    @property
    def totals(self) -> ThrottleCounts:
        """Refusals of all neighbours, forgotten ones included."""
        return ThrottleCounts(**{kind.value: n for kind, n in self._refused_total.items()})

    def _touch(self, peer: str, now: float) -> _Neighbour:
        neighbours = self._neighbours
        if now >= self._next_idle_at:  # the least recent neighbour may have gone idle
            self._forget_idle(now)
        neighbour = neighbours.get(peer)
        if neighbour is None:
            neighbour = neighbours[peer] = self._new_neighbour(now)
            if len(neighbours) > self.policy.max_neighbours:
                neighbours.popitem(last=False)
                self._next_idle_at = -math.inf
            elif len(neighbours) == 1:
                self._next_idle_at = now + self.policy.idle_s
        else:
            neighbours.move_to_end(peer)
            if now > neighbour.last_seen:
                neighbour.last_seen = now
        self._last_peer, self._last = peer, neighbour
        return neighbour

    def _forget_idle(self, now: float) -> None:
        """Forget neighbours idle for `idle_s`; note when the next one could be."""
        neighbours, idle_s = self._neighbours, self.policy.idle_s
        while neighbours:
            oldest = next(iter(neighbours.values()))
            if oldest.last_seen + idle_s > now:
                self._next_idle_at = oldest.last_seen + idle_s
                return
            neighbours.popitem(last=False)
        self._next_idle_at = math.inf

    def _new_neighbour(self, now: float) -> _Neighbour:
        buckets = {kind: TokenBucket(*self.policy.rate_and_burst(kind)) for kind in LimitKind}
        return _Neighbour(buckets, dict.fromkeys(LimitKind, 0), now)
