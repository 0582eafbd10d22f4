"""A real relay on 127.0.0.1 (random port) with a controllable wall clock."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pigeon.relay.config import RelayConfig
from pigeon.relay.limits import Limits
from pigeon.relay.server import RunningRelay, start_relay


class WallClock:
    """Real time plus an offset a test can advance."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset_s

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds


StartRelay = Callable[..., Awaitable[RunningRelay]]


@pytest.fixture
def wall_clock() -> WallClock:
    return WallClock()


@pytest.fixture
async def start(tmp_path: Path, wall_clock: WallClock) -> AsyncIterator[StartRelay]:
    """`await start(**limit_overrides)` runs a relay; every one is closed after the test."""
    running: list[RunningRelay] = []

    async def _start(
        data_dir: Path | None = None,
        port: int = 0,
        behind_proxy: bool = False,
        app_endpoint: bool = True,
        **limits: Any,
    ) -> RunningRelay:
        config = RelayConfig(
            listen=f"127.0.0.1:{port}",
            data_dir=str(data_dir or tmp_path / "relay"),
            behind_proxy=behind_proxy,
            app_endpoint=app_endpoint,
            limits=dataclasses.replace(Limits(), **limits),
        )
        relay = await start_relay(config, wall_clock=wall_clock)
        running.append(relay)
        return relay

    yield _start
    for relay in running:
        await relay.aclose()
