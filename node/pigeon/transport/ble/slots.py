"""How the GATT services of one adapter share its link slots (sans-IO).

An adapter carries a limited number of LE links (`total`). Each service keeps `reserved` of
them for itself; a service may use more only while the slots the other services reserved and do
not use stay free. So nodes never crowd phones out, nor phones nodes, nor the Pigeon app's phones
bitchat's or the reverse, and a service alone on the air may use every slot but the others'
reserves. No link is ever pre-empted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

OWN_SERVICE: Final = "pigeon"
APP_SERVICE: Final = "app"
BITCHAT_SERVICE: Final = "bitchat"


@dataclass(frozen=True, slots=True)
class SlotPlan:
    """`total` links over every service; `reserved[service]` of them kept for that service."""

    total: int
    reserved: Mapping[str, int]

    def __post_init__(self) -> None:
        if self.total < 1:
            raise ValueError("an adapter needs at least one link slot")
        if any(r < 0 for r in self.reserved.values()):
            raise ValueError("a reserve cannot be negative")
        if sum(self.reserved.values()) > self.total:
            raise ValueError("the reserves exceed the total")

    @staticmethod
    def split(total: int, reserved_each: int, services: tuple[str, ...]) -> SlotPlan:
        """A plan reserving `reserved_each` slots per service (fewer if they do not fit)."""
        each = min(reserved_each, total // max(1, len(services)))
        return SlotPlan(total, dict.fromkeys(services, each))

    def has_room(self, service: str, counts: Mapping[str, int]) -> bool:
        """Whether `service` may open one more link, given each service's links now."""
        used = sum(counts.values())
        if used >= self.total:
            return False
        if counts.get(service, 0) < self.reserved.get(service, 0):
            return True
        owed = sum(
            max(0, reserve - counts.get(other, 0))
            for other, reserve in self.reserved.items()
            if other != service
        )
        return self.total - used > owed


class LinkSlots:
    """A `SlotPlan` over the live link counts the transports of one adapter report."""

    def __init__(self, plan: SlotPlan) -> None:
        self.plan = plan
        self._counters: dict[str, Callable[[], int]] = {}

    def track(self, service: str, count: Callable[[], int]) -> None:
        """Count `service`'s links with `count` from now on."""
        self._counters[service] = count

    def counts(self) -> dict[str, int]:
        """Each tracked service's links now."""
        return {service: count() for service, count in self._counters.items()}

    def has_room(self, service: str) -> bool:
        """Whether `service` may open one more link now."""
        return self.plan.has_room(service, self.counts())
