"""NIP-01 client over aiohttp WebSockets: one `NostrRelay` per relay URL, a `NostrPool` over
them. Each relay reconnects with jittered exponential backoff and restores its subscriptions on
every connection; `publish` resolves with the relays' OK, never with "written to a socket".

The codec is `pigeon.nostr.messages` (sans-IO); this module only moves its text frames. Logs
name relays by URL and events by nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from typing import Any, Final

import aiohttp

from pigeon.nostr.errors import MalformedMessage
from pigeon.nostr.event import Event
from pigeon.nostr.messages import (
    Closed,
    Notice,
    Ok,
    RelayEvent,
    decode,
    encode_close,
    encode_event,
    encode_req,
)

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT_S: Final = 10.0
HEARTBEAT_S: Final = 30.0
OK_TIMEOUT_S: Final = 10.0
BACKOFF_MIN_S: Final = 0.5
BACKOFF_MAX_S: Final = 60.0

EventHandler = Callable[[str, Event], None]
StateHandler = Callable[[], None]


class NostrRelay:
    """One relay connection: subscriptions kept across reconnects, publishes answered by OK."""

    def __init__(
        self,
        url: str,
        on_event: EventHandler,
        on_state: StateHandler,
        *,
        backoff_min_s: float = BACKOFF_MIN_S,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self._on_event = on_event
        self._on_state = on_state
        self._backoff_min_s = backoff_min_s
        self._rng = rng if rng is not None else random.Random()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._subscriptions: dict[str, dict[str, Any]] = {}
        self._waiting: dict[str, list[asyncio.Future[bool | None]]] = {}
        self.connects = 0

    @property
    def connected(self) -> bool:
        """Whether a WebSocket to the relay is open now."""
        return self._ws is not None and not self._ws.closed

    async def publish(self, event: Event, timeout_s: float = OK_TIMEOUT_S) -> bool | None:
        """Send `event`: the relay's verdict, or None (not connected, or no OK in time)."""
        ws = self._ws
        if ws is None or ws.closed:
            return None
        future: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(event.id, []).append(future)
        try:
            await ws.send_str(encode_event(event))
            async with asyncio.timeout(timeout_s):  # not wait_for: see GatewayService.run
                return await asyncio.shield(future)
        except (TimeoutError, ConnectionError, aiohttp.ClientError):
            return None
        finally:
            waiting = self._waiting.get(event.id, [])
            if future in waiting:
                waiting.remove(future)
            if not waiting:
                self._waiting.pop(event.id, None)

    async def subscribe(self, subscription: str, filter_: dict[str, Any]) -> None:
        """Open (or replace) a subscription, now if connected and on every reconnect."""
        self._subscriptions[subscription] = filter_
        await self._send(encode_req(subscription, filter_))

    async def unsubscribe(self, subscription: str) -> None:
        """Close a subscription."""
        if self._subscriptions.pop(subscription, None) is not None:
            await self._send(encode_close(subscription))

    async def _send(self, text: str) -> None:
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                await ws.send_str(text)

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Stay connected until cancelled, reconnecting after each loss."""
        delay = self._backoff_min_s
        while True:
            try:
                async with session.ws_connect(
                    self.url,
                    heartbeat=HEARTBEAT_S,
                    timeout=aiohttp.ClientWSTimeout(ws_close=CONNECT_TIMEOUT_S),
                ) as ws:
                    delay = self._backoff_min_s
                    await self._serve(ws)
            except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                _LOGGER.debug("nostr relay %s unreachable: %s", self.url, type(exc).__name__)
            await asyncio.sleep(delay * (0.5 + self._rng.random()))
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self.connects += 1
        _LOGGER.info("nostr relay %s connected", self.url)
        try:
            for subscription, filter_ in list(self._subscriptions.items()):
                await ws.send_str(encode_req(subscription, filter_))
            self._on_state()
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    self._receive(message.data)
                elif message.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                    break
        finally:
            self._ws = None
            for waiting in self._waiting.values():
                for future in waiting:
                    if not future.done():
                        future.set_result(None)  # the connection went before the OK
            _LOGGER.info("nostr relay %s disconnected", self.url)
            self._on_state()

    def _receive(self, text: str) -> None:
        try:
            message = decode(text)
        except MalformedMessage as exc:
            _LOGGER.debug("nostr relay %s sent a malformed message: %s", self.url, exc)
            return
        if type(message) is RelayEvent:
            if message.subscription in self._subscriptions:
                self._on_event(message.subscription, message.event)
        elif type(message) is Ok:
            for future in self._waiting.get(message.event_id, []):
                if not future.done():
                    future.set_result(message.accepted)
        elif type(message) is Notice:
            _LOGGER.debug("nostr relay %s notice", self.url)
        elif type(message) is Closed:
            _LOGGER.debug("nostr relay %s closed a subscription", self.url)


class NostrPool:
    """Several relays as one: publish to all connected, subscribe on all."""

    def __init__(
        self,
        urls: Sequence[str],
        on_event: EventHandler,
        on_state: StateHandler,
        *,
        backoff_min_s: float = BACKOFF_MIN_S,
    ) -> None:
        self.relays = [
            NostrRelay(url, on_event, on_state, backoff_min_s=backoff_min_s) for url in urls
        ]

    @property
    def connected(self) -> bool:
        """Whether any relay is connected: the node is uplinked to Nostr."""
        return any(relay.connected for relay in self.relays)

    async def publish(self, event: Event) -> bool | None:
        """True once any relay accepted `event`; False when every answer was a refusal; None
        when no relay answered (none connected, or all silent)."""
        verdicts = await asyncio.gather(*(relay.publish(event) for relay in self.relays))
        if any(v is True for v in verdicts):
            return True
        if any(v is False for v in verdicts):
            return False
        return None

    async def subscribe(self, subscription: str, filter_: dict[str, Any]) -> None:
        """Open (or replace) a subscription on every relay."""
        for relay in self.relays:
            await relay.subscribe(subscription, filter_)

    async def unsubscribe(self, subscription: str) -> None:
        """Close a subscription on every relay."""
        for relay in self.relays:
            await relay.unsubscribe(subscription)

    async def run(self) -> None:
        """Keep every relay connected until cancelled."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session, asyncio.TaskGroup() as group:
            for relay in self.relays:
                group.create_task(relay.run(session))
