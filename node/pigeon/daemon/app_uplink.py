"""The app-mesh uplink bridge: app packets for recipients not in range, published to app relays.

The app router offers each new packet whose recipient is not linked to us (`OfferUplink`,
once per packet id). The bridge spends one token of the sender key's budget and one of the
overall budget, queues the packet (bounded, oldest dropped first) and publishes it, as it
arrived, to each configured app relay (`[appmesh] relays`, the app's default relay unless
configured otherwise) with the app's `publish{recipient, ciphertext}`, so a phone that has no
internet reaches a contact whose phone reads that relay. The recipient's own relay list is in
its contact card, which a relay hop never sees, hence a configured list (docs/operations.md).
Each relay has its own publisher and worker; a relay that fails waits with jittered exponential
backoff while the others go on. A packet not published within `MAX_AGE_S` is given up: the
sender resends with a new packet id, and an old packet is worth less than the queue room.
Connections go through `PublicOnlyResolver` (no loopback, LAN or link-local addresses) unless
`[appmesh] relay_private_addresses` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import aiohttp

from pigeon.appmesh.events import OfferUplink
from pigeon.appmesh.packet import read_header
from pigeon.appmesh.ratelimit import TokenBucket
from pigeon.transport.app_relay_client import (
    AppRelayBroken,
    AppRelayBusy,
    AppRelayPublisher,
    AppRelayRefused,
)
from pigeon.transport.base import Closed
from pigeon.transport.public_only import PublicOnlyResolver, is_public_url

_LOGGER = logging.getLogger(__name__)

APP_DEFAULT_RELAY: Final = "wss://relay.pigeonwire.app/ws"  # the app's own default relay
MAX_PENDING: Final = 256
MAX_AGE_S: Final = 600.0
SENDER_BUCKETS: Final = 1024
PER_SENDER_SHARE: Final = 0.1  # of the hourly budget: one chatty phone cannot take it all
RETRY_FIRST_S: Final = 2.0
RETRY_MAX_S: Final = 300.0
POLL_S: Final = 1.0
COUNTERS: Final = (
    "offered",  # packets for recipients not in range, offered by the app router
    "bridged",  # stored by at least one app relay
    "published",  # stored by one relay (a packet counts once per relay)
    "over_budget",  # the sender's or the overall hourly budget was spent
    "dropped",  # pushed out of a full queue
    "expired",  # not published within MAX_AGE_S
    "refused",  # a relay refused the packet for good
    "publish_failed",  # one failed attempt at one relay (it is tried again)
)

PublisherFactory = Callable[[str], AppRelayPublisher]


@dataclass(frozen=True, slots=True)
class AppUplinkPolicy:
    """What the bridge does (config `[appmesh]`)."""

    relays: tuple[str, ...] = (APP_DEFAULT_RELAY,)
    per_hour: int = 1200
    private_addresses: bool = False  # also relays on loopback, LAN and link-local addresses


@dataclass(slots=True, eq=False)
class _Pending:
    offer: OfferUplink
    offered_at: float
    relays_left: set[str]
    stored: bool = False


@dataclass(slots=True, eq=False)
class _Relay:
    url: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    failures: int = 0
    retry_at: float = 0.0


class AppUplink:
    """Publishes offered app packets to app relays; `offer` from the driver, `run` supervised."""

    def __init__(
        self,
        policy: AppUplinkPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        publisher_factory: PublisherFactory | None = None,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._rng = rng or random.Random()
        self._make_publisher = publisher_factory or self._default_publisher
        usable = [url for url in policy.relays if policy.private_addresses or is_public_url(url)]
        if len(usable) < len(policy.relays):
            _LOGGER.warning("app relays on non-public addresses are skipped (see [appmesh])")
        self._relays = {url: _Relay(url) for url in usable}
        rate = policy.per_hour / 3600
        self._budget = TokenBucket(rate, max(1.0, policy.per_hour / 6), clock())
        self._senders: OrderedDict[bytes, TokenBucket] = OrderedDict()
        self._pending: OrderedDict[bytes, _Pending] = OrderedDict()  # packet id -> pending
        self._publishers: dict[str, AppRelayPublisher] = {}
        self._session: aiohttp.ClientSession | None = None
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)

    @property
    def relays(self) -> tuple[str, ...]:
        """The relays the bridge publishes to."""
        return tuple(self._relays)

    @property
    def pending(self) -> int:
        """Packets waiting for at least one relay."""
        return len(self._pending)

    def connected(self) -> int:
        """How many app relays have an open connection now."""
        return sum(1 for publisher in self._publishers.values() if publisher.connected)

    # -- offers (synchronous, from the app router's actions) ------------------------------------

    def offer(self, offer: OfferUplink) -> None:
        """Queue a packet for the relays, or count why not. Never raises on bad input."""
        if not self._relays:
            return
        now = self._clock()
        self.counters["offered"] += 1
        if not self._spend(offer.sender, now):
            self.counters["over_budget"] += 1
            return
        _, packet_id = read_header(offer.packet)  # the router parsed it: it is a packet
        if packet_id in self._pending:
            return
        if len(self._pending) >= MAX_PENDING:
            self._pending.popitem(last=False)
            self.counters["dropped"] += 1
        self._pending[packet_id] = _Pending(offer, now, set(self._relays))
        for relay in self._relays.values():
            relay.wake.set()

    def _spend(self, sender: bytes, now: float) -> bool:
        bucket = self._senders.pop(sender, None)
        if bucket is None:
            share = self._policy.per_hour * PER_SENDER_SHARE
            bucket = TokenBucket(share / 3600, max(1.0, share / 6), now)
        self._senders[sender] = bucket
        if len(self._senders) > SENDER_BUCKETS:
            self._senders.popitem(last=False)
        # The sender's share first, so a refused sender spends nothing of the overall budget.
        return bucket.take(now) and self._budget.take(now)

    # -- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Publish to every relay until cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                for number, relay in enumerate(self._relays.values()):
                    group.create_task(self._work(relay), name=f"app-uplink-{number}")
                await asyncio.Event().wait()
        finally:
            await self.aclose()

    async def _work(self, relay: _Relay) -> None:
        while True:
            now = self._clock()
            self._expire(now)
            item = self._next_for(relay.url) if now >= relay.retry_at else None
            if item is None:
                relay.wake.clear()
                wait_s = max(0.0, min(POLL_S, relay.retry_at - now)) or POLL_S
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait_s):  # wait_for can lose a cancel (3.11)
                        await relay.wake.wait()
                continue
            await self._publish(relay, item)

    def _next_for(self, url: str) -> _Pending | None:
        for item in self._pending.values():
            if url in item.relays_left:
                return item
        return None

    async def _publish(self, relay: _Relay, item: _Pending) -> None:
        offer = item.offer
        try:
            await self._publisher(relay.url).publish(offer.recipient, offer.packet)
        except AppRelayRefused as exc:
            self.counters["refused"] += 1
            _LOGGER.info("an app relay refused a bridged packet: %s", exc)
        except (AppRelayBroken, AppRelayBusy, Closed) as exc:
            self.counters["publish_failed"] += 1
            relay.failures += 1
            delay = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** min(relay.failures - 1, 20))
            relay.retry_at = self._clock() + delay * self._rng.uniform(0.8, 1.2)
            _LOGGER.info("publishing to an app relay failed: %s", exc)
            return
        else:
            relay.failures = 0
            self.counters["published"] += 1
            if not item.stored:
                item.stored = True
                self.counters["bridged"] += 1
        item.relays_left.discard(relay.url)
        if not item.relays_left:
            _, packet_id = read_header(offer.packet)
            self._pending.pop(packet_id, None)

    def _expire(self, now: float) -> None:
        while self._pending:
            packet_id, item = next(iter(self._pending.items()))
            if now - item.offered_at < MAX_AGE_S:
                return
            del self._pending[packet_id]
            if not item.stored:
                self.counters["expired"] += 1

    def _publisher(self, url: str) -> AppRelayPublisher:
        publisher = self._publishers.get(url)
        if publisher is None:
            publisher = self._publishers[url] = self._make_publisher(url)
        return publisher

    def _default_publisher(self, url: str) -> AppRelayPublisher:
        if self._session is None:
            resolver = None if self._policy.private_addresses else PublicOnlyResolver()
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver))
        return AppRelayPublisher(url, self._session)

    async def aclose(self) -> None:
        """Close the relay connections (pending packets stay for the next `run`)."""
        for publisher in self._publishers.values():
            await publisher.aclose()
        self._publishers.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
