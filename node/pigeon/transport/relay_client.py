"""Client of a blind mailbox relay over WebSocket: deposit envelopes, read and ack a mailbox.

One `RelayClient` keeps one WebSocket to one relay URL, reconnecting with jittered exponential
backoff. `deposit` returns once the relay answered STORED (durable). `read` authenticates with a
signer the caller passes in (so this room needs no crypto) and hands each envelope to the caller's
handler; the acknowledgement goes out only after the handler returned, so the caller stores first.
Envelope ids (hashes of the ciphertext) already handled are remembered (bounded) and acknowledged
again without a second call: the relay delivers at least once. When the relay says the stored
backlog is sent, what was handled is acknowledged at once and `caught_up` turns true.

`uplink_status` tells the UI whether there is a default route and which relays are connected.

Raises `RelayClosed` (we closed), `RelayBroken` (link lost, relay gone or misbehaving),
`RelayBusy` (a limit or quota: retry later), `RelayRefused` / `RelayAuthRefused` (never retry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp

from pigeon.relay.protocol import (
    MAX_ACK_IDS,
    Ack,
    Acked,
    Auth,
    AuthOk,
    BacklogSent,
    Challenge,
    ClientFrame,
    Deposit,
    Envelope,
    Error,
    ErrorCode,
    FrameError,
    Stored,
    decode_server_frame,
    encode,
    is_fatal,
    read_signed_message,
)
from pigeon.transport.base import Broken, Busy, Closed, TransportError

_LOGGER = logging.getLogger(__name__)

Signer = Callable[[bytes], bytes]
EnvelopeHandler = Callable[[bytes, bytes], Awaitable[None]]

DEFAULT_DEDUP_IDS: Final = 4_096
CONNECT_TIMEOUT_S: Final = 10.0
HEARTBEAT_S: Final = 30.0
MAX_FRAME_BYTES: Final = 4 * 1024 * 1024
_MAX_REQUEST_ID: Final = 0xFFFFFFFF
_RTF_UP: Final = 0x0001
_RTF_REJECT: Final = 0x0200

_BUSY_CODES: Final = frozenset(
    {
        ErrorCode.MAILBOX_FULL,
        ErrorCode.MAILBOX_BYTES_FULL,
        ErrorCode.RELAY_FULL,
        ErrorCode.RATE_LIMITED,
        ErrorCode.IP_RATE_LIMITED,
        ErrorCode.TOO_MANY_CONNECTIONS,
        ErrorCode.TOO_MANY_IP_CONNECTIONS,
        ErrorCode.RELAY_BUSY,
        ErrorCode.CONNECT_RATE_LIMITED,
        ErrorCode.STORAGE_FAILED,
    }
)
_AUTH_CODES: Final = frozenset(
    {
        ErrorCode.BAD_KEY,
        ErrorCode.BAD_SIGNATURE,
        ErrorCode.CHALLENGE_EXPIRED,
        ErrorCode.CLOCK_SKEW,
        ErrorCode.CHALLENGE_USED,
    }
)
_BROKEN_CODES: Final = frozenset({ErrorCode.SHUTTING_DOWN, ErrorCode.READER_REPLACED})


class RelayClosed(Closed):
    """We closed the client; nothing more can be sent."""


class RelayBroken(Broken):
    """The link to the relay is gone (network, relay shutdown, replaced reader, bad bytes)."""

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.code = code


class RelayMisbehaved(RelayBroken):
    """The relay sent bytes that are not a valid relay frame (the relay's fault)."""


class RelayBusy(Busy):
    """A limit or quota refused the request; retry after `retry_after_s` (0: unknown)."""

    def __init__(self, code: ErrorCode, retry_after_s: float) -> None:
        super().__init__(f"relay refused for now: {code.name}")
        self.code = code
        self.retry_after_s = retry_after_s


class RelayRefused(TransportError):
    """The relay refused the request for good (too large, bad key, protocol misuse)."""

    def __init__(self, code: ErrorCode) -> None:
        super().__init__(f"relay refused: {code.name}")
        self.code = code


class RelayAuthRefused(RelayRefused):
    """The relay refused to open the mailbox (bad key or signature, expired, clock skew)."""


def error_for(error: Error, during_auth: bool = False) -> TransportError:
    """The typed exception for an ERROR frame the relay sent."""
    if error.code in _BUSY_CODES:
        return RelayBusy(error.code, error.retry_after_ms / 1000)
    if error.code in _BROKEN_CODES:
        return RelayBroken(f"relay closed the connection: {error.code.name}", error.code)
    if during_auth and error.code in _AUTH_CODES:
        return RelayAuthRefused(error.code)
    return RelayRefused(error.code)


class Backoff:
    """Full-jitter exponential backoff: delay n is uniform in [0, min(max_s, base_s * 2**n)]."""

    def __init__(self, base_s: float, max_s: float, rng: random.Random) -> None:
        self._base_s = base_s
        self._max_s = max_s
        self._rng = rng
        self._attempt = 0

    def next_delay(self) -> float:
        """The next delay in seconds; each call doubles the ceiling until `max_s`."""
        ceiling = min(self._max_s, self._base_s * 2 ** min(self._attempt, 62))
        self._attempt += 1
        return self._rng.uniform(0, ceiling)

    def reset(self) -> None:
        """Start again from `base_s` (after a success)."""
        self._attempt = 0


class RecentIds:
    """The last `capacity` envelope ids seen, oldest forgotten first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, envelope_id: object) -> bool:
        return envelope_id in self._ids

    def add(self, envelope_id: bytes) -> None:
        """Remember `envelope_id`, forgetting the oldest beyond capacity."""
        self._ids[envelope_id] = None
        self._ids.move_to_end(envelope_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

    def discard(self, envelope_id: bytes) -> None:
        """Forget `envelope_id` (so it is handled again when it comes again)."""
        self._ids.pop(envelope_id, None)

    def __len__(self) -> int:
        return len(self._ids)


_END: Final = object()


class _Link:
    """One WebSocket to the relay, with its receive loop dispatching frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        self.ws = ws
        self.challenge: asyncio.Future[bytes] = loop.create_future()
        self.auth: asyncio.Future[None] | None = None
        self.envelopes: asyncio.Queue[Envelope | BacklogSent | object] = asyncio.Queue()
        self.error: TransportError | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._next_id = 0
        self._receiver = asyncio.create_task(self._receive(), name="relay-client-receive")

    @property
    def alive(self) -> bool:
        return self.error is None and not self.ws.closed

    async def request(self, make: Callable[[int], ClientFrame]) -> asyncio.Future[None]:
        """Send the frame `make(request_id)`; the future settles on its answer."""
        self._next_id = self._next_id % _MAX_REQUEST_ID + 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        await self.send(make(self._next_id))
        return future

    async def send(self, frame: ClientFrame) -> None:
        if self.error is not None:
            raise self.error
        try:
            await self.ws.send_bytes(encode(frame))
        except (ConnectionError, aiohttp.ClientError) as exc:
            self._break(RelayBroken("relay connection lost"))
            raise RelayBroken("relay connection lost") from exc

    async def aclose(self, error: TransportError) -> None:
        self._break(error)
        self._receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._receiver
        await self.ws.close()

    async def _receive(self) -> None:
        try:
            async for message in self.ws:
                if message.type is aiohttp.WSMsgType.ERROR:
                    break
                if message.type is not aiohttp.WSMsgType.BINARY:
                    raise RelayMisbehaved("relay sent a non-binary message")
                self._dispatch(decode_server_frame(message.data))
            self._break(RelayBroken(f"relay closed the connection ({self.ws.close_code})"))
        except FrameError as exc:
            self._break(RelayMisbehaved(f"relay sent an invalid frame: {exc}"))
            await self.ws.close()
        except RelayMisbehaved as exc:
            self._break(exc)
            await self.ws.close()
        except (ConnectionError, aiohttp.ClientError):
            self._break(RelayBroken("relay connection lost"))

    def _dispatch(self, frame: object) -> None:
        match frame:
            case Challenge(challenge=challenge) if not self.challenge.done():
                self.challenge.set_result(challenge)
            case Stored(request_id=request_id) | Acked(request_id=request_id):
                self._settle(request_id, None)
            case AuthOk() if self.auth is not None and not self.auth.done():
                self.auth.set_result(None)
            case Envelope() | BacklogSent() if self.auth is not None and self.auth.done():
                self.envelopes.put_nowait(frame)  # in order: the marker follows the backlog
            case Error():
                self._on_error(frame)
            case _:
                raise RelayMisbehaved("relay sent a frame out of turn")

    def _on_error(self, error: Error) -> None:
        if not is_fatal(error):
            self._settle(error.request_id, error_for(error))
            return
        during_auth = self.auth is not None and not self.auth.done()
        exc = error_for(error, during_auth)
        for future in (self.auth, self.challenge):
            if future is not None and not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved here: a waiter may never come
        self._settle(error.request_id, exc)
        if not isinstance(exc, RelayBroken):
            exc = RelayBroken(f"relay closed the connection: {error.code.name}", error.code)
        self._break(exc)

    def _settle(self, request_id: int, outcome: TransportError | None) -> None:
        future = self._pending.pop(request_id, None)
        if future is None or future.done():
            return
        if outcome is None:
            future.set_result(None)
        else:
            future.set_exception(outcome)

    def _break(self, error: TransportError) -> None:
        if self.error is not None:
            return
        self.error = error
        for future in (self.challenge, self.auth, *self._pending.values()):
            if future is not None and not future.done():
                future.set_exception(error)
                future.exception()  # retrieved here: a waiter may never come
        self._pending.clear()
        self.envelopes.put_nowait(_END)


class RelayClient:
    """A connection to one relay at `url` (ws:// or wss://, ending in /v1)."""

    def __init__(
        self,
        url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 60.0,
        connect_attempts: int = 6,
        dedup_ids: int = DEFAULT_DEDUP_IDS,
    ) -> None:
        self.url = url
        self._session = session
        self._own_session = session is None
        self._clock = clock
        self._backoff = Backoff(backoff_base_s, backoff_max_s, rng or random.Random())
        self._connect_attempts = connect_attempts
        self._seen = RecentIds(dedup_ids)
        self._link: _Link | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._caught_up: _Link | None = None

    @property
    def connected(self) -> bool:
        """True while a WebSocket to the relay is open."""
        return self._link is not None and self._link.alive

    @property
    def caught_up(self) -> bool:
        """True once this link's read handled every envelope the mailbox held when it opened."""
        return self.connected and self._caught_up is self._link

    async def connect(self) -> None:
        """Open the WebSocket if it is not open, retrying with backoff; raises RelayBroken."""
        await self._ensure_link()

    async def deposit(self, mailbox_key: bytes, ciphertext: bytes) -> None:
        """Return once the relay stored the envelope durably (one already held counts as stored)."""
        link = await self._ensure_link()
        future = await link.request(lambda rid: Deposit(rid, mailbox_key, ciphertext))
        await future

    async def read(self, public_key: bytes, sign: Signer, on_envelope: EnvelopeHandler) -> None:
        """Open the mailbox of `public_key` and handle envelopes until the link ends.

        `sign(message)` must return the Ed25519 signature of `message` by the mailbox's key.
        Always ends by raising: RelayBroken when the link drops, RelayAuthRefused, RelayClosed;
        RuntimeError if a read already runs on this client's connection. An exception from
        `on_envelope` propagates; that envelope stays unacknowledged.
        """
        link = await self._ensure_link()
        if link.auth is not None:
            raise RuntimeError("this connection already reads a mailbox")
        challenge = await link.challenge
        timestamp_ms = int(self._clock() * 1000)
        message = read_signed_message(challenge, self.url, timestamp_ms, public_key)
        link.auth = asyncio.get_running_loop().create_future()
        await link.send(Auth(public_key, timestamp_ms, sign(message)))
        await link.auth
        await self._stream(link, on_envelope)

    async def read_forever(
        self, public_key: bytes, sign: Signer, on_envelope: EnvelopeHandler
    ) -> None:
        """`read`, reconnecting with backoff after RelayBroken or RelayBusy until closed."""
        while True:
            try:
                await self.read(public_key, sign, on_envelope)
            except (RelayBroken, RelayBusy) as exc:
                delay = self._backoff.next_delay()
                if isinstance(exc, RelayBusy):
                    delay = max(delay, exc.retry_after_s)
                _LOGGER.info("relay read interrupted (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    async def aclose(self) -> None:
        """Close the link and, if we made it, the HTTP session; idempotent."""
        self._closed = True
        if self._link is not None:
            await self._link.aclose(RelayClosed("relay client closed"))
            self._link = None
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _stream(self, link: _Link, on_envelope: EnvelopeHandler) -> None:
        to_ack: list[bytes] = []
        while True:
            if to_ack and link.envelopes.empty():
                await self._ack(link, to_ack)
                to_ack = []
            item = await link.envelopes.get()
            if isinstance(item, BacklogSent):
                if to_ack:
                    await self._ack(link, to_ack)
                    to_ack = []
                self._caught_up = link
                continue
            if not isinstance(item, Envelope):
                assert link.error is not None
                raise link.error
            if item.envelope_id not in self._seen:
                await on_envelope(item.envelope_id, item.ciphertext)
                self._seen.add(item.envelope_id)
            to_ack.append(item.envelope_id)
            if len(to_ack) == MAX_ACK_IDS:
                await self._ack(link, to_ack)
                to_ack = []

    async def _ack(self, link: _Link, envelope_ids: list[bytes]) -> None:
        ids = tuple(envelope_ids)
        future = await link.request(lambda rid: Ack(rid, ids))
        # Unacknowledged envelopes come again on the next read, so a failed ack needs no retry.
        future.add_done_callback(_log_ack_failure)

    async def _ensure_link(self) -> _Link:
        async with self._lock:
            if self._closed:
                raise RelayClosed("relay client closed")
            if self._link is not None and self._link.alive:
                return self._link
            for attempt in range(self._connect_attempts):
                try:
                    self._link = await self._open_link()
                except (RelayBroken, RelayBusy) as exc:
                    if attempt + 1 == self._connect_attempts:
                        raise
                    delay = self._backoff.next_delay()
                    if isinstance(exc, RelayBusy):
                        delay = max(delay, exc.retry_after_s)
                    _LOGGER.debug("relay connect failed (%s); retrying in %.2f s", exc, delay)
                    await asyncio.sleep(delay)
                else:
                    self._backoff.reset()
                    return self._link
            raise RelayBroken("relay unreachable")

    async def _open_link(self) -> _Link:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            ws = await self._session.ws_connect(
                self.url,
                timeout=aiohttp.ClientWSTimeout(ws_close=CONNECT_TIMEOUT_S),
                heartbeat=HEARTBEAT_S,
                max_msg_size=MAX_FRAME_BYTES,
                compress=0,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise RelayBroken(f"cannot connect to the relay: {type(exc).__name__}") from exc
        link = _Link(ws)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await asyncio.shield(link.challenge)
        except TimeoutError as exc:
            await link.aclose(RelayBroken("relay sent no challenge"))
            raise RelayBroken("relay sent no challenge") from exc
        except TransportError:
            await link.aclose(RelayBroken("relay refused the connection"))
            raise
        return link


@dataclass(frozen=True, slots=True)
class UplinkStatus:
    """Whether the node has an internet uplink, for the UI: a default route and live relays."""

    default_route: bool
    connected_relays: tuple[str, ...]

    @property
    def online(self) -> bool:
        """True if at least one relay is connected (which implies a route)."""
        return bool(self.connected_relays)


def has_default_route(ipv4_routes: str, ipv6_routes: str) -> bool:
    """True if /proc/net/route or /proc/net/ipv6_route text holds a usable default route."""
    for line in ipv4_routes.splitlines()[1:]:
        fields = line.split()
        default = len(fields) >= 8 and fields[1] == fields[7] == "00000000"
        if default and _hex(fields[3]) & _RTF_UP:
            return True
    for line in ipv6_routes.splitlines():
        fields = line.split()
        if len(fields) >= 10 and fields[0] == "0" * 32 and fields[1] == "00":
            flags = _hex(fields[8])
            if flags & _RTF_UP and not flags & _RTF_REJECT and fields[9] != "lo":
                return True
    return False


def uplink_status(
    clients: Sequence[RelayClient], proc_net: Path = Path("/proc/net")
) -> UplinkStatus:
    """The uplink as the kernel's routing table and these relay clients see it right now."""
    tables = []
    for name in ("route", "ipv6_route"):
        try:
            tables.append((proc_net / name).read_text())
        except OSError:
            tables.append("")
    connected = tuple(client.url for client in clients if client.connected)
    return UplinkStatus(has_default_route(*tables), connected)


def _hex(text: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        return 0


def _log_ack_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        _LOGGER.debug("relay ack failed: %s", future.exception())
