"""The relay's HTTP server: WebSocket endpoints /v1 (ours) and /ws (the Pigeon app's),
/healthz, /metrics, and the purge loop.

`start_relay` opens the store, binds the listener and returns a `RunningRelay`; `aclose` stops
taking connections, tells every client SHUTTING_DOWN and flushes the store. Connections are
counted at accept (`pigeon.relay.gate`). The wall clock and the randomness of challenges are
injected so tests can age envelopes and challenges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import WSCloseCode, web

from pigeon.relay import app_protocol
from pigeon.relay.app_connection import AppConnection, AppSubscription, app_max_age_s
from pigeon.relay.auth import KeyCheckCache
from pigeon.relay.config import (
    APP_WEBSOCKET_PATH,
    WEBSOCKET_PATH,
    RelayConfig,
    check_signed_urls,
    default_public_url,
)
from pigeon.relay.connection import RelayConnection
from pigeon.relay.gate import GatedServer
from pigeon.relay.limits import AdmissionControl, Limits, Quota, Refusal, ip_key
from pigeon.relay.metrics import Gauges, Metrics
from pigeon.relay.protocol import CLOSE_CODE_BASE, Error, ErrorCode, encode, max_frame_bytes
from pigeon.relay.storage import EnvelopeStore, SqliteStore, StoredEnvelope

_LOGGER = logging.getLogger(__name__)

HEARTBEAT_S: Final = 60.0
VALID_KEY_CACHE_SIZE: Final = 16_384
SHUTDOWN_GRACE_S: Final = 2.0  # a client that reads nothing cannot hold up a shutdown


class Relay:
    """State shared by every connection of one relay process."""

    def __init__(
        self,
        store: EnvelopeStore,
        limits: Limits,
        urls: tuple[str, ...],
        *,
        behind_proxy: bool = False,
        app_endpoint: bool = True,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        token_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.store = store
        self.limits = limits
        self.urls = urls
        self.behind_proxy = behind_proxy
        self.app_endpoint = app_endpoint
        self.wall_clock = wall_clock
        self.monotonic = monotonic
        self.token_bytes = token_bytes
        self.admission = AdmissionControl(limits)
        self.server = GatedServer(
            self.route,
            self.admission,
            limits,
            per_ip_at_accept=not behind_proxy,
            monotonic=monotonic,
        )
        self.metrics = Metrics()
        self._readers: dict[bytes, RelayConnection] = {}
        self._app_readers: dict[bytes, set[AppSubscription]] = {}  # the app allows several
        self._connections: dict[RelayConnection | AppConnection, asyncio.Transport | None] = {}
        self.valid_keys = KeyCheckCache(VALID_KEY_CACHE_SIZE)
        store.set_insert_listener(self.deliver)
        store.set_change_listener(self.changed)
        store.set_claim_listener(self.claimed_elsewhere)
        self._replacing: set[asyncio.Task[None]] = set()

    def deliver(self, inserted: list[tuple[bytes, StoredEnvelope]]) -> None:
        """Hand new envelopes to their mailboxes' readers, where one is connected."""
        for mailbox_key, envelope in inserted:
            reader = self._readers.get(mailbox_key)
            if reader is not None:
                reader.offer(envelope)
            for subscription in self._app_readers.get(mailbox_key, ()):
                subscription.offer(envelope)

    def changed(self, mailbox_keys: set[bytes] | None) -> None:
        """Another process stored envelopes for `mailbox_keys` (None: for any): readers page."""
        keys = set(self._readers) | set(self._app_readers) if mailbox_keys is None else mailbox_keys
        for mailbox_key in keys:
            reader = self._readers.get(mailbox_key)
            if reader is not None:
                reader.refresh()
            for subscription in self._app_readers.get(mailbox_key, ()):
                subscription.refresh()

    async def reader_arrived(self, mailbox_key: bytes, reader: RelayConnection) -> None:
        """Make `reader` the mailbox's only reader; an earlier one is told READER_REPLACED."""
        previous = self._readers.get(mailbox_key)
        self._readers[mailbox_key] = reader
        await self.store.claim(mailbox_key)  # a reader on another process is replaced too
        if previous is not None:
            await previous.fail(ErrorCode.READER_REPLACED)

    def claimed_elsewhere(self, mailbox_key: bytes) -> None:
        """A reader of `mailbox_key` authenticated on another process: ours is replaced."""
        reader = self._readers.pop(mailbox_key, None)
        if reader is not None:
            task = asyncio.create_task(reader.fail(ErrorCode.READER_REPLACED))
            self._replacing.add(task)
            task.add_done_callback(self._replacing.discard)

    def reader_gone(self, mailbox_key: bytes, reader: RelayConnection) -> None:
        """Forget `reader` if it is still the mailbox's reader."""
        if self._readers.get(mailbox_key) is reader:
            del self._readers[mailbox_key]

    def app_reader_arrived(self, subscription: AppSubscription) -> None:
        """Add an authenticated app reader of `subscription.mailbox_key`."""
        self._app_readers.setdefault(subscription.mailbox_key, set()).add(subscription)

    def app_reader_gone(self, subscription: AppSubscription) -> None:
        """Forget an app reader."""
        readers = self._app_readers.get(subscription.mailbox_key)
        if readers is not None:
            readers.discard(subscription)
            if not readers:
                del self._app_readers[subscription.mailbox_key]

    async def purge_expired(self) -> int:
        """Delete envelopes older than `max_age_s` and idle per-IP state; returns envelopes."""
        cutoff = int(self.wall_clock() - self.limits.max_age_s)
        purged = await self.store.purge(cutoff)
        app_cutoff = int(self.wall_clock() - app_max_age_s(self))
        if app_cutoff > cutoff:  # the app's 30 days are shorter than our max_age_s
            purged += await self.store.purge(app_cutoff, app_protocol.APP_MAILBOX_PREFIX)
        self.metrics.envelopes_purged_total += purged
        self.admission.forget_idle(self.monotonic())
        return purged

    def gauges(self) -> Gauges:
        """Current values for /metrics."""
        stats = self.store.stats()
        return Gauges(
            connections=self.admission.connections,
            readers=len(self._readers),
            app_readers=sum(len(readers) for readers in self._app_readers.values()),
            stored_envelopes=stats.envelopes,
            stored_bytes=stats.bytes,
            mailboxes=stats.mailboxes,
            queued_writes=self.store.queued_writes(),
            tracked_ips=self.admission.tracked_ips(),
            store_commits=stats.commits,
            live_queued_bytes=sum(r.live.held_bytes for r in self._readers.values())
            + sum(s.live.held_bytes for subs in self._app_readers.values() for s in subs),
        )

    async def route(self, request: web.BaseRequest) -> web.StreamResponse:
        """Serve /v1 and /ws (WebSockets), /healthz and /metrics."""
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405)
        if request.path == WEBSOCKET_PATH:
            return await self.handle_websocket(request)
        if request.path == APP_WEBSOCKET_PATH and self.app_endpoint:
            return await self.handle_websocket(request, app=True)
        if request.path == "/healthz":
            if self.store.healthy():
                return web.Response(text="ok\n")
            return web.Response(status=503, text="store unavailable\n")
        if request.path == "/metrics":
            text = self.metrics.render(self.gauges())
            return web.Response(text=text, content_type="text/plain", charset="utf-8")
        return web.Response(status=404)

    async def handle_websocket(
        self, request: web.BaseRequest, *, app: bool = False
    ) -> web.WebSocketResponse:
        """Admit, then serve one WebSocket connection (`app`: the Pigeon app's protocol)."""
        frame_limit = (app_protocol.max_frame_bytes if app else max_frame_bytes)(
            self.limits.max_envelope_bytes
        )
        ws = web.WebSocketResponse(
            # aiohttp closes (1009) on a message of max_msg_size bytes or more, before reading it.
            max_msg_size=frame_limit + 1,
            heartbeat=HEARTBEAT_S,
            compress=False,
        )
        await ws.prepare(request)
        ip = ip_key(_client_address(request, self.behind_proxy))
        refusal = self.server.upgraded(request.protocol)
        if refusal is None and self.behind_proxy:
            refusal = self.server.admit_forwarded(request.protocol, ip)
        if refusal is not None:
            await (_refuse_app_connection if app else _refuse_connection)(ws, refusal)
            self.metrics.errors_total[refusal.code] += 1
            return ws
        self.metrics.connections_total += 1
        connection: RelayConnection | AppConnection
        if app:
            self.metrics.app_connections_total += 1
            connection = AppConnection(self, ws, ip)
        else:
            connection = RelayConnection(self, ws, ip)
        self._connections[connection] = request.transport
        try:
            await connection.serve()
        finally:
            self._connections.pop(connection, None)
        return ws

    async def shut_down_connections(self) -> None:
        """Tell every connected client SHUTTING_DOWN and close its socket; after a grace, cut
        the sockets of clients that did not take it (one that reads nothing never would)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_GRACE_S):
                await asyncio.gather(
                    *(c.fail(ErrorCode.SHUTTING_DOWN) for c in list(self._connections)),
                    return_exceptions=True,
                )
        for transport in list(self._connections.values()):
            if transport is not None:
                transport.abort()


@dataclass(slots=True)
class RunningRelay:
    """A relay bound to a port; `url` is the first URL readers sign for."""

    relay: Relay
    runner: web.ServerRunner
    purge_task: asyncio.Task[None]
    host: str
    port: int
    closed: bool = False

    @property
    def url(self) -> str:
        """The first accepted read URL (ws://HOST:PORT/v1 unless configured)."""
        return self.relay.urls[0]

    async def aclose(self) -> None:
        """Stop accepting, tell every client SHUTTING_DOWN, flush the store; idempotent."""
        if self.closed:
            return
        self.closed = True
        self.purge_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.purge_task
        await self.relay.shut_down_connections()
        await self.runner.cleanup()
        await self.relay.store.aclose()
        _LOGGER.info("relay stopped")


async def start_relay(
    config: RelayConfig,
    *,
    wall_clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    token_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> RunningRelay:
    """Open the store, bind `config.listen` and start serving.

    Raises RelayConfigError (no URL a client could sign), StorageError, OSError.
    """
    check_signed_urls(config)
    store = await open_store(config)
    relay = Relay(
        store,
        config.limits,
        config.public_urls,
        behind_proxy=config.behind_proxy,
        app_endpoint=config.app_endpoint,
        wall_clock=wall_clock,
        monotonic=monotonic,
        token_bytes=token_bytes,
    )
    runner = web.ServerRunner(relay.server, handle_signals=False)
    try:
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port, backlog=1024)
        await site.start()
    except BaseException:
        await runner.cleanup()
        await store.aclose()
        raise
    host, port = runner.addresses[0][:2]
    if not relay.urls:
        relay.urls = (default_public_url(host, port),)
    purge_task = asyncio.create_task(_purge_loop(relay), name="relay-purge")
    _LOGGER.info("relay listening on %s:%d", host, port)
    return RunningRelay(relay, runner, purge_task, host, port)


async def open_store(config: RelayConfig) -> EnvelopeStore:
    """The configured store: PostgreSQL for a postgresql:// URL, else SQLite in the data
    directory. Raises StorageError."""
    quota = Quota.from_limits(config.limits)
    if config.store:  # only a PostgreSQL relay needs its driver, so it is imported here
        from pigeon.relay.pg_storage import PgStore

        return await PgStore.open(config.store, quota)
    return await SqliteStore.open(config.resolved_data_dir(), quota)


async def _purge_loop(relay: Relay) -> None:
    while True:
        await asyncio.sleep(relay.limits.purge_interval_s)
        try:
            purged = await relay.purge_expired()
        except Exception:  # a failed purge is retried next round; the relay keeps serving
            _LOGGER.exception("purge failed")
            continue
        if purged:
            _LOGGER.info("purged %d expired envelopes", purged)


async def _refuse_connection(ws: web.WebSocketResponse, refusal: Refusal) -> None:
    with contextlib.suppress(ConnectionError):
        await ws.send_bytes(encode(Error(0, refusal.code, refusal.retry_after_ms())))
        await ws.close(code=CLOSE_CODE_BASE + refusal.code)


async def _refuse_app_connection(ws: web.WebSocketResponse, refusal: Refusal) -> None:
    text = app_protocol.encode(app_protocol.AppError(app_protocol.error_text(refusal.code)))
    with contextlib.suppress(ConnectionError):
        await ws.send_str(text)
        await ws.close(code=WSCloseCode.TRY_AGAIN_LATER)


def _client_address(request: web.BaseRequest, behind_proxy: bool) -> str:
    if behind_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "")
        last_hop = forwarded.rsplit(",", 1)[-1].strip()
        if last_hop:
            return last_hop
    return request.remote or "unknown"
