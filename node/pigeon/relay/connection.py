"""One client's WebSocket connection to the relay: frames in, deposits, reads and acks out.

Deposits and acks each run in their own task so a client can pipeline them; every answer
carries the request id. A reader's envelopes go out in mailbox order: first what is stored
(paged from the store), then BACKLOG_SENT, then what arrives live, skipping live envelopes
already paged. What arrives live waits in a bounded `LiveQueue`; when a slow reader lets it
overflow, the reader pages the dropped envelopes from the store instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final

from aiohttp import WSCloseCode, WSMsgType, web

from pigeon.relay.auth import IssuedChallenge, check_auth
from pigeon.relay.limits import Refusal, TokenBucket
from pigeon.relay.live import LiveQueue
from pigeon.relay.protocol import (
    CHALLENGE_LEN,
    CLOSE_CODE_BASE,
    Ack,
    Acked,
    Auth,
    AuthOk,
    BacklogSent,
    Challenge,
    Deposit,
    Envelope,
    Error,
    ErrorCode,
    FrameError,
    ServerFrame,
    Stored,
    UnknownFrameType,
    UnsupportedVersion,
    decode_client_frame,
    encode,
    envelope_id_of,
    max_frame_bytes,
)
from pigeon.relay.storage import StorageError, StoredEnvelope

if TYPE_CHECKING:
    from pigeon.relay.server import Relay

_LOGGER = logging.getLogger(__name__)

PENDING_PAGE: Final = 64
LIVE_QUEUE_ENVELOPES: Final = 64
LIVE_QUEUE_BYTES: Final = 1024 * 1024


class ConnectionClosing(Exception):
    """The connection is ending; the frame loop stops."""


class RelayConnection:
    """The relay's side of one WebSocket."""

    def __init__(self, relay: Relay, ws: web.WebSocketResponse, ip: str) -> None:
        self._relay = relay
        self._ws = ws
        self._ip = ip
        now = relay.monotonic()
        limits = relay.limits
        self._frames = TokenBucket(
            limits.connection_frames_per_s, limits.connection_frame_burst, now
        )
        self._issued = IssuedChallenge(relay.token_bytes(CHALLENGE_LEN), relay.wall_clock())
        self._max_frame_bytes = max_frame_bytes(limits.max_envelope_bytes)
        self._auth_tried = False
        self.mailbox_key: bytes | None = None
        self.live = LiveQueue(LIVE_QUEUE_ENVELOPES, LIVE_QUEUE_BYTES)
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    async def serve(self) -> None:
        """Send the challenge, then handle frames until the connection ends."""
        try:
            await self.send(Challenge(self._issued.challenge))
            async for message in self._ws:
                if message.type is not WSMsgType.BINARY:
                    await self.fail(ErrorCode.UNEXPECTED_FRAME)
                elif len(message.data) > self._max_frame_bytes:
                    self._closing = True  # as aiohttp does for larger frames, whatever its version
                    await self._ws.close(code=WSCloseCode.MESSAGE_TOO_BIG)
                else:
                    await self._on_frame(message.data)
                if self._closing:
                    break
        except ConnectionClosing:
            pass
        finally:
            self._closing = True
            for task in list(self._tasks):
                task.cancel()
            if self.mailbox_key is not None:
                self._relay.reader_gone(self.mailbox_key, self)

    def offer(self, envelope: StoredEnvelope) -> None:
        """A new envelope for this reader's mailbox was written (its commit may still run)."""
        self.live.offer(envelope)
        self._wakeup.set()

    def refresh(self) -> None:
        """Another relay process stored envelopes for this mailbox: page them from the store."""
        self.live.mark_stale()
        self._wakeup.set()

    async def send(self, frame: ServerFrame) -> None:
        """Send one frame; raises ConnectionClosing once the socket is gone."""
        if self._ws.closed:
            raise ConnectionClosing
        try:
            await self._ws.send_bytes(encode(frame))
        except ConnectionError as exc:
            raise ConnectionClosing from exc
        if isinstance(frame, Error):
            self._relay.metrics.errors_total[frame.code] += 1

    async def fail(self, code: ErrorCode) -> None:
        """Send a fatal error (request id 0) and close with WebSocket code 4000 + code."""
        self._closing = True
        try:
            await self.send(Error(0, code))
        except ConnectionClosing:
            return
        await self._ws.close(code=CLOSE_CODE_BASE + code)

    async def refuse(self, request_id: int, refusal: Refusal) -> None:
        """Answer a request with a non-fatal error."""
        await self.send(Error(request_id, refusal.code, refusal.retry_after_ms()))

    async def _on_frame(self, data: bytes) -> None:
        try:
            frame = decode_client_frame(data)
        except UnsupportedVersion:
            await self.fail(ErrorCode.UNSUPPORTED_VERSION)
            return
        except UnknownFrameType:
            await self.fail(ErrorCode.UNEXPECTED_FRAME)
            return
        except FrameError:
            await self.fail(ErrorCode.MALFORMED_FRAME)
            return
        if isinstance(frame, Auth):
            await self._on_auth(frame)
            return
        if isinstance(frame, Ack) and self.mailbox_key is None:
            await self.fail(ErrorCode.UNEXPECTED_FRAME)
            return
        wait_s = self._frames.take(self._relay.monotonic())
        if wait_s:
            await self.refuse(frame.request_id, Refusal(ErrorCode.RATE_LIMITED, wait_s))
        elif isinstance(frame, Deposit):
            self._spawn(self._deposit(frame))
        else:
            assert self.mailbox_key is not None
            self._spawn(self._ack(self.mailbox_key, frame))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and isinstance(task.exception(), Exception):
            exc = task.exception()
            if not isinstance(exc, ConnectionClosing):
                _LOGGER.error("relay connection task failed: %r", exc)

    async def _deposit(self, frame: Deposit) -> None:
        refusal = self._deposit_refusal(frame)
        if refusal is not None:
            await self.refuse(frame.request_id, refusal)
            return
        try:
            now_s = int(self._relay.wall_clock())
            result = await self._relay.store.deposit(
                frame.mailbox_key, envelope_id_of(frame.ciphertext), frame.ciphertext, now_s
            )
        except StorageError:
            await self.refuse(frame.request_id, Refusal(ErrorCode.STORAGE_FAILED, 1.0))
            return
        if result.refusal is not None:
            await self.refuse(frame.request_id, Refusal(result.refusal))
            return
        if result.stored is None:
            self._relay.metrics.deposits_duplicate_total += 1
        else:
            self._relay.metrics.deposits_stored_total += 1
        await self.send(Stored(frame.request_id))

    def _deposit_refusal(self, frame: Deposit) -> Refusal | None:
        limits = self._relay.limits
        if len(frame.ciphertext) > limits.max_envelope_bytes:
            return Refusal(ErrorCode.ENVELOPE_TOO_LARGE)
        if not self._relay.valid_keys.is_valid(frame.mailbox_key):
            return Refusal(ErrorCode.BAD_KEY)
        if self._relay.store.queued_writes() >= limits.max_queued_writes:
            return Refusal(ErrorCode.RELAY_BUSY, 0.1)
        now = self._relay.monotonic()
        return self._relay.admission.deposit(self._ip, len(frame.ciphertext), now)

    async def _on_auth(self, frame: Auth) -> None:
        if self._auth_tried:
            await self.fail(ErrorCode.CHALLENGE_USED)
            return
        self._auth_tried = True
        limits = self._relay.limits
        refusal = check_auth(
            frame,
            self._issued,
            self._relay.urls,
            self._relay.wall_clock(),
            limits.challenge_ttl_s,
            limits.max_clock_skew_s,
        )
        if refusal is not None:
            _LOGGER.debug("read refused: %s", refusal.name)
            await self.fail(refusal)
            return
        self.mailbox_key = frame.mailbox_key
        await self._relay.reader_arrived(frame.mailbox_key, self)
        self._relay.metrics.reads_authenticated_total += 1
        self._spawn(self._stream(frame.mailbox_key))

    async def _stream(self, mailbox_key: bytes) -> None:
        store = self._relay.store
        await store.watch(mailbox_key)  # before the first page: nothing is missed
        try:
            after = await self._page(mailbox_key, 0, first=True)
            await self.send(BacklogSent())
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                envelopes, dropped = self.live.take()
                if dropped:  # the dropped envelopes, and any queued after them, are in the store
                    self._relay.metrics.live_queue_overflows_total += 1
                if self.live.take_stale() or dropped:
                    after = await self._page(mailbox_key, after)
                for envelope in envelopes:
                    if envelope.seq > after:  # paged ones were committed before their page's query
                        await self._send_envelope(envelope)
                        after = envelope.seq
        except StorageError:
            await self.fail(ErrorCode.STORAGE_FAILED)
        finally:
            await store.unwatch(mailbox_key)

    async def _page(self, mailbox_key: bytes, after: int, *, first: bool = False) -> int:
        """Send the stored envelopes above `after` (AUTH_OK first if `first`); the last seq sent."""
        while True:
            oldest_s = int(self._relay.wall_clock() - self._relay.limits.max_age_s)
            page = await self._relay.store.pending(mailbox_key, after, PENDING_PAGE, oldest_s)
            if first:
                await self.send(AuthOk())
                first = False
            for envelope in page:
                await self._send_envelope(envelope)
                after = envelope.seq
            if len(page) < PENDING_PAGE:
                return after

    async def _send_envelope(self, envelope: StoredEnvelope) -> None:
        await self.send(Envelope(envelope.envelope_id, envelope.ciphertext))
        self._relay.metrics.envelopes_delivered_total += 1

    async def _ack(self, mailbox_key: bytes, frame: Ack) -> None:
        try:
            deleted = await self._relay.store.delete(mailbox_key, frame.envelope_ids)
        except StorageError:
            await self.refuse(frame.request_id, Refusal(ErrorCode.STORAGE_FAILED, 1.0))
            return
        self._relay.metrics.envelopes_deleted_total += deleted
        await self.send(Acked(frame.request_id))
