"""Routing policies: which neighbours get a copy of a packet the router carries, and when.

The router does everything policy-independent (reassembly, dedup, rate limits, receipts,
announces and the handover of a recipient's envelopes when it announces its tag); a policy
only decides relaying to neighbours that are not the recipient.

- `flood`, the baseline: every new packet goes to every neighbour with its TTL decremented,
  and carried envelopes go to every new neighbour (epidemic store-and-forward, TTL-bounded).
- `default`, binary spray-and-wait over the TTL: a node holding a packet at TTL t > `wait_ttl`
  gives a new neighbour a copy at TTL t-1 and keeps it at t-1 itself, so the source's packet
  spreads to about 2^(TTL - wait_ttl) carriers (32 at the default TTL 7); at `wait_ttl` a
  carrier waits to meet the recipient (handover on announce). Hops still only change the TTL.
  Two repairs keep loss from eating the budget: a copy sent to a node that already had one is
  pooled with its own (`on_duplicate`), and the origin refills its budget when no receipt came
  back in time (`on_retry`, with backoff). Where the tag gradient knows a neighbour nearer the
  recipient, the router hands the packet down that route at once and no copies are sprayed:
  spraying and waiting are for when no one knows the way. Receipts are always sprayed: they
  are for the spools an envelope passed through, not for its recipient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

from pigeon.mesh.packet import MAX_TTL, PacketType

if TYPE_CHECKING:
    from pigeon.mesh.router import Carried, Router

POLICIES: Final = ("default", "flood")
DEFAULT_WAIT_TTL: Final = 2
_RECEIPT: Final = PacketType.RECEIPT  # looked up once: Enum attribute access is slow


class Policy(Protocol):
    """A relay decision maker; it calls back into the router to queue copies."""

    follows_gradient: bool  # re-announce tags heard a few hops off and route along them

    def on_new(self, router: Router, carried: Carried, from_peer: str | None) -> None:
        """A packet arrived (or our endpoint sent one) and is now carried."""

    def on_link_up(self, router: Router, peer: str) -> None:
        """A neighbour appeared."""

    def on_unsent(self, carried: Carried) -> None:
        """A copy queued for a neighbour was never sent (its link went down)."""

    def on_duplicate(self, carried: Carried, ttl: int) -> None:
        """A neighbour sent us, at `ttl`, a copy of a packet we already carry."""

    def on_retry(self, router: Router, carried: Carried) -> None:
        """Our own envelope has had no receipt for a while."""


class FloodPolicy:
    """TTL flood with dedup, plus carried envelopes to every new neighbour (epidemic)."""

    follows_gradient = False

    def on_new(self, router: Router, carried: Carried, from_peer: str | None) -> None:
        if carried.ttl == 0:
            return
        for peer in router.neighbours():
            if peer != from_peer and peer not in carried.holders:
                router.send_copy(carried, peer, carried.ttl - 1)

    def on_link_up(self, router: Router, peer: str) -> None:
        for carried in router.carried_envelopes():
            if carried.ttl and peer not in carried.holders:
                router.send_copy(carried, peer, carried.ttl - 1)

    def on_unsent(self, carried: Carried) -> None:
        """Flooding spends nothing per copy, so there is nothing to give back."""

    def on_duplicate(self, carried: Carried, ttl: int) -> None:
        """Flooding keeps the TTL it first saw."""

    def on_retry(self, router: Router, carried: Carried) -> None:
        """Flooding already offers every carried envelope to every new neighbour."""


class SprayPolicy:
    """Binary spray-and-wait with the TTL as the copy budget (2^(TTL - wait_ttl) copies)."""

    follows_gradient = True

    def __init__(self, wait_ttl: int = DEFAULT_WAIT_TTL) -> None:
        if wait_ttl < 0:
            raise ValueError("wait_ttl must be >= 0")
        self.wait_ttl = wait_ttl

    def on_new(self, router: Router, carried: Carried, from_peer: str | None) -> None:
        if carried.ttl <= self.wait_ttl or _routed(router, carried):
            return
        holders = carried.holders
        for peer in router.neighbours():
            if peer not in holders:  # `_spray`, inline
                carried.ttl -= 1
                router.send_copy(carried, peer, carried.ttl, spent=True)
                if carried.ttl <= self.wait_ttl:
                    return

    def on_link_up(self, router: Router, peer: str) -> None:
        wait_ttl = self.wait_ttl
        for carried in router.carried_packets():
            if (
                carried.ttl > wait_ttl
                and peer not in carried.holders
                and not _routed(router, carried)
            ):
                self._spray(router, carried, peer)

    def on_unsent(self, carried: Carried) -> None:
        carried.ttl += 1  # the half we meant to give away stays with us

    def on_duplicate(self, carried: Carried, ttl: int) -> None:
        # A copy sent to us twice is budget the sender spent for nothing: pool it with ours
        # (two equal halves make a whole one level up) rather than let it go to waste.
        if ttl > self.wait_ttl and ttl >= carried.ttl:
            carried.ttl = min(ttl + 1 if ttl == carried.ttl else ttl, MAX_TTL)

    def on_retry(self, router: Router, carried: Carried) -> None:
        # Copies get lost on air and carriers wander off: refill the budget and start over.
        carried.ttl = max(carried.ttl, carried.packet.ttl)
        carried.holders.clear()
        self.on_new(router, carried, None)

    @staticmethod
    def _spray(router: Router, carried: Carried, peer: str) -> None:
        carried.ttl -= 1
        router.send_copy(carried, peer, carried.ttl, spent=True)


def _routed(router: Router, carried: Carried) -> bool:
    """Whether the packet goes down a known route instead of being sprayed."""
    packet = carried.packet
    return packet.type is not _RECEIPT and router.has_route(packet.recipient_tag)


def make_policy(name: str, wait_ttl: int = DEFAULT_WAIT_TTL) -> Policy:
    """The policy called `name` (one of POLICIES); raises ValueError for others."""
    if name == "flood":
        return FloodPolicy()
    if name == "default":
        return SprayPolicy(wait_ttl)
    raise ValueError(f"routing policy {name!r} unknown; choose one of {', '.join(POLICIES)}")
