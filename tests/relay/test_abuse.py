"""The relay under abuse, on loopback: slow readers, idle sockets, many addresses, expired
envelopes and a failing store. Memory is measured as held state, never as time."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from pigeon.crypto.signing import SigningKey
from pigeon.relay.connection import LIVE_QUEUE_BYTES
from pigeon.relay.gate import REFUSED_HELD_MAX
from pigeon.relay.protocol import (
    Auth,
    AuthOk,
    BacklogSent,
    Challenge,
    Deposit,
    Envelope,
    Error,
    ErrorCode,
    Stored,
    decode_server_frame,
    envelope_id_of,
    read_signed_message,
)
from pigeon.relay.server import RunningRelay
from pigeon.relay.storage import DB_FILE_NAME
from tests.relay.conftest import StartRelay, WallClock
from tests.relay.rawclient import RawClient
from tests.relay.rawsocket import RawSocket

ENVELOPE_BYTES = 16 * 1024


async def open_slow_reader(relay: RunningRelay, owner: SigningKey) -> RawSocket:
    """An authenticated reader with a 4 KiB receive window, past its (empty) backlog."""
    reader = await RawSocket.open(relay.host, relay.port, receive_buffer=4096)
    await reader.upgrade()
    challenge = await reader.receive()
    assert isinstance(challenge, Challenge)
    ts = int(time.time() * 1000)
    message = read_signed_message(challenge.challenge, relay.url, ts, owner.public_key)
    await reader.send(Auth(owner.public_key, ts, owner.sign(message)))
    assert await reader.receive() == AuthOk()
    assert await reader.receive() == BacklogSent()
    return reader


async def test_a_reader_that_does_not_read_holds_bounded_memory_and_loses_nothing(
    start: StartRelay,
) -> None:
    relay = await start()
    owner = SigningKey.generate()
    reader = await open_slow_reader(relay, owner)
    depositor = await RawClient.connect(relay.url)
    sent = [bytes([n % 256, n // 256]) * (ENVELOPE_BYTES // 2) for n in range(400)]  # 6.5 MB
    most_held = 0
    for n, ciphertext in enumerate(sent):  # the reader reads nothing meanwhile
        await depositor.send(Deposit(n + 1, owner.public_key, ciphertext))
        assert isinstance(await depositor.receive(), Stored)
        most_held = max(most_held, relay.relay.gauges().live_queued_bytes)
    assert most_held <= LIVE_QUEUE_BYTES
    got = []
    while len(got) < len(sent):  # now it reads: every envelope comes, in order, once
        frame = await reader.receive()
        assert isinstance(frame, Envelope), frame
        got.append(frame.envelope_id)
    assert got == [envelope_id_of(ciphertext) for ciphertext in sent]
    assert relay.relay.metrics.live_queue_overflows_total >= 1  # it did drop, and page
    await depositor.close()
    reader.close()


async def test_an_expired_envelope_is_not_served_before_the_purge(
    start: StartRelay, wall_clock: WallClock
) -> None:
    relay = await start(max_age_s=3600, purge_interval_s=10_000)
    owner = SigningKey.generate()
    client = await RawClient.connect(relay.url)
    await client.deposit(owner.public_key, b"old")
    wall_clock.advance(3601)
    await client.deposit(owner.public_key, b"young")
    reader = await RawClient.connect(relay.url)
    assert await reader.auth(owner, timestamp_ms=int(wall_clock() * 1000)) == AuthOk()
    assert await reader.receive() == Envelope(envelope_id_of(b"young"), b"young")
    assert await reader.receive() == BacklogSent()
    assert relay.relay.store.stats().envelopes == 2  # the purge has not run
    await client.close()
    await reader.close()


async def healthz(relay: RunningRelay) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://{relay.host}:{relay.port}/healthz") as response,
    ):
        return response.status


@pytest.mark.parametrize("relay_store", ["sqlite"], indirect=True)  # its file
async def test_healthz_fails_while_commits_fail_and_recovers(
    start: StartRelay, tmp_path: Path
) -> None:
    data_dir = tmp_path / "failing"
    relay = await start(data_dir=data_dir)
    key = SigningKey.generate().public_key
    client = await RawClient.connect(relay.url)
    assert isinstance(await client.deposit(key, b"before"), Stored)
    assert await healthz(relay) == 200
    saboteur = sqlite3.connect(data_dir / DB_FILE_NAME)  # every insert now aborts its commit
    saboteur.execute(
        "CREATE TRIGGER fail BEFORE INSERT ON envelopes BEGIN SELECT RAISE(ABORT, 'x'); END"
    )
    saboteur.commit()
    answer = await client.deposit(key, b"during")
    assert isinstance(answer, Error)
    assert answer.code is ErrorCode.STORAGE_FAILED
    assert await healthz(relay) == 503
    saboteur.execute("DROP TRIGGER fail")
    saboteur.commit()
    saboteur.close()
    assert isinstance(await client.deposit(key, b"after"), Stored)
    assert await healthz(relay) == 200
    await client.close()


async def refusal_of(url: str, headers: dict[str, str] | None = None) -> Error:
    """The ERROR a refused WebSocket gets first."""
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url, headers=headers or {})
        message = await ws.receive(timeout=5)
        await ws.close()
    frame = decode_server_frame(message.data)
    assert isinstance(frame, Error), frame
    return frame


async def test_sockets_that_never_upgrade_are_counted_and_closed(start: StartRelay) -> None:
    relay = await start(max_connections_per_ip=5, handshake_timeout_s=0.5)
    idle = [await RawSocket.open(relay.host, relay.port) for _ in range(20)]
    await idle[0].send_raw(b"GET /v1 HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    await wait_until(lambda: relay.relay.admission.connections == 5)
    refused = await refusal_of(relay.url)  # the five idle ones hold the address's slots
    assert refused == Error(0, ErrorCode.TOO_MANY_IP_CONNECTIONS)
    assert relay.relay.server.refused_held <= REFUSED_HELD_MAX
    for sock in idle:  # none of them may linger past the handshake deadline
        await sock.wait_closed_by_peer()
        sock.close()
    await wait_until(lambda: relay.relay.admission.connections == 0)
    client = await RawClient.connect(relay.url)  # a WebSocket is not cut by the deadline
    await asyncio.sleep(1.0)
    assert isinstance(await client.deposit(SigningKey.generate().public_key, b"x"), Stored)
    await client.close()


async def test_address_state_stays_bounded_under_many_ipv6_prefixes(start: StartRelay) -> None:
    relay = await start(behind_proxy=True, max_tracked_ips=8)
    most_tracked = 0
    codes = []
    for n in range(30):
        address = f"2001:db8:{n:x}::1"  # a /64 of its own each time
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(relay.url, headers={"X-Forwarded-For": address})
            frame = decode_server_frame((await ws.receive(timeout=5)).data)
            codes.append(frame.code if isinstance(frame, Error) else None)
            await ws.close()
        most_tracked = max(most_tracked, relay.relay.admission.tracked_ips())
    assert most_tracked <= 8
    assert codes[:8] == [None] * 8
    assert ErrorCode.TOO_MANY_CONNECTIONS in codes[8:]


async def test_a_refusal_at_the_connection_cap_makes_no_address_state(start: StartRelay) -> None:
    relay = await start(behind_proxy=True, max_connections=1)
    held = await RawClient.connect(relay.url)
    before = relay.relay.admission.tracked_ips()
    for n in range(10):
        refused = await refusal_of(relay.url, {"X-Forwarded-For": f"2001:db8:{n:x}::1"})
        assert refused.code is ErrorCode.TOO_MANY_CONNECTIONS
    assert relay.relay.admission.tracked_ips() == before
    await held.close()


async def wait_until(predicate: Callable[[], bool]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in 10 s")


async def test_a_reader_that_does_not_read_cannot_hold_up_a_shutdown(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    reader = await open_slow_reader(relay, owner)
    depositor = await RawClient.connect(relay.url)
    for n in range(200):  # far more than the reader's socket buffers take
        await depositor.send(Deposit(n + 1, owner.public_key, bytes([n]) * ENVELOPE_BYTES))
        assert isinstance(await depositor.receive(), Stored)
    await asyncio.wait_for(relay.aclose(), 30)  # it hung here for good before
    reader.close()
    await depositor.close()
