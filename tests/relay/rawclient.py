"""A frame-level WebSocket client for relay tests: sends exactly the frames a test builds."""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiohttp

from pigeon.crypto.signing import SigningKey
from pigeon.relay.protocol import (
    Ack,
    Auth,
    Challenge,
    ClientFrame,
    Deposit,
    ServerFrame,
    decode_server_frame,
    encode,
    read_signed_message,
)

RECEIVE_TIMEOUT_S = 30.0  # a bound on a frame that must come (see appclient.py)


@dataclass
class RawClient:
    """One WebSocket to the relay; `challenge` is what the relay sent first."""

    ws: aiohttp.ClientWebSocketResponse
    session: aiohttp.ClientSession
    challenge: bytes
    url: str
    next_request: int = 1

    @classmethod
    async def connect(cls, url: str) -> RawClient:
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(url, compress=0)
        first = await _receive(ws)
        assert isinstance(first, Challenge), first
        return cls(ws, session, first.challenge, url)

    @classmethod
    async def connect_raw(
        cls, url: str
    ) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
        session = aiohttp.ClientSession()
        return session, await session.ws_connect(url, compress=0)

    async def send(self, frame: ClientFrame) -> None:
        await self.ws.send_bytes(encode(frame))

    async def send_bytes(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def receive(self) -> ServerFrame:
        return await _receive(self.ws)

    def request_id(self) -> int:
        self.next_request += 1
        return self.next_request - 1

    async def deposit(self, key: bytes, ciphertext: bytes) -> ServerFrame:
        await self.send(Deposit(self.request_id(), key, ciphertext))
        return await self.receive()

    def auth_frame(
        self,
        key: SigningKey,
        *,
        url: str | None = None,
        timestamp_ms: int | None = None,
        challenge: bytes | None = None,
    ) -> Auth:
        ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        message = read_signed_message(
            challenge or self.challenge, url or self.url, ts, key.public_key
        )
        return Auth(key.public_key, ts, key.sign(message))

    async def auth(self, key: SigningKey, **kwargs: object) -> ServerFrame:
        await self.send(self.auth_frame(key, **kwargs))  # type: ignore[arg-type]
        return await self.receive()

    async def ack(self, *envelope_ids: bytes) -> int:
        request_id = self.request_id()
        await self.send(Ack(request_id, envelope_ids))
        return request_id

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code


async def _receive(ws: aiohttp.ClientWebSocketResponse) -> ServerFrame:
    message = await ws.receive(timeout=RECEIVE_TIMEOUT_S)
    assert message.type is aiohttp.WSMsgType.BINARY, message
    return decode_server_frame(message.data)


async def expect_closed(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Wait for the relay to close `ws`; returns the close code the relay sent."""
    message = await ws.receive(timeout=RECEIVE_TIMEOUT_S)
    assert message.type is aiohttp.WSMsgType.CLOSE, message
    code: int = message.data
    return code
