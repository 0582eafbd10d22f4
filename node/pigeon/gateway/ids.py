"""A bounded set of recently seen ids, oldest forgotten first; times passed in."""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    """At most `capacity` ids, each kept for `lifetime_s` after it was added."""

    def __init__(self, capacity: int, lifetime_s: float) -> None:
        self.capacity = capacity
        self.lifetime_s = lifetime_s
        self._added: OrderedDict[str, float] = OrderedDict()

    def __contains__(self, ident: object) -> bool:
        return ident in self._added

    def __len__(self) -> int:
        return len(self._added)

    def add(self, ident: str, now: float) -> None:
        """Remember `ident` from `now` on."""
        self._added.pop(ident, None)
        self._added[ident] = now
        self.expire(now)

    def expire(self, now: float) -> None:
        """Forget ids past their lifetime, and the oldest beyond the capacity."""
        while self._added:
            ident, at = next(iter(self._added.items()))
            if len(self._added) <= self.capacity and now - at < self.lifetime_s:
                break
            del self._added[ident]
