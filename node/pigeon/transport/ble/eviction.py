"""Which BLE links to evict, and when (sans-IO; the clock is passed in as `now`).

An adapter's link slots (`slots.SlotPlan`) are what a hostile central would hold to cut a node
off the mesh: connect, say HELLO (or write one phone frame), then stay silent or write junk. The
policy below knows, per link, who dialed, its service, when it came up, when it last carried a
frame the upper layer accepted, and how often the address broke the rules, and answers two
questions: which links to evict now (`due`, `refused`) and whom to evict so that a newcomer gets
a slot (`admit`). The rules (docs/security.md, "Link slots under abuse"):

- Abuse: `strikes` refused frames (malformed, oversized, outside any link) from one address
  within `strike_window_s` evict every link of that address at once and ban the address for
  `backoff_s`, doubling for each repeat up to `backoff_max_s`.
- Idle: a link that has carried nothing useful for `idle_s` (`relayer_idle_s` once it relayed,
  i.e. carried a useful frame) is evicted only when a newcomer wants its slot; any link silent
  for `hard_idle_s` is evicted regardless.
- A neighbour we dial (we picked it from its advertisement) may also take the slot of a link
  that has never carried anything useful, however young: a stream of fresh silent centrals can
  then never keep a relaying node out, and a link that relays is never pre-empted by one.
- Fairness: an eviction for a newcomer never takes another service below its reserve (the
  `SlotPlan` must admit the newcomer once the victim is gone); abuse and hard idle ignore it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    from pigeon.transport.ble.slots import SlotPlan

_V = TypeVar("_V")

# Addresses whose strikes or bans are remembered; beyond, the oldest are forgotten (a hostile
# with endless random addresses gains nothing from a fresh one: each is banned on its own).
MAX_TRACKED_ADDRESSES: Final = 256
# A link that relayed keeps its slot this many times idle_s: a mesh neighbour with nothing to
# send is silent too (the router announces on link-up and when routes change, not on a timer).
RELAYER_IDLE_FACTOR: Final = 5
BACKOFF_MAX_S: Final = 3600.0


class Role(StrEnum):
    """Who opened the link."""

    WE_DIALED = "we_dialed"
    IT_DIALED = "it_dialed"


class EvictReason(StrEnum):
    """Why a link was evicted (logged as is: it names no peer)."""

    ABUSE = "abuse"  # too many refused frames within the strike window
    HARD_IDLE = "hard_idle"  # nothing useful for hard_idle_s
    ROOM = "room"  # idle or silent, and a newcomer wanted the slot


@dataclass(frozen=True, slots=True)
class EvictionParams:
    """The policy's thresholds, in seconds and frames."""

    idle_s: float = 60.0
    relayer_idle_s: float = RELAYER_IDLE_FACTOR * 60.0
    hard_idle_s: float = 1800.0
    strikes: int = 5
    strike_window_s: float = 10.0
    backoff_s: float = 60.0
    backoff_max_s: float = BACKOFF_MAX_S

    def __post_init__(self) -> None:
        if not 0 < self.idle_s <= self.relayer_idle_s <= self.hard_idle_s:
            raise ValueError("need 0 < idle_s <= relayer_idle_s <= hard_idle_s")
        if self.strikes < 1 or self.strike_window_s <= 0:
            raise ValueError("need at least one strike in a positive window")
        if not 0 < self.backoff_s <= self.backoff_max_s:
            raise ValueError("need 0 < backoff_s <= backoff_max_s")

    @staticmethod
    def from_config(idle_s: float, hard_idle_s: float, backoff_s: float) -> EvictionParams:
        """The node config's three knobs (`[radio]`); a link that relayed keeps its slot five
        times `idle_s` (at most `hard_idle_s`), a ban doubles up to an hour (or `backoff_s`)."""
        return EvictionParams(
            idle_s=idle_s,
            relayer_idle_s=min(RELAYER_IDLE_FACTOR * idle_s, hard_idle_s),
            hard_idle_s=hard_idle_s,
            backoff_s=backoff_s,
            backoff_max_s=max(BACKOFF_MAX_S, backoff_s),
        )


@dataclass(slots=True)
class LinkRecord:
    """What the policy knows about one live link."""

    service: str
    role: Role
    address: str
    up_at: float
    last_useful_at: float | None = None
    useful_frames: int = 0
    refused_frames: int = 0

    @property
    def relayed(self) -> bool:
        """Whether the link ever carried a frame the upper layer accepted."""
        return self.useful_frames > 0

    @property
    def last_active(self) -> float:
        """Since when the link has carried nothing useful."""
        return self.up_at if self.last_useful_at is None else self.last_useful_at


@dataclass(frozen=True, slots=True)
class Eviction:
    """Evict the link `key` of `service` for `reason`."""

    key: str
    service: str
    reason: EvictReason


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a newcomer may link, and the link to evict first (None: a slot is free)."""

    admitted: bool
    evict: Eviction | None = None


@dataclass(slots=True)
class _Ban:
    until: float
    offences: int


class EvictionPolicy:
    """The links of one adapter, and which of them must go (see the module docstring)."""

    def __init__(self, plan: SlotPlan, params: EvictionParams | None = None) -> None:
        self.plan = plan
        self.params = params if params is not None else EvictionParams()
        self.links: dict[str, LinkRecord] = {}
        self._strikes: dict[str, list[float]] = {}
        self._bans: dict[str, _Ban] = {}

    def counts(self) -> dict[str, int]:
        """Each service's live links (every planned service, zero included)."""
        counts = dict.fromkeys(self.plan.reserved, 0)
        for record in self.links.values():
            counts[record.service] = counts.get(record.service, 0) + 1
        return counts

    def banned(self, address: str, now: float) -> bool:
        """Whether `address` is backed off for abuse at `now`."""
        ban = self._bans.get(address)
        return ban is not None and now < ban.until

    def room(self, service: str, role: Role, address: str, now: float) -> Admission:
        """Whether a newcomer of `service` at `address` could link now, and whom it would
        evict; changes nothing."""
        if self.banned(address, now):
            return Admission(False)
        counts = self.counts()
        if self.plan.has_room(service, counts):
            return Admission(True)
        victim = self._victim(service, role, counts, now)
        if victim is None:
            return Admission(False)
        return Admission(True, Eviction(victim, self.links[victim].service, EvictReason.ROOM))

    def admit(self, key: str, service: str, role: Role, address: str, now: float) -> Admission:
        """Decide on the newcomer `key` as `room` does and, if admitted, record it and forget
        the victim (the caller evicts it). A live `key` (a duplicate link swapped for another
        to the same peer) keeps its slot and its history."""
        record = self.links.get(key)
        if record is not None:
            record.role, record.address = role, address
            return Admission(True)
        admission = self.room(service, role, address, now)
        if admission.admitted:
            if admission.evict is not None:
                del self.links[admission.evict.key]
            self.links[key] = LinkRecord(service, role, address, now)
        return admission

    def closed(self, key: str) -> None:
        """The link `key` is gone (idempotent)."""
        self.links.pop(key, None)

    def useful(self, key: str, now: float) -> None:
        """The link `key` carried a frame the upper layer accepted."""
        record = self.links.get(key)
        if record is not None:
            record.useful_frames += 1
            record.last_useful_at = now

    def refused(self, address: str, now: float, key: str | None = None) -> list[Eviction]:
        """A frame from `address` (on link `key`, if any) broke the rules. At the `strikes`-th
        within the window, ban the address and evict (and forget) every link it holds."""
        if key is not None and key in self.links:
            self.links[key].refused_frames += 1
        window = now - self.params.strike_window_s
        strikes = [t for t in self._strikes.pop(address, []) if t > window]
        strikes.append(now)
        if len(strikes) < self.params.strikes:
            self._strikes[address] = strikes
            _bound(self._strikes)
            return []
        self._ban(address, now)
        return self._forget(
            [k for k, r in self.links.items() if r.address == address], EvictReason.ABUSE
        )

    def due(self, now: float) -> list[Eviction]:
        """Links silent for hard_idle_s, evicted (and forgotten) now; expired bans go too."""
        limit = self.params.hard_idle_s
        forget = now - self.params.backoff_max_s
        for address in [a for a, ban in self._bans.items() if ban.until < forget]:
            del self._bans[address]
        silent = [k for k, r in self.links.items() if now - r.last_active >= limit]
        return self._forget(silent, EvictReason.HARD_IDLE)

    def idle(self, record: LinkRecord, now: float) -> bool:
        """Whether `record` has been quiet long enough to give its slot to a newcomer."""
        grace = self.params.relayer_idle_s if record.relayed else self.params.idle_s
        return now - record.last_active >= grace

    def _victim(
        self, service: str, role: Role, counts: Mapping[str, int], now: float
    ) -> str | None:
        candidates = [
            (record.relayed, record.last_active, key)
            for key, record in self.links.items()
            if (self.idle(record, now) or (role is Role.WE_DIALED and not record.relayed))
            and self.plan.has_room(service, _without(counts, record.service))
        ]
        return min(candidates)[2] if candidates else None

    def _forget(self, keys: list[str], reason: EvictReason) -> list[Eviction]:
        return [Eviction(key, self.links.pop(key).service, reason) for key in keys]

    def _ban(self, address: str, now: float) -> None:
        old = self._bans.pop(address, None)
        offences = 1 if old is None else old.offences + 1
        backoff = min(self.params.backoff_max_s, self.params.backoff_s * 2 ** min(offences - 1, 30))
        self._bans[address] = _Ban(now + backoff, offences)
        _bound(self._bans)


def _without(counts: Mapping[str, int], service: str) -> dict[str, int]:
    less = dict(counts)
    less[service] = less.get(service, 0) - 1
    return less


def _bound(by_address: dict[str, _V]) -> None:
    # dicts keep insertion order and entries are re-inserted when touched: the first is oldest.
    while len(by_address) > MAX_TRACKED_ADDRESSES:
        del by_address[next(iter(by_address))]
