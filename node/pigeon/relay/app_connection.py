"""One Pigeon app connection on `/ws`: the app's JSON frames over our store, limits and metrics.

Replies go out in the order their requests came in (as the app's relay answers them), yet
publishes are pipelined: each frame takes a reply slot, publishes fill theirs when their
transaction commits, and one writer task sends slots in order. Envelopes of a subscription
stream beside the replies, as with our protocol: stored ones first, then live ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final

from aiohttp import WSCloseCode, WSMsgType, web

from pigeon.crypto.errors import InvalidSignature, MalformedInput, WeakKey
from pigeon.crypto.signing import verify
from pigeon.relay import app_protocol as app
from pigeon.relay.limits import Quota, TokenBucket
from pigeon.relay.live import LiveQueue
from pigeon.relay.protocol import ErrorCode, envelope_id_of
from pigeon.relay.storage import StorageError, StoredEnvelope

if TYPE_CHECKING:
    from pigeon.relay.server import Relay

_LOGGER = logging.getLogger(__name__)

PENDING_PAGE: Final = 64
LIVE_QUEUE_ENVELOPES: Final = 64
LIVE_QUEUE_BYTES: Final = 1024 * 1024
# Replies not yet written; past this the connection stops reading until the writer catches up.
MAX_PENDING_REPLIES: Final = 256
# Challenges a connection may ask for: the app subscribes once per connection, and each one
# lets the client make the relay check a signature, so they are scarcer than other frames.
SUBSCRIBE_BURST: Final = 8
SUBSCRIBES_PER_S: Final = 0.1

_Reply = tuple[list[app.AppServerFrame], Callable[[], None] | None]


class AppSubscription:
    """An authenticated reader of one app mailbox: its live queue and streaming task."""

    def __init__(self, mailbox_key: bytes) -> None:
        self.mailbox_key = mailbox_key
        self.live = LiveQueue(LIVE_QUEUE_ENVELOPES, LIVE_QUEUE_BYTES)
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def offer(self, envelope: StoredEnvelope) -> None:
        """A new envelope for this mailbox was written (its commit may still run)."""
        self.live.offer(envelope)
        self.wakeup.set()

    def refresh(self) -> None:
        """Another relay process stored envelopes for this mailbox: page them from the store."""
        self.live.mark_stale()
        self.wakeup.set()


def app_quota(relay: Relay) -> Quota:
    """Our quotas with the app relay's 1,000 envelopes a mailbox where that is stricter."""
    limits = relay.limits
    count = min(app.APP_MAILBOX_MAX_ENVELOPES, limits.mailbox_max_envelopes)
    return Quota(count, limits.mailbox_max_bytes, limits.relay_max_bytes)


def app_max_age_s(relay: Relay) -> int:
    """Age after which an app envelope is never served: 30 days or ours, the shorter."""
    return min(app.APP_MAX_AGE_S, relay.limits.max_age_s)


class AppConnection:
    """The relay's side of one `/ws` WebSocket."""

    def __init__(self, relay: Relay, ws: web.WebSocketResponse, ip: str) -> None:
        self._relay = relay
        self._ws = ws
        self._ip = ip
        limits = relay.limits
        self._frames = TokenBucket(
            limits.connection_frames_per_s, limits.connection_frame_burst, relay.monotonic()
        )
        self._subscribes = TokenBucket(SUBSCRIBES_PER_S, SUBSCRIBE_BURST, relay.monotonic())
        self._quota = app_quota(relay)
        self._replies: asyncio.Queue[asyncio.Future[_Reply]] = asyncio.Queue(MAX_PENDING_REPLIES)
        self._pending: tuple[bytes, bytes, float] | None = None  # key, nonce, issued at (wall)
        self._subscription: AppSubscription | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def serve(self) -> None:
        """Handle text frames until the connection ends (binary frames are ignored, as the
        app's relay ignores them)."""
        writer = asyncio.create_task(self._write_replies())
        try:
            async for message in self._ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_text(message.data)
                if self._closing:
                    break
        finally:
            self._closing = True
            writer.cancel()
            # Publishes and acks already read run to their end: one cancelled mid-commit could
            # be done in the store and unknown here (its metric missed, its reply never sent).
            self._unsubscribe()

    async def fail(self, code: ErrorCode) -> None:
        """Send `error` for `code` and close (1001 for a shutdown, 1011 otherwise)."""
        self._closing = True
        try:
            await self._send(app.AppError(app.error_text(code)))
        except ConnectionError:
            return
        close = WSCloseCode.GOING_AWAY if code is ErrorCode.SHUTTING_DOWN else 1011
        await self._ws.close(code=close)

    # --- frames in -----------------------------------------------------------------------

    async def _on_text(self, text: str) -> None:
        if self._frames.take(self._relay.monotonic()):
            await self._reply(app.AppError(app.RATE_LIMITED))
            return
        try:
            frame = app.decode_client_frame(text)
        except app.AppFrameError:
            await self._reply(app.AppError(app.MALFORMED))
            return
        match frame:
            case app.Publish():
                slot = await self._slot()
                self._spawn(self._publish(frame, slot))
            case app.Subscribe():
                await self._reply(self._on_subscribe(frame))
            case app.AuthAnswer():
                await self._on_auth(frame)
            case app.AckId():
                if self._subscription is None:
                    await self._reply(app.AppError(app.NOT_AUTHENTICATED))
                else:
                    slot = await self._slot()
                    self._spawn(self._ack(self._subscription.mailbox_key, frame, slot))
            case app.RegisterPush():
                # No APNs gateway here, as on every self-hosted app relay (mailbox.rs:107-111).
                authed = self._subscription is not None
                await self._reply(
                    app.AppError(app.PUSH_NOT_SUPPORTED if authed else app.NOT_AUTHENTICATED)
                )
            case app.UnregisterPush():
                if self._subscription is None:
                    await self._reply(app.AppError(app.NOT_AUTHENTICATED))
                else:
                    await self._reply(app.OkDetail(app.PUSH_UNREGISTERED))

    def _on_subscribe(self, frame: app.Subscribe) -> app.AppServerFrame:
        key = app.parse_key_hex(frame.mailbox)
        if key is None:
            return app.AppError(app.INVALID_MAILBOX)
        if self._subscribes.take(self._relay.monotonic()):
            return app.AppError(app.RATE_LIMITED)
        nonce = self._relay.token_bytes(app.NONCE_LEN)
        self._pending = (key, nonce, self._relay.wall_clock())
        return app.ChallengeNonce(app.b64encode(nonce))

    async def _on_auth(self, frame: app.AuthAnswer) -> None:
        pending, self._pending = self._pending, None  # a challenge answers one auth at most
        if pending is None:
            await self._reply(app.AppError(app.SUBSCRIBE_FIRST))
            return
        key, nonce, issued_at_s = pending
        if self._relay.wall_clock() - issued_at_s > self._relay.limits.challenge_ttl_s:
            self._relay.metrics.app_auth_failures_total += 1
            await self._reply(app.AppError(app.CHALLENGE_EXPIRED))
            return
        if not _signature_valid(key, nonce, frame.signature):
            self._relay.metrics.app_auth_failures_total += 1
            await self._reply(app.AppError(app.AUTH_FAILED))
            return
        subscription = self._subscribe(app.app_mailbox(key))
        self._relay.metrics.app_reads_authenticated_total += 1
        # The backlog follows `ok`, so its stream starts once `ok` is written.
        await self._reply(app.OkDetail(app.AUTHENTICATED), lambda: self._start(subscription))

    def _subscribe(self, mailbox_key: bytes) -> AppSubscription:
        """Replace this connection's subscription (a re-auth re-sends the whole backlog)."""
        self._unsubscribe()
        subscription = AppSubscription(mailbox_key)
        self._subscription = subscription
        self._relay.app_reader_arrived(subscription)
        return subscription

    def _unsubscribe(self) -> None:
        if self._subscription is not None:
            if self._subscription.task is not None:
                self._subscription.task.cancel()
            self._relay.app_reader_gone(self._subscription)
            self._subscription = None

    def _start(self, subscription: AppSubscription) -> None:
        if subscription is self._subscription and not self._closing:
            subscription.task = asyncio.create_task(self._stream(subscription))

    # --- publish and ack -----------------------------------------------------------------

    async def _publish(self, frame: app.Publish, slot: asyncio.Future[_Reply]) -> None:
        answer: app.AppServerFrame = app.AppError(app.STORAGE_FAILED)
        try:
            answer = await self._store(frame)
        finally:  # the writer waits for this slot, whatever happened (unless it is gone)
            if not slot.done():
                slot.set_result(([answer], None))

    async def _store(self, frame: app.Publish) -> app.AppServerFrame:
        key = app.parse_key_hex(frame.recipient)
        if key is None or not self._relay.valid_keys.is_valid(key):
            return app.AppError(app.INVALID_RECIPIENT)
        ciphertext = _ciphertext(frame.ciphertext, self._relay.limits.max_envelope_bytes)
        if ciphertext is None:
            return app.AppError(app.INVALID_CIPHERTEXT)
        limits = self._relay.limits
        if self._relay.store.queued_writes() >= limits.max_queued_writes:
            return app.AppError(app.RELAY_BUSY)
        refusal = self._relay.admission.deposit(self._ip, len(ciphertext), self._relay.monotonic())
        if refusal is not None:
            return app.AppError(app.error_text(refusal.code))
        envelope_id = envelope_id_of(ciphertext)
        try:
            result = await self._relay.store.deposit(
                app.app_mailbox(key),
                envelope_id,
                ciphertext,
                int(self._relay.wall_clock()),
                self._quota,
            )
        except StorageError:
            return app.AppError(app.STORAGE_FAILED)
        if result.refusal is not None:
            return app.AppError(app.error_text(result.refusal))
        if result.stored is None:
            self._relay.metrics.app_publishes_duplicate_total += 1
        else:
            self._relay.metrics.app_publishes_stored_total += 1
        return app.Published(app.envelope_id_text(envelope_id))

    async def _ack(
        self, mailbox_key: bytes, frame: app.AckId, slot: asyncio.Future[_Reply]
    ) -> None:
        # The app's relay answers an ack with nothing (connection.rs:121-129); unknown ids are a
        # no-op. Only a failed deletion is reported.
        frames: list[app.AppServerFrame] = []
        envelope_id = app.parse_envelope_id(frame.id)
        try:
            if envelope_id is not None:
                deleted = await self._relay.store.delete(mailbox_key, (envelope_id,))
                self._relay.metrics.app_envelopes_deleted_total += deleted
        except StorageError:
            frames = [app.AppError(app.STORAGE_FAILED)]
        finally:
            if not slot.done():  # the writer is gone once the connection ended
                slot.set_result((frames, None))

    # --- reading a mailbox ---------------------------------------------------------------

    async def _stream(self, subscription: AppSubscription) -> None:
        store = self._relay.store
        await store.watch(subscription.mailbox_key)  # before the first page: nothing is missed
        try:
            after = await self._page(subscription.mailbox_key, 0)
            while True:
                await subscription.wakeup.wait()
                subscription.wakeup.clear()
                envelopes, dropped = subscription.live.take()
                if dropped:  # the dropped envelopes, and any queued after them, are in the store
                    self._relay.metrics.live_queue_overflows_total += 1
                if subscription.live.take_stale() or dropped:
                    after = await self._page(subscription.mailbox_key, after)
                for envelope in envelopes:
                    if envelope.seq > after:  # paged ones were committed before their page's query
                        await self._send_envelope(envelope)
                        after = envelope.seq
        except StorageError:
            await self.fail(ErrorCode.STORAGE_FAILED)
        except ConnectionError:
            return
        finally:
            await store.unwatch(subscription.mailbox_key)

    async def _page(self, mailbox_key: bytes, after: int) -> int:
        while True:
            oldest_s = int(self._relay.wall_clock() - app_max_age_s(self._relay))
            page = await self._relay.store.pending(mailbox_key, after, PENDING_PAGE, oldest_s)
            for envelope in page:
                await self._send_envelope(envelope)
                after = envelope.seq
            if len(page) < PENDING_PAGE:
                return after

    async def _send_envelope(self, envelope: StoredEnvelope) -> None:
        await self._send(
            app.AppEnvelope(
                app.envelope_id_text(envelope.envelope_id),
                app.b64encode(envelope.ciphertext),
                envelope.deposited_s,
            )
        )
        self._relay.metrics.app_envelopes_delivered_total += 1

    # --- frames out ----------------------------------------------------------------------

    async def _slot(self) -> asyncio.Future[_Reply]:
        slot: asyncio.Future[_Reply] = asyncio.get_running_loop().create_future()
        await self._replies.put(slot)  # waits (and so stops reading) while too many are pending
        return slot

    async def _reply(
        self, frame: app.AppServerFrame, then: Callable[[], None] | None = None
    ) -> None:
        slot = await self._slot()
        slot.set_result(([frame], then))

    async def _write_replies(self) -> None:
        try:
            while True:
                slot = await self._replies.get()
                frames, then = await slot
                for frame in frames:
                    await self._send(frame)
                if then is not None:
                    then()
        except ConnectionError:
            # Keep taking slots, so a reader waiting for room sees `_closing` and stops.
            self._closing = True
            while True:
                await self._replies.get()

    async def _send(self, frame: app.AppServerFrame) -> None:
        if self._ws.closed:
            raise ConnectionResetError("the app connection is closed")
        await self._ws.send_str(app.encode(frame))
        if isinstance(frame, app.AppError):
            self._relay.metrics.app_errors_total[frame.message] += 1

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and isinstance(task.exception(), Exception):
            _LOGGER.error("app relay connection task failed: %r", task.exception())


def _ciphertext(text: str, max_bytes: int) -> bytes | None:
    """The publish's bytes if its base64 is non-empty, canonical and within both caps."""
    if not text or len(text) > app.MAX_CIPHERTEXT_CHARS:
        return None
    data = app.strict_b64decode(text)
    if not data or len(data) > max_bytes:
        return None
    return data


def _signature_valid(key: bytes, nonce: bytes, signature_text: str) -> bool:
    """Strict Ed25519 (libsodium) over the raw nonce, no domain, as the app signs it."""
    signature = app.strict_b64decode(signature_text)
    if signature is None or len(signature) != app.SIGNATURE_LEN:
        return False
    try:
        verify(key, nonce, signature)
    except (InvalidSignature, MalformedInput, WeakKey):
        return False
    return True
