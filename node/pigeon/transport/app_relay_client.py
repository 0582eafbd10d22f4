"""Publisher to a Pigeon app relay: its JSON WebSocket protocol at `/ws`, the publish side only.

The app's relays (theirs at `wss://relay.pigeonwire.app/ws`, or a `pigeon relay`) take
`{"type":"publish","recipient":<hex Ed25519 key>,"ciphertext":<base64 of a whole mesh packet>}`
from anyone, without authentication, and answer each publish in order with
`{"type":"published","id":...}` (stored) or `{"type":"error","message":...}`
(docs/protocol.md, "The Pigeon app's relay protocol on `pigeon relay`"). One
`AppRelayPublisher` keeps one WebSocket to one URL, opened on first use and again after it
broke, and has one publish in flight at a time (replies carry no request id).

Raises `AppRelayBroken` (the link is gone or the relay misbehaved: reconnect later),
`AppRelayBusy` (a limit or quota: retry later), `AppRelayRefused` (never retry this packet),
`Closed` (we closed the publisher).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any, Final

import aiohttp

from pigeon.transport.base import Broken, Busy, Closed, TransportError

_LOGGER = logging.getLogger(__name__)

REPLY_TIMEOUT_S: Final = 15.0
CONNECT_TIMEOUT_S: Final = 10.0
HEARTBEAT_S: Final = 30.0
MAX_REPLY_BYTES: Final = 64 * 1024  # a reply is a short JSON object; envelopes never come here

# The relay's error texts (the app's relay's and `pigeon relay`'s) that mean "later".
_BUSY_MESSAGES: Final = frozenset(
    {
        "relay at capacity",
        "rate limited",
        "relay busy",
        "storage failed",
        "too many connections",
        "mailbox full",
        "shutting down",
    }
)


class AppRelayBroken(Broken):
    """The WebSocket is gone, or the relay sent something that is not a reply to a publish."""


class AppRelayBusy(Busy):
    """The relay refused for now (a limit, a quota, its storage); try again later."""


class AppRelayRefused(TransportError):
    """The relay refused this publish for good (bad recipient, ciphertext too large)."""


def publish_frame(recipient: bytes, packet: bytes) -> str:
    """The publish text frame for `packet` (a whole app mesh packet) to `recipient`'s mailbox."""
    if len(recipient) != 32:
        raise ValueError("a recipient is a 32-byte Ed25519 key")
    return json.dumps(
        {
            "type": "publish",
            "recipient": recipient.hex(),
            "ciphertext": base64.b64encode(packet).decode("ascii"),
        },
        separators=(",", ":"),
    )


def parse_reply(text: str) -> str:
    """The envelope id of a `published` reply; raises AppRelayBusy, AppRelayRefused or
    AppRelayBroken (anything else: the relay misbehaves)."""
    try:
        value: Any = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past Python's limit
        raise AppRelayBroken("relay sent a reply that is not JSON") from exc
    if not isinstance(value, dict):
        raise AppRelayBroken("relay sent a reply that is not an object")
    kind = value.get("type")
    if kind == "published" and isinstance(value.get("id"), str):
        return str(value["id"])
    if kind == "error" and isinstance(value.get("message"), str):
        message = str(value["message"])
        if message in _BUSY_MESSAGES:
            raise AppRelayBusy(f"relay refused for now: {message}")
        raise AppRelayRefused(f"relay refused: {message}")
    raise AppRelayBroken("relay sent a frame that does not answer a publish")


class AppRelayPublisher:
    """Publishes to one app relay at `url` (ws:// or wss://, ending in /ws)."""

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self._session = session
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def connected(self) -> bool:
        """True while a WebSocket to the relay is open."""
        return self._ws is not None and not self._ws.closed

    async def publish(self, recipient: bytes, packet: bytes) -> str:
        """Publish `packet` to `recipient`'s mailbox; return the relay's envelope id."""
        text = publish_frame(recipient, packet)
        async with self._lock:
            ws = await self._connect()
            try:
                await ws.send_str(text)
                message = await ws.receive(timeout=REPLY_TIMEOUT_S)
            except (TimeoutError, ConnectionError, aiohttp.ClientError) as exc:
                await self._drop()
                raise AppRelayBroken(f"relay connection lost: {type(exc).__name__}") from exc
            if message.type is not aiohttp.WSMsgType.TEXT:
                await self._drop()
                raise AppRelayBroken(f"relay connection ended ({message.type.name})")
            try:
                return parse_reply(message.data)
            except AppRelayBroken:
                await self._drop()
                raise

    async def aclose(self) -> None:
        """Close the WebSocket; idempotent. Later publishes raise Closed."""
        self._closed = True
        await self._drop()

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        if self._closed:
            raise Closed("publisher closed")
        if self._ws is not None and not self._ws.closed:
            return self._ws
        try:
            self._ws = await self._session.ws_connect(
                self.url,
                timeout=aiohttp.ClientWSTimeout(ws_close=CONNECT_TIMEOUT_S),
                heartbeat=HEARTBEAT_S,
                max_msg_size=MAX_REPLY_BYTES,
                compress=0,
            )
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            raise AppRelayBroken(f"cannot reach the relay: {type(exc).__name__}") from exc
        _LOGGER.info("connected to an app relay")
        return self._ws

    async def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
