"""A real relay on 127.0.0.1 (random port) with a controllable wall clock, and the relay's
stores: each store test runs against SQLite and against a throwaway PostgreSQL server."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pigeon.relay.config import RelayConfig
from pigeon.relay.limits import Limits, Quota
from pigeon.relay.server import RunningRelay, start_relay
from pigeon.relay.storage import EnvelopeStore, SqliteStore
from tests.relay.pgserver import MISSING, PgServer, postgres_bin_dir


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


@pytest.fixture(params=["sqlite", "postgresql"])
def relay_store(request: pytest.FixtureRequest) -> str:
    """The `store` of this test's relays: "" (SQLite in the data directory) or a fresh
    PostgreSQL database, so every protocol test runs on both backends."""
    if request.param == "sqlite":
        return ""
    server: PgServer = request.getfixturevalue("pg_server")
    return server.create_database()


@pytest.fixture
async def start(
    tmp_path: Path, wall_clock: WallClock, relay_store: str
) -> AsyncIterator[StartRelay]:
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
            store=relay_store,
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


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the session; tests take a fresh database each."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(MISSING)
    server = PgServer(bin_dir, fsync=False)  # see PgServer
    try:
        server.start()
        yield server
    finally:
        server.destroy()


OpenStore = Callable[[Quota], Awaitable[EnvelopeStore]]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
    """`await open_store(quota)` opens (or reopens) this test's store on either backend."""
    if request.param == "sqlite":

        async def _sqlite(quota: Quota) -> EnvelopeStore:
            return await SqliteStore.open(tmp_path, quota)

        return _sqlite
    from pigeon.relay.pg_storage import PgStore

    dsn = request.getfixturevalue("pg_server").create_database()

    async def _postgresql(quota: Quota) -> EnvelopeStore:
        return await PgStore.open(dsn, quota)

    return _postgresql
