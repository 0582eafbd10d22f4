"""How the GATT services of one adapter share its link slots (sans-IO).

An adapter carries a limited number of LE links (`total`). Each service keeps `reserved` of
them for itself; a service may use more only while the slots the other services reserved and do
not use stay free. So nodes never crowd phones out, nor phones nodes, nor the Pigeon app's phones
bitchat's or the reverse, and a service alone on the air may use every slot but the others'
reserves. A link that is idle, silent or abusive is evicted by `eviction.EvictionPolicy`; one
that carries useful frames is never pre-empted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from pigeon.transport.base import FrameVerdict
from pigeon.transport.ble.eviction import (
    Eviction,
    EvictionParams,
    EvictionPolicy,
    EvictReason,
    Role,
)

_LOGGER = logging.getLogger(__name__)

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
    """The links of one adapter's services under an `EvictionPolicy`; an eviction it decides
    is carried out by the service's own transport (`serve`), at once and synchronously: the
    link is gone from the books before the newcomer takes its slot, its disconnect follows."""

    def __init__(
        self,
        plan: SlotPlan,
        params: EvictionParams | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plan = plan
        self.policy = EvictionPolicy(plan, params)
        self._clock = clock
        self._evictors: dict[str, Callable[[str, EvictReason], None]] = {}

    def serve(self, service: str, evict: Callable[[str, EvictReason], None]) -> None:
        """`evict(key, reason)` drops a link of `service` (and disconnects it) from now on."""
        self._evictors[service] = evict

    def counts(self) -> dict[str, int]:
        """Each service's links now."""
        return self.policy.counts()

    def banned(self, address: str) -> bool:
        """Whether `address` is backed off for abuse now."""
        return self.policy.banned(address, self._clock())

    def can_admit(self, service: str, role: Role, address: str) -> bool:
        """Whether a newcomer of `service` at `address` could link now (maybe by an eviction)."""
        return self.policy.room(service, role, address, self._clock()).admitted

    def admit(self, key: str, service: str, role: Role, address: str) -> bool:
        """Book the newcomer `key`, evicting a link for it if need be; False: no room."""
        admission = self.policy.admit(key, service, role, address, self._clock())
        if admission.evict is not None:
            self._evict(admission.evict)
        return admission.admitted

    def closed(self, key: str) -> None:
        """The link `key` is gone."""
        self.policy.closed(key)

    def judge(self, key: str, address: str, verdict: FrameVerdict | None) -> None:
        """Count the upper layer's `verdict` on a frame link `key` carried."""
        if verdict is FrameVerdict.REFUSED:
            self.refused(address, key)
        elif verdict is not FrameVerdict.IGNORED:
            self.policy.useful(key, self._clock())

    def refused(self, address: str, key: str | None = None) -> bool:
        """A frame from `address` broke the rules; True when that banned it and it held no link
        (its links are evicted, and cut, by their transports): the caller cuts it then."""
        evictions = self.policy.refused(address, self._clock(), key)
        for eviction in evictions:
            self._evict(eviction)
        return not evictions and self.policy.banned(address, self._clock())

    def sweep(self) -> None:
        """Evict the links silent for too long."""
        for eviction in self.policy.due(self._clock()):
            self._evict(eviction)

    def _evict(self, eviction: Eviction) -> None:
        _LOGGER.info("evicting a %s link: %s", eviction.service, eviction.reason)
        self._evictors[eviction.service](eviction.key, eviction.reason)
