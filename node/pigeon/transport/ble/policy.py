"""Sans-IO decisions of the BLE transport: identifier rotation, tie-break, backoff, pacing.

Every time is a float of seconds from an injected monotonic clock, and randomness comes from an
injected `random.Random` (a `random.SystemRandom` in production), so tests replay exactly.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Final

from pigeon.transport.ble.gatt import IDENTIFIER_LEN, LINK_TAG_LEN

MAX_ROTATION_S: Final = 15 * 60.0
# Rotation times are drawn from [MIN, MAX) so that two nodes never rotate in step, and an
# observer cannot link an old identifier to a new one by the moment of the change.
MIN_ROTATION_S: Final = 10 * 60.0


class IdentifierSchedule:
    """The short identifier a node advertises; a fresh random one at least every 15 minutes."""

    def __init__(self, rng: random.Random, now: float) -> None:
        self._rng = rng
        self._identifier = b""
        self._rotate_at = now
        self.current(now)

    @property
    def rotate_at(self) -> float:
        """When the current identifier expires."""
        return self._rotate_at

    def current(self, now: float) -> bytes:
        """The identifier valid at `now`, drawing a new one if the old one expired."""
        if now >= self._rotate_at:
            old = self._identifier
            while self._identifier == old:
                self._identifier = self._rng.randbytes(IDENTIFIER_LEN)
            self._rotate_at = now + self._rng.uniform(MIN_ROTATION_S, MAX_ROTATION_S)
        return self._identifier


def new_link_tag(rng: random.Random) -> bytes:
    """A random tag for one central connection."""
    return rng.randbytes(LINK_TAG_LEN)


def patience_s(
    own_identifier: bytes, peer_identifier: bytes, base_s: float, spread_s: float
) -> float:
    """How long the node with the higher identifier waits before dialing anyway: `base_s` plus
    a share of `spread_s` drawn from both identifiers in order, so two nodes that each think the
    other should dial (one saw a stale identifier) do not give up at the same moment."""
    digest = hashlib.sha256(own_identifier + peer_identifier).digest()
    return base_s + spread_s * int.from_bytes(digest[:2]) / 0xFFFF


def should_connect(own_identifier: bytes, peer_identifier: bytes) -> bool:
    """Whether this node opens the connection: the one with the lower identifier does.

    Both nodes decide the same from the same two identifiers, so two nodes that see each other
    make one connection, not two. Equal identifiers (a 2**-32 chance) connect neither way until
    one of them rotates.
    """
    return own_identifier < peer_identifier


def keep_incoming(
    own_identifier: bytes, central_identifier: bytes, linked_as_central: bool
) -> bool:
    """Whether a HELLO from `central_identifier` may open a link, given our links to it.

    A duplicate can only arise when identifiers rotated between the two decisions; the link
    whose central has the lower identifier wins, at both ends.
    """
    if not linked_as_central:
        return True
    return central_identifier < own_identifier


@dataclass(frozen=True, slots=True)
class BackoffParams:
    """Reconnect delays: full jitter, doubling from `base_s` up to `max_s`."""

    base_s: float = 1.0
    max_s: float = 60.0


class ReconnectBackoff:
    """When a neighbour (keyed by address) may be tried again after failed connects."""

    def __init__(self, rng: random.Random, params: BackoffParams = BackoffParams()) -> None:
        self._rng = rng
        self._params = params
        self._failures: dict[str, int] = {}
        self._not_before: dict[str, float] = {}

    def ready(self, key: str, now: float) -> bool:
        """Whether `key` may be tried at `now`."""
        return now >= self._not_before.get(key, now)

    def failed(self, key: str, now: float) -> float:
        """Record a failed attempt; return the delay before the next one."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        ceiling = min(self._params.max_s, self._params.base_s * 2 ** min(failures - 1, 30))
        delay = self._rng.uniform(self._params.base_s / 2, ceiling)
        self._not_before[key] = now + delay
        return delay

    def succeeded(self, key: str) -> None:
        """Forget the failures of `key`."""
        self._failures.pop(key, None)
        self._not_before.pop(key, None)


@dataclass(frozen=True, slots=True)
class PacerParams:
    """A token bucket in bytes: `rate_bytes_s` sustained, `burst_bytes` at once."""

    rate_bytes_s: float = 16_000.0
    burst_bytes: float = 2_048.0

    def __post_init__(self) -> None:
        if self.rate_bytes_s <= 0 or self.burst_bytes <= 0:
            raise ValueError("rate and burst must be positive")


class WritePacer:
    """Spaces writes so BlueZ's queue never holds more than a burst beyond what the air drains."""

    def __init__(self, params: PacerParams, now: float) -> None:
        self._params = params
        self._tokens = params.burst_bytes
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            gained = (now - self._at) * self._params.rate_bytes_s
            self._tokens = min(self._params.burst_bytes, self._tokens + gained)
            self._at = now

    def delay_s(self, size: int, now: float) -> float:
        """How long to wait before a write of `size` bytes may go (0.0: now)."""
        self._refill(now)
        need = min(float(size), self._params.burst_bytes) - self._tokens
        return max(0.0, need / self._params.rate_bytes_s)

    def spend(self, size: int, now: float) -> None:
        """Account a write of `size` bytes made at `now` (after `delay_s` said 0)."""
        self._refill(now)
        self._tokens -= min(float(size), self._params.burst_bytes)


# Notifications a node queues on its adapter, for all links together.
NOTIFY_QUEUE_FRAMES: Final = 128
# BlueZ's GATT server packs notifications that come within 10 ms (NFY_MULT_TIMEOUT) into one
# Multiple Handle Value Notification when the client supports it (BlueZ clients do), and one
# that does not fit the pack can overtake it: spacing notifications wider keeps them in order.
NOTIFY_MIN_GAP_S: Final = 0.015
