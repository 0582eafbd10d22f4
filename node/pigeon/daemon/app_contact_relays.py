"""The owner's app contacts on the internet: publish to the relays their cards signed, and read
the owner's app mailbox on the configured app relays (`[appmesh] relays`).

Publishing: each envelope the messenger made for an app contact, as the packet it sent on
the app mesh, goes to every relay URL the contact's card signed (bounded queue, oldest
dropped first, one publisher per relay, a failed publish retried once after a pause and then
left to the app's own resend logic and ours). Reading: one `AppMailboxReader` per configured
relay while the vault is open; an envelope is acknowledged only once the messenger stored
what it opened (or knew it for junk), so a locked vault or a refused write leaves it on the
relay. Connections go through `PublicOnlyResolver` unless `private_addresses` is set.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, deque
from typing import Final

import aiohttp

from pigeon.daemon.app_endpoint import AppEndpoint
from pigeon.messenger.api import AppOutgoing, Messenger
from pigeon.transport.app_relay_client import AppRelayBroken, AppRelayPublisher, AppRelayRefused
from pigeon.transport.app_relay_mailbox import AppMailboxReader
from pigeon.transport.base import Closed, TransportError
from pigeon.transport.public_only import PublicOnlyResolver

_LOGGER = logging.getLogger(__name__)

MAX_QUEUED: Final = 256
RETRY_FIRST_S: Final = 2.0
RETRY_MAX_S: Final = 300.0
LOCKED_POLL_S: Final = 1.0


class AppContactRelays:
    """Publisher and mailbox readers for the owner's app contacts (see the module docstring)."""

    def __init__(
        self,
        messenger: Messenger,
        endpoint: AppEndpoint,
        mailbox_relays: tuple[str, ...],
        *,
        private_addresses: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self._messenger = messenger
        self._endpoint = endpoint
        self._mailbox_relays = mailbox_relays
        self._private = private_addresses
        self._rng = rng or random.Random()
        self._queue: deque[tuple[str, bytes, bytes]] = deque(maxlen=MAX_QUEUED)
        self._wake = asyncio.Event()
        self.counters: Counter[str] = Counter()

    def publish(self, item: AppOutgoing, packet: bytes) -> None:
        """Queue `packet` for each relay the contact's card signed (the `AppEndpoint` hook)."""
        for url in item.relay_urls:
            if len(self._queue) == self._queue.maxlen:
                self.counters["dropped"] += 1
            self._queue.append((url, item.recipient, packet))
        self._wake.set()

    async def run(self) -> None:
        """Publish and read until cancelled."""
        resolver = None if self._private else PublicOnlyResolver()
        connector = aiohttp.TCPConnector(resolver=resolver)
        async with aiohttp.ClientSession(connector=connector) as session:
            publishers: dict[str, AppRelayPublisher] = {}
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._publish_loop(session, publishers))
                    for url in self._mailbox_relays:
                        group.create_task(self._read_loop(session, url))
            finally:
                for publisher in publishers.values():
                    await publisher.aclose()

    async def _publish_loop(
        self, session: aiohttp.ClientSession, publishers: dict[str, AppRelayPublisher]
    ) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            url, recipient, packet = self._queue.popleft()
            publisher = publishers.get(url)
            if publisher is None:
                publisher = publishers[url] = AppRelayPublisher(url, session)
            for attempt in range(2):
                try:
                    await publisher.publish(recipient, packet)
                except (TransportError, Closed) as exc:
                    self.counters["publish_failed"] += 1
                    _LOGGER.info("an app envelope was not published: %s", exc)
                    if attempt == 0:
                        await asyncio.sleep(RETRY_FIRST_S)
                    continue
                self.counters["published"] += 1
                break

    async def _read_loop(self, session: aiohttp.ClientSession, url: str) -> None:
        backoff = RETRY_FIRST_S
        while True:
            if self._messenger.is_locked:
                await asyncio.sleep(LOCKED_POLL_S)
                continue
            reader = AppMailboxReader(url, session, self._messenger.own_identity_key())
            try:
                await reader.run(self._messenger.sign_app_relay_nonce, self._store)
            except (AppRelayBroken, AppRelayRefused) as exc:
                self.counters["read_failed"] += 1
                _LOGGER.info("the owner's app mailbox was not read: %s", exc)
            await asyncio.sleep(backoff * (0.5 + self._rng.random()))
            backoff = min(backoff * 2, RETRY_MAX_S)

    async def _store(self, packet: bytes) -> None:
        if not self._endpoint.deliver(packet):
            raise AppRelayBroken("the envelope was not stored: left on the relay")
        self.counters["read"] += 1
