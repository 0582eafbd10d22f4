"""A token bucket: `burst` tokens, refilled at `rate_per_s`, starting full; time passed in."""

from __future__ import annotations


class TokenBucket:
    """Spend one token per packet; a refusal spends nothing."""

    __slots__ = ("_tokens", "_updated", "burst", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: float, now: float) -> None:
        if not (rate_per_s > 0 and burst >= 1):
            raise ValueError("need rate_per_s > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = burst
        self._updated = now

    def take(self, now: float) -> bool:
        """Spend a token if one is there."""
        if now > self._updated:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate_per_s)
            self._updated = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
