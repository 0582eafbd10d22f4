"""The app relay session vector (tests/pigeon_app/vectors/relay_session.json) against `/ws`.

A real relay on loopback, with the vector's nonce and clock injected, must answer every client
text with exactly the vector's relay texts, in order, and say nothing where the vector is silent.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pigeon.relay.config import RelayConfig
from pigeon.relay.server import start_relay
from tests.relay.appclient import app_url

VECTORS = Path(__file__).resolve().parent.parent / "pigeon_app" / "vectors"
SESSION: dict[str, Any] = json.loads((VECTORS / "relay_session.json").read_text())


def test_the_vector_file_is_what_its_script_writes() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_relay_session", VECTORS / "make_relay_session.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == SESSION


async def test_the_relay_speaks_the_session_vector(tmp_path: Path) -> None:
    inputs = SESSION["inputs"]
    nonce = bytes.fromhex(inputs["nonce_hex"])
    relay = await start_relay(
        RelayConfig(listen="127.0.0.1:0", data_dir=str(tmp_path)),
        wall_clock=lambda: float(inputs["clock_s"]),
        token_bytes=lambda n: nonce[:n],
    )
    try:
        async with aiohttp.ClientSession() as session:
            for connection in SESSION["connections"]:
                async with session.ws_connect(app_url(relay.url)) as ws:
                    for step in connection:
                        await play(ws, step)
    finally:
        await relay.aclose()


async def play(ws: aiohttp.ClientWebSocketResponse, step: dict[str, str]) -> None:
    if step["from"] == "client":
        await ws.send_str(step["text"])
    elif step["text"]:
        message = await ws.receive(timeout=5)
        assert message.type is aiohttp.WSMsgType.TEXT, (step, message)
        assert message.data == step["text"], step["source"]
    else:
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.3)
