"""Three `pigeon relay` processes on one PostgreSQL database: live delivery across processes,
quotas shared by all of them, and no STORED deposit lost or doubled when a relay process is
SIGKILLed under load or the database itself is shut down immediately and restarted."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from pigeon.crypto.signing import SigningKey
from pigeon.relay.app_protocol import AppEnvelope, Published
from pigeon.relay.protocol import (
    CLOSE_CODE_BASE,
    AuthOk,
    BacklogSent,
    Deposit,
    Envelope,
    Error,
    ErrorCode,
    Stored,
    envelope_id_of,
)
from tests.relay.appclient import AppClient
from tests.relay.pgserver import MISSING, PgServer, postgres_bin_dir
from tests.relay.process import RelayProcess, launch_relay
from tests.relay.rawclient import RawClient, expect_closed
from tests.relay.test_crash import RelayGone, connect, receive

PROCESSES = 3
MAILBOXES = 4
WINDOW = 16
CONFIG = """
[limits]
mailbox_max_envelopes = 1000000
mailbox_max_bytes = 1073741824
ip_connects_per_s = 1000.0
ip_connect_burst = 10000
connection_frames_per_s = 100000.0
connection_frame_burst = 100000
ip_deposits_per_s = 100000.0
ip_deposit_burst = 100000
"""


@pytest.fixture
def own_pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server of this test alone (it is killed and restarted)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(MISSING)
    server = PgServer(bin_dir, fsync=False)  # see PgServer
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@dataclass
class Cluster:
    """Relay processes sharing one database, restartable by index."""

    dsn: str
    root: Path
    config: Path
    relays: list[RelayProcess] = field(default_factory=list)

    async def launch(self, index: int) -> RelayProcess:
        log = self.root / f"relay{index}.log"
        relay = await launch_relay(
            self.root / f"data{index}", log, "--config", str(self.config), "--store", self.dsn
        )
        if index < len(self.relays):
            self.relays[index] = relay
        else:
            self.relays.append(relay)
        return relay

    async def stop(self) -> None:
        for relay in self.relays:
            if relay.process.returncode is None:
                relay.process.send_signal(signal.SIGTERM)
                assert await relay.process.wait() == 0


@contextlib.asynccontextmanager
async def cluster(dsn: str, root: Path, limits: str = CONFIG) -> AsyncIterator[Cluster]:
    config = root / "relay.toml"
    config.write_text(limits)
    running = Cluster(dsn, root, config)
    try:
        for index in range(PROCESSES):
            await running.launch(index)
        yield running
    finally:
        await running.stop()


async def test_a_deposit_into_one_process_is_read_live_from_another(
    pg_server: PgServer, tmp_path: Path
) -> None:
    async with cluster(pg_server.create_database(), tmp_path) as relays:
        a, b, c = relays.relays
        owner = SigningKey.generate()
        reader = await RawClient.connect(c.url)
        assert await reader.auth(owner) == AuthOk()
        assert await reader.receive() == BacklogSent()
        depositor = await RawClient.connect(a.url)
        for n in range(5):
            assert isinstance(await depositor.deposit(owner.public_key, b"live %d" % n), Stored)
            got = await reader.receive()
            assert isinstance(got, Envelope)
            assert got.ciphertext == b"live %d" % n
        app_owner = SigningKey.generate()
        app_reader = await AppClient.connect(b.url)
        _, answer = await app_reader.subscribe_and_auth(app_owner)
        assert "authenticated" in answer, answer
        app_depositor = await AppClient.connect(a.url)
        await app_depositor.publish(app_owner.public_key, b"to the app")
        assert isinstance(await app_depositor.receive(), Published)
        envelope = await app_reader.receive()
        assert isinstance(envelope, AppEnvelope)
        assert base64.b64decode(envelope.ciphertext) == b"to the app"
        for client in (reader, depositor):
            await client.close()
        await app_reader.close()
        await app_depositor.close()


async def test_a_reader_on_another_process_replaces_the_earlier_one(
    pg_server: PgServer, tmp_path: Path
) -> None:
    async with cluster(pg_server.create_database(), tmp_path) as relays:
        a, b, _ = relays.relays
        owner = SigningKey.generate()
        first = await RawClient.connect(a.url)
        assert await first.auth(owner) == AuthOk()
        assert await first.receive() == BacklogSent()
        second = await RawClient.connect(b.url)
        assert await second.auth(owner) == AuthOk()
        assert await first.receive() == Error(0, ErrorCode.READER_REPLACED)
        assert await expect_closed(first.ws) == CLOSE_CODE_BASE + ErrorCode.READER_REPLACED
        assert await second.receive() == BacklogSent()
        depositor = await RawClient.connect(a.url)
        assert isinstance(await depositor.deposit(owner.public_key, b"for the second"), Stored)
        got = await second.receive()
        assert isinstance(got, Envelope)
        assert got.ciphertext == b"for the second"
        for client in (first, second, depositor):
            await client.close()


async def test_quotas_hold_across_processes(pg_server: PgServer, tmp_path: Path) -> None:
    limits = CONFIG.replace("mailbox_max_envelopes = 1000000", "mailbox_max_envelopes = 3")
    async with cluster(pg_server.create_database(), tmp_path, limits) as relays:
        key = SigningKey.generate().public_key
        clients = [await RawClient.connect(relay.url) for relay in relays.relays]
        for n, client in enumerate(clients):
            assert isinstance(await client.deposit(key, b"%d" % n), Stored)
        refused = await clients[0].deposit(key, b"one too many")
        assert isinstance(refused, Error)
        assert refused.code is ErrorCode.MAILBOX_FULL
        for client in clients:
            await client.close()


@dataclass
class Ledger:
    """What the clients sent and what the relays answered STORED, across every process."""

    sent: dict[bytes, bytes] = field(default_factory=dict)  # envelope id -> ciphertext
    stored: dict[bytes, int] = field(default_factory=dict)  # envelope id -> mailbox index
    refused: Counter[str] = field(default_factory=Counter)
    next_id: int = 0

    def payload(self, rng: random.Random) -> bytes:
        self.next_id += 1
        return self.next_id.to_bytes(16, "big") * rng.randint(1, 8) + rng.randbytes(7)


async def deposit_forever(
    url: str, owners: list[SigningKey], ledger: Ledger, rng: random.Random
) -> None:
    client = await connect(url)
    try:
        pending: dict[int, tuple[bytes, int]] = {}
        while True:
            for _ in range(WINDOW):
                mailbox, payload = rng.randrange(MAILBOXES), ledger.payload(rng)
                request_id = client.request_id()
                pending[request_id] = (envelope_id_of(payload), mailbox)
                ledger.sent[envelope_id_of(payload)] = payload
                await client.send(Deposit(request_id, owners[mailbox].public_key, payload))
            for _ in range(WINDOW):
                answer = await receive(client)
                if isinstance(answer, Stored):
                    envelope_id, mailbox = pending.pop(answer.request_id)
                    ledger.stored[envelope_id] = mailbox
                else:  # the database is away: not stored, as the client is told
                    assert isinstance(answer, Error), answer
                    ledger.refused[answer.code.name] += 1
                    pending.pop(answer.request_id)
            await asyncio.sleep(0)
    finally:
        await client.session.close()


async def load(
    urls: list[str], owners: list[SigningKey], ledger: Ledger, seed: int
) -> list[asyncio.Task[None]]:
    return [
        asyncio.create_task(deposit_forever(url, owners, ledger, random.Random(seed + n)))
        for n, url in enumerate(urls)
    ]


async def stop_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for result in await asyncio.gather(*tasks, return_exceptions=True):
        expected = (asyncio.CancelledError, RelayGone, aiohttp.ClientError, ConnectionError)
        if isinstance(result, BaseException) and not isinstance(result, expected):
            raise result


async def read_back_exactly_once(url: str, owners: list[SigningKey], ledger: Ledger) -> None:
    """Every STORED deposit comes back once, bytes identical; nothing comes that was not sent."""
    seen: Counter[bytes] = Counter()
    for index, owner in enumerate(owners):
        client = await RawClient.connect(url)
        assert await client.auth(owner) == AuthOk()
        while (frame := await client.receive()) != BacklogSent():
            assert isinstance(frame, Envelope), frame
            seen[frame.envelope_id] += 1
            assert ledger.sent[frame.envelope_id] == frame.ciphertext
            assert ledger.stored.get(frame.envelope_id, index) == index
        await client.close()
    doubled = [eid for eid, count in seen.items() if count > 1]
    missing = set(ledger.stored) - set(seen)
    assert not doubled, f"{len(doubled)} envelopes delivered twice"
    assert not missing, f"{len(missing)} STORED deposits lost"


@pytest.mark.slow
async def test_no_stored_deposit_is_lost_when_a_relay_process_is_killed(
    pg_server: PgServer, tmp_path: Path
) -> None:
    seed = time.time_ns()
    rng = random.Random(seed)
    owners = [SigningKey.generate() for _ in range(MAILBOXES)]
    ledger = Ledger()
    async with cluster(pg_server.create_database(), tmp_path) as relays:
        for kill in range(6):
            tasks = await load([r.url for r in relays.relays], owners, ledger, seed + 10 * kill)
            await asyncio.sleep(rng.uniform(0.3, 0.8))
            victim = rng.randrange(PROCESSES)
            relays.relays[victim].process.send_signal(signal.SIGKILL)
            assert await relays.relays[victim].process.wait() == -signal.SIGKILL
            await asyncio.sleep(0.2)  # the others keep storing meanwhile
            await stop_all(tasks)
            await relays.launch(victim)
        assert len(ledger.stored) > 300, f"too little load to mean anything (seed {seed})"
        await read_back_exactly_once(relays.relays[rng.randrange(PROCESSES)].url, owners, ledger)


async def healthz(relay: RelayProcess) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{relay.http}/healthz") as reply:
        return reply.status


@pytest.mark.slow
async def test_relays_ride_out_an_immediate_database_restart(
    own_pg_server: PgServer, tmp_path: Path
) -> None:
    seed = time.time_ns()
    owners = [SigningKey.generate() for _ in range(MAILBOXES)]
    ledger = Ledger()
    async with cluster(own_pg_server.create_database(), tmp_path) as relays:
        urls = [r.url for r in relays.relays]
        tasks = await load(urls, owners, ledger, seed)
        await asyncio.sleep(0.5)
        before = len(ledger.stored)
        await asyncio.to_thread(own_pg_server.stop, "immediate")  # like a crash: no checkpoint
        await asyncio.sleep(1.0)
        assert ledger.refused["STORAGE_FAILED"] > 0
        assert {await healthz(r) for r in relays.relays} == {503}
        await asyncio.to_thread(own_pg_server.start)
        for _ in range(100):  # the relays reconnect by themselves
            if {await healthz(r) for r in relays.relays} == {200} and len(ledger.stored) > before:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        await stop_all(tasks)
        assert {await healthz(r) for r in relays.relays} == {200}
        await read_back_exactly_once(urls[0], owners, ledger)
        # Live delivery across processes works again: the listeners reconnected too.
        owner = SigningKey.generate()
        reader = await RawClient.connect(urls[2])
        assert await reader.auth(owner) == AuthOk()
        assert await reader.receive() == BacklogSent()
        depositor = await RawClient.connect(urls[1])
        for _ in range(50):
            answer = await depositor.deposit(owner.public_key, b"after the restart")
            if isinstance(answer, Stored):
                break
            await asyncio.sleep(0.1)
        got = await reader.receive()
        assert isinstance(got, Envelope)
        assert got.ciphertext == b"after the restart"
        await reader.close()
        await depositor.close()
