"""The uplink bridge: the owner's internet mailbox relays, read and written over `RelayClient`.

Reading: one connection per owner relay (from config and from the owner's own card) opens the
owner's mailbox with a signature by the owner's identity key, and hands each envelope to
`store` with the relay's URL, its source (which returns only once the envelope is durable: in
the vault, or in the spool while the vault is locked); `RelayClient` acknowledges only after
that, and skips ids it handled. Anyone may deposit in the owner's mailbox, so each relay's
envelopes are paced by the same per-source budgets the router gives a radio neighbour
(`LimiterPolicy` packets and bytes): over budget, reading waits (the mailbox keeps the rest).
Depositing: `offer(packet)` looks up the recipient (`targets`: a verified contact whose signed
card carries relay hints) and deposits the encoded packet in that contact's mailbox at each of
its relays, once per envelope id (again at the messenger's next retry if no relay stored it);
the first STORED answer marks the message relayed.
Reconnects use the client's jittered backoff; the per-relay state feeds the status page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from pigeon.mesh.packet import Packet, encode_packet
from pigeon.mesh.ratelimit import LimiterPolicy, TokenBucket
from pigeon.transport.base import TransportError
from pigeon.transport.relay_client import (
    RecentIds,
    RelayAuthRefused,
    RelayClient,
    RelayClosed,
    RelayRefused,
)
from pigeon.ui.web.ports import RelayState, RelayStatus

_LOGGER = logging.getLogger(__name__)

OWNER_POLL_S: Final = 2.0
STATUS_POLL_S: Final = 1.0
DEPOSITED_IDS: Final = 8_192
MAX_CLIENTS: Final = 32


@dataclass(frozen=True, slots=True)
class MailboxOwner:
    """The owner's mailbox key (Ed25519 public key) and a signer for relay challenges."""

    public_key: bytes
    sign: Callable[[bytes], bytes] = field(repr=False)
    relays: tuple[str, ...] = ()  # from the owner's own card


@dataclass(frozen=True, slots=True)
class DepositTarget:
    """Where an envelope goes: the recipient's mailbox key and its relays."""

    mailbox_key: bytes
    relays: tuple[str, ...]


StoreEnvelope = Callable[[str, bytes, bytes], Awaitable[None]]  # relay URL, id, envelope


class RelayPace:
    """The per-source budgets of one relay's mailbox reads: packets and bytes, as a neighbour."""

    def __init__(self, policy: LimiterPolicy, clock: Callable[[], float]) -> None:
        self._packets = TokenBucket(policy.packets_per_s, policy.packets_burst)
        self._bytes = TokenBucket(policy.bytes_per_s, policy.bytes_burst)
        self._clock = clock

    async def spend(self, size: int) -> None:
        """Wait until one envelope of `size` bytes fits the budget, then spend it."""
        size = min(size, int(self._bytes.burst))  # a larger one would never fit
        for bucket, amount in ((self._packets, 1.0), (self._bytes, float(size))):
            # A token bucket refills at a known rate: sleep until this amount could be there.
            while True:
                if bucket.take(self._clock(), amount):
                    break
                await asyncio.sleep(amount / bucket.rate_per_s)


class RelayBridge:
    """Keeps the owner's relays read and deposits outgoing envelopes at contacts' relays."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        owner: Callable[[], MailboxOwner | None],
        store: StoreEnvelope,
        targets: Callable[[Packet], DepositTarget | None],
        on_relayed: Callable[[list[bytes]], None],
        on_status: Callable[[tuple[RelayStatus, ...]], None],
        rng: random.Random | None = None,
        client_factory: Callable[[str], RelayClient] | None = None,
        limits: LimiterPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._urls = tuple(dict.fromkeys(urls))
        self._owner = owner
        self._store = store
        self._targets = targets
        self._on_relayed = on_relayed
        self._on_status = on_status
        self._rng = rng or random.Random()
        self._make_client = client_factory or self._default_client
        self._limits = limits or LimiterPolicy()
        self._clock = clock
        self._clients: dict[str, RelayClient] = {}
        self._reading: dict[str, str] = {}  # url -> detail while a read loop runs
        self._failed: dict[str, str] = {}
        self._deposited = RecentIds(DEPOSITED_IDS)
        self._deposits: set[asyncio.Task[None]] = set()
        self.counters: dict[str, int] = {"deposited": 0, "deposit_failed": 0}

    def _default_client(self, url: str) -> RelayClient:
        return RelayClient(url, rng=random.Random(self._rng.getrandbits(64)))

    # -- running --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Read the owner's mailbox at every owner relay until cancelled; closes the clients."""
        try:
            owner = await self._wait_for_owner()
            urls = tuple(dict.fromkeys(self._urls + owner.relays))
            async with asyncio.TaskGroup() as group:
                group.create_task(self._publish_status_forever(urls))
                for url in urls:
                    group.create_task(self._read(url, owner))
        finally:
            for task in list(self._deposits):
                task.cancel()
            for client in self._clients.values():
                await client.aclose()
            self._clients.clear()
            self._on_status(())

    async def _wait_for_owner(self) -> MailboxOwner:
        while True:
            owner = self._owner()
            if owner is not None:
                return owner
            await asyncio.sleep(OWNER_POLL_S)  # the vault is locked: nobody can sign for it

    async def _read(self, url: str, owner: MailboxOwner) -> None:
        client = self._client(url)
        self._reading[url] = "reading"
        pace = RelayPace(self._limits, self._clock)

        async def store(envelope_id: bytes, data: bytes) -> None:
            await pace.spend(len(data))
            await self._store(url, envelope_id, data)

        try:
            await client.read_forever(owner.public_key, owner.sign, store)
        except RelayAuthRefused as exc:
            self._failed[url] = f"mailbox refused: {exc.code.name}"
            _LOGGER.warning("relay %s refused to open the mailbox (%s)", url, exc.code.name)
        except RelayRefused as exc:
            self._failed[url] = f"refused: {exc.code.name}"
            _LOGGER.warning("relay %s refused the read (%s)", url, exc.code.name)
        finally:
            self._reading.pop(url, None)

    async def _publish_status_forever(self, urls: tuple[str, ...]) -> None:
        while True:
            self._on_status(self.status(urls))
            await asyncio.sleep(STATUS_POLL_S)

    def status(self, urls: Sequence[str]) -> tuple[RelayStatus, ...]:
        """The state of each owner relay now."""
        result = []
        for url in urls:
            client = self._clients.get(url)
            if url in self._failed:
                result.append(RelayStatus(url, RelayState.FAILED, self._failed[url]))
            elif client is not None and client.connected:
                detail = "" if client.caught_up else "reading stored envelopes"
                result.append(RelayStatus(url, RelayState.CONNECTED, detail))
            elif url in self._reading:
                result.append(RelayStatus(url, RelayState.CONNECTING))
            else:
                result.append(RelayStatus(url, RelayState.DISCONNECTED))
        return tuple(result)

    # -- depositing -----------------------------------------------------------------------------

    def offer(self, packet: Packet) -> None:
        """Deposit `packet` at its recipient's relays if it has any (once per envelope id)."""
        if packet.packet_id in self._deposited:
            return
        target = self._targets(packet)
        if target is None or not target.relays:
            return
        self._deposited.add(packet.packet_id)
        task = asyncio.get_running_loop().create_task(self._deposit(packet, target))
        self._deposits.add(task)
        task.add_done_callback(self._deposits.discard)

    async def _deposit(self, packet: Packet, target: DepositTarget) -> None:
        data = encode_packet(packet)
        stored = False
        for url in target.relays[:MAX_CLIENTS]:
            try:
                await self._client(url).deposit(target.mailbox_key, data)
            except (TransportError, ValueError) as exc:
                self.counters["deposit_failed"] += 1
                _LOGGER.info("deposit at a contact's relay failed: %s", exc)
                continue
            stored = True
        if stored:
            self.counters["deposited"] += 1
            self._on_relayed([packet.packet_id])
        else:
            self._deposited.discard(packet.packet_id)  # the messenger's next retry tries again

    def _client(self, url: str) -> RelayClient:
        client = self._clients.get(url)
        if client is None:
            if len(self._clients) >= MAX_CLIENTS:
                raise RelayClosed("too many relay connections")
            client = self._make_client(url)
            self._clients[url] = client
        return client

    async def aclose(self) -> None:
        """Close every client now (also done when `run` ends)."""
        for client in list(self._clients.values()):
            with contextlib.suppress(TransportError):
                await client.aclose()
        self._clients.clear()
