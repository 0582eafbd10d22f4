"""A Pigeon-app-style WebSocket client for `/ws` tests: JSON text frames, as the app sends them."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from pigeon.crypto.signing import SigningKey
from pigeon.relay.app_protocol import AppServerFrame, decode_server_frame

# A bound on a frame that must come, not a latency figure (bench_app_relay.py measures that): on
# a loaded machine a live deposit through PostgreSQL (fsync on) once took over 5 s to arrive.
RECEIVE_TIMEOUT_S = 30.0


def app_url(v1_url: str) -> str:
    """The /ws URL of the relay whose /v1 URL is `v1_url`."""
    return v1_url.removesuffix("/v1") + "/ws"


@dataclass
class AppClient:
    """One WebSocket to a relay's /ws."""

    ws: aiohttp.ClientWebSocketResponse
    session: aiohttp.ClientSession

    @classmethod
    async def connect(cls, url: str) -> AppClient:
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(app_url(url), compress=0, max_msg_size=0)
        return cls(ws, session)

    async def send(self, **fields: Any) -> None:
        """Send one JSON object, keys in the given order (as Swift's JSONSerialization may)."""
        await self.ws.send_str(json.dumps(fields))

    async def receive_text(self) -> str:
        message = await self.ws.receive(timeout=RECEIVE_TIMEOUT_S)
        assert message.type is aiohttp.WSMsgType.TEXT, message
        return str(message.data)

    async def receive(self) -> AppServerFrame:
        return decode_server_frame(await self.receive_text())

    async def publish(self, recipient: bytes, ciphertext: bytes) -> None:
        await self.send(
            type="publish",
            recipient=recipient.hex(),
            ciphertext=base64.b64encode(ciphertext).decode(),
        )

    async def subscribe_and_auth(self, key: SigningKey) -> tuple[str, str]:
        """subscribe, sign the nonce as the app does, auth; returns (challenge text, answer)."""
        await self.send(type="subscribe", mailbox=key.public_key.hex())
        challenge = await self.receive_text()
        nonce = base64.b64decode(json.loads(challenge)["nonce"])
        signature = base64.b64encode(key.sign(nonce)).decode()
        await self.send(type="auth", signature=signature)
        return challenge, await self.receive_text()

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()
