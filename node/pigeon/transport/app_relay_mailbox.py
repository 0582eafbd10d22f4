"""Reader of the owner's mailbox on a Pigeon app relay (`/ws`): subscribe, auth, envelopes, ack.

As the app does: `subscribe{mailbox: hex Ed25519 key}`, the relay answers `challenge{nonce}`,
we answer `auth{signature}` (Ed25519 over the raw 32-byte nonce), the relay says
`ok{authenticated}` and streams `envelope{id, ciphertext, ts}`; each is acknowledged
(`ack{id}`) only after `store` returned, so nothing acknowledged is lost. The nonce is signed
by the owner's identity key, which also signs card relay lists with no domain prefix: a nonce
that could be such a list (every byte printable ASCII or a newline) is refused, never signed.
A random nonce is one with probability (96/256)^32, about 2e-14.

Raises `AppRelayBroken` (the link is gone or the relay misbehaved: connect again later) and
`AppRelayRefused` (the relay refused our auth, or asked us to sign a refused nonce).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import aiohttp

from pigeon.transport.app_relay_client import AppRelayBroken, AppRelayRefused

_LOGGER = logging.getLogger(__name__)

NONCE_LEN: Final = 32
MAX_FRAME_BYTES: Final = 400 * 1024  # an envelope frame: up to 262,144 base64 characters
REPLY_TIMEOUT_S: Final = 15.0
HEARTBEAT_S: Final = 30.0

Sign = Callable[[bytes], bytes]
Store = Callable[[bytes], Awaitable[None]]  # a whole app mesh packet; returns once durable


def nonce_is_signable(nonce: bytes) -> bool:
    """Whether we may sign `nonce`: 32 bytes that cannot be a relay-URL list (see above)."""
    if len(nonce) != NONCE_LEN:
        return False
    return not all(byte == 0x0A or 0x21 <= byte <= 0x7E for byte in nonce)


def _parse(text: object) -> dict[str, object]:
    if not isinstance(text, str):
        raise AppRelayBroken("the relay sent a non-text frame")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AppRelayBroken("the relay sent a frame that is not JSON") from exc
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise AppRelayBroken("the relay sent a frame without a type")
    return value


def _b64(value: object) -> bytes:
    if not isinstance(value, str):
        raise AppRelayBroken("a base64 field is missing")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise AppRelayBroken("a base64 field is damaged") from exc


class AppMailboxReader:
    """Reads the mailbox of Ed25519 key `mailbox` at one app relay `url`."""

    def __init__(self, url: str, session: aiohttp.ClientSession, mailbox: bytes) -> None:
        self.url = url
        self._session = session
        self._mailbox = mailbox

    async def run(self, sign: Sign, store: Store) -> None:
        """Connect, authenticate, and hand over envelopes until the link breaks (raises)."""
        try:
            async with self._session.ws_connect(
                self.url, heartbeat=HEARTBEAT_S, max_msg_size=MAX_FRAME_BYTES, compress=0
            ) as ws:
                await self._authenticate(ws, sign)
                _LOGGER.info("reading the owner's app mailbox at a relay")
                while True:
                    message = await ws.receive()
                    if message.type is not aiohttp.WSMsgType.TEXT:
                        raise AppRelayBroken(f"relay connection ended ({message.type.name})")
                    frame = _parse(message.data)
                    if frame["type"] == "envelope":
                        await store(_b64(frame.get("ciphertext")))
                        await ws.send_str(json.dumps({"type": "ack", "id": frame.get("id")}))
                    elif frame["type"] == "error":
                        _LOGGER.info("the app relay reported an error: %s", frame.get("message"))
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            raise AppRelayBroken(f"relay connection lost: {type(exc).__name__}") from exc

    async def _authenticate(self, ws: aiohttp.ClientWebSocketResponse, sign: Sign) -> None:
        await ws.send_str(json.dumps({"type": "subscribe", "mailbox": self._mailbox.hex()}))
        challenge = _parse(await ws.receive_str(timeout=REPLY_TIMEOUT_S))
        if challenge["type"] != "challenge":
            raise AppRelayRefused("the relay did not send a challenge")
        nonce = _b64(challenge.get("nonce"))
        if not nonce_is_signable(nonce):
            raise AppRelayRefused("the relay's nonce could be a relay list: not signed")
        signature = base64.b64encode(sign(nonce)).decode("ascii")
        await ws.send_str(json.dumps({"type": "auth", "signature": signature}))
        answer = _parse(await ws.receive_str(timeout=REPLY_TIMEOUT_S))
        if answer["type"] != "ok":
            raise AppRelayRefused("the relay refused our authentication")
