"""The neighbourhood's uplink: envelopes neighbours ask us to carry to their recipients' relays.

A phone without internet attaches its recipient's signed `MailboxHint` to its envelopes (flag
MAILBOX_HINT); our router offers each such envelope once, when it first takes it on
(`OfferUplink`). The carrier checks the hint (signature by the mailbox key it names), keeps only
relay URLs on public addresses (unless configured otherwise: see `transport.public_only`), spends
one token of an hourly budget overall and one of a smaller one per mailbox, and deposits the
envelope, exactly as it came, at each of the relays until one answers STORED. Failed deposits
wait and are tried again with backoff until the envelope expires. It never reads what it
carries: the payload stays end-to-end ciphertext, and the relay sees only the mailbox key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import aiohttp

from pigeon.crypto.errors import CryptoError
from pigeon.crypto.mailbox_hint import MailboxHint
from pigeon.mesh.packet import Packet, encode_packet
from pigeon.mesh.ratelimit import TokenBucket
from pigeon.transport.base import TransportError
from pigeon.transport.public_only import PublicOnlyResolver, is_public_url
from pigeon.transport.relay_client import RecentIds, RelayClient

_LOGGER = logging.getLogger(__name__)

MAX_PENDING: Final = 256
MAX_CLIENTS: Final = 16
CARRIED_IDS: Final = 8_192
PER_MAILBOX_SHARE: Final = 0.25  # of the hourly budget, so one mailbox cannot take it all
MAILBOX_BUCKETS: Final = 1_024
RETRY_FIRST_S: Final = 30.0
RETRY_MAX_S: Final = 900.0
POLL_S: Final = 1.0
CONCURRENT_DEPOSITS: Final = 4
COUNTERS: Final = (
    "offered",  # hinted envelopes the router took on
    "carried",  # deposited at one of the recipient's relays
    "refused_hint",  # the hint does not parse or verify
    "refused_urls",  # no relay of the hint on a public address
    "over_budget",  # the hourly budget, overall or of that mailbox, was spent
    "dropped",  # pushed out of a full queue
    "expired",  # not deposited before the envelope expired
    "deposit_failed",  # one failed attempt at one relay
)


@dataclass(frozen=True, slots=True)
class CarryPolicy:
    """Whether and how much we carry for neighbours (config `[relays]`)."""

    enabled: bool = True
    per_hour: int = 600
    private_addresses: bool = False  # also relays on loopback, LAN and link-local addresses


@dataclass(slots=True)
class _Pending:
    packet: Packet
    hint: MailboxHint
    next_attempt: float
    attempts: int = 0


class Carrier:
    """Deposits neighbours' hinted envelopes; `offer` from the mesh driver, `run` supervised."""

    def __init__(
        self,
        policy: CarryPolicy,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        client_factory: Callable[[str], RelayClient] | None = None,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._rng = rng or random.Random()
        self._make_client = client_factory or self._default_client
        rate = policy.per_hour / 3600
        self._budget = TokenBucket(rate, max(1.0, policy.per_hour / 6))
        self._mailbox_budgets: OrderedDict[bytes, TokenBucket] = OrderedDict()
        self._pending: OrderedDict[bytes, _Pending] = OrderedDict()
        self._handled = RecentIds(CARRIED_IDS)
        self._clients: OrderedDict[str, RelayClient] = OrderedDict()
        self._session: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)

    # -- offers (synchronous, from the router's actions) ----------------------------------------

    def offer(self, packet: Packet) -> None:
        """Take on a neighbour's hinted envelope, or count why not. Never raises on bad input."""
        if not self._policy.enabled or packet.packet_id in self._handled:
            return
        self._handled.add(packet.packet_id)
        self.counters["offered"] += 1
        try:
            hint = MailboxHint.from_bytes(packet.mailbox_hint)
        except CryptoError:
            self.counters["refused_hint"] += 1
            return
        relays = tuple(url for url in hint.relays if self._reachable(url))
        if not relays:
            self.counters["refused_urls"] += 1
            return
        now = self._clock()
        if not self._spend(hint.mailbox_key, now):
            self.counters["over_budget"] += 1
            return
        if len(self._pending) >= MAX_PENDING:
            self._pending.popitem(last=False)  # the oldest has had the most tries
            self.counters["dropped"] += 1
        hint = MailboxHint(hint.mailbox_key, relays, hint.signature)
        self._pending[packet.packet_id] = _Pending(packet, hint, now)
        self._wake.set()

    def _reachable(self, url: str) -> bool:
        return self._policy.private_addresses or is_public_url(url)

    def _spend(self, mailbox_key: bytes, now: float) -> bool:
        bucket = self._mailbox_budgets.pop(mailbox_key, None)
        if bucket is None:
            share = self._policy.per_hour * PER_MAILBOX_SHARE
            bucket = TokenBucket(share / 3600, max(1.0, share / 6))
        self._mailbox_budgets[mailbox_key] = bucket
        if len(self._mailbox_budgets) > MAILBOX_BUCKETS:
            self._mailbox_budgets.popitem(last=False)
        # Check the mailbox's share first so a refused mailbox spends nothing overall.
        return bucket.take(now) and self._budget.take(now)

    @property
    def pending(self) -> int:
        """Envelopes waiting for a deposit."""
        return len(self._pending)

    # -- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Deposit pending envelopes, retrying failures with backoff, until cancelled."""
        slots = asyncio.Semaphore(CONCURRENT_DEPOSITS)
        in_flight: set[bytes] = set()
        try:
            async with asyncio.TaskGroup() as group:
                while True:
                    now = self._clock()
                    for packet_id, item in list(self._pending.items()):
                        if item.packet.expires_at_s <= now:
                            del self._pending[packet_id]
                            self.counters["expired"] += 1
                        elif packet_id not in in_flight and item.next_attempt <= now:
                            in_flight.add(packet_id)
                            group.create_task(self._attempt(item, slots, in_flight))
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(POLL_S):  # wait_for can lose a cancel (3.11)
                            await self._wake.wait()
        finally:
            await self.aclose()

    async def _attempt(self, item: _Pending, slots: asyncio.Semaphore, busy: set[bytes]) -> None:
        packet_id = item.packet.packet_id
        try:
            async with slots:
                stored = await self._deposit(item)
        finally:
            busy.discard(packet_id)
        if stored:
            self._pending.pop(packet_id, None)
            self.counters["carried"] += 1
            _LOGGER.debug("carried a neighbour's envelope to its recipient's relay")
            return
        item.attempts += 1
        delay = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (item.attempts - 1))
        item.next_attempt = self._clock() + delay * self._rng.uniform(0.8, 1.2)

    async def _deposit(self, item: _Pending) -> bool:
        data = encode_packet(item.packet)
        for url in item.hint.relays:
            try:
                await self._client(url).deposit(item.hint.mailbox_key, data)
            except (TransportError, OSError, ValueError) as exc:
                self.counters["deposit_failed"] += 1
                _LOGGER.info("carrying to a relay failed: %s", exc)
                continue
            return True  # one durable copy is enough; the recipient reads one of its relays
        return False

    def _client(self, url: str) -> RelayClient:
        client = self._clients.pop(url, None)
        if client is None:
            client = self._make_client(url)
            if len(self._clients) >= MAX_CLIENTS:
                _, oldest = self._clients.popitem(last=False)
                asyncio.get_running_loop().create_task(oldest.aclose())
        self._clients[url] = client  # most recently used last
        return client

    def _default_client(self, url: str) -> RelayClient:
        if self._session is None:
            resolver = None if self._policy.private_addresses else PublicOnlyResolver()
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver))
        rng = random.Random(self._rng.getrandbits(64))
        return RelayClient(url, session=self._session, rng=rng, connect_attempts=2)

    async def aclose(self) -> None:
        """Close the relay connections (pending envelopes stay for the next `run`)."""
        for client in list(self._clients.values()):
            with contextlib.suppress(TransportError):
                await client.aclose()
        self._clients.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None
