"""RelayClient against a real relay on 127.0.0.1: deposits, reads, acks, dedup and typed errors."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from pigeon.crypto.signing import SigningKey
from pigeon.relay.config import RelayConfig
from pigeon.relay.limits import Limits
from pigeon.relay.protocol import Error, ErrorCode, envelope_id_of
from pigeon.relay.server import RunningRelay, start_relay
from pigeon.transport.base import Broken, Busy, Closed
from pigeon.transport.relay_client import (
    Backoff,
    RecentIds,
    RelayAuthRefused,
    RelayBroken,
    RelayBusy,
    RelayClient,
    RelayClosed,
    RelayMisbehaved,
    RelayRefused,
    error_for,
    has_default_route,
    uplink_status,
)

StartRelay = Callable[..., Awaitable[RunningRelay]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[StartRelay]:
    running: list[RunningRelay] = []

    async def _start(port: int = 0, **limits: Any) -> RunningRelay:
        config = RelayConfig(
            listen=f"127.0.0.1:{port}",
            data_dir=str(tmp_path / "relay"),
            limits=dataclasses.replace(Limits(), **limits),
        )
        relay = await start_relay(config)
        running.append(relay)
        return relay

    yield _start
    for relay in running:
        await relay.aclose()


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., RelayClient]]:
    made: list[RelayClient] = []

    def _make(url: str, **kwargs: Any) -> RelayClient:
        kwargs.setdefault("backoff_base_s", 0.01)
        kwargs.setdefault("backoff_max_s", 0.05)
        kwargs.setdefault("rng", random.Random(1))
        client = RelayClient(url, **kwargs)
        made.append(client)
        return client

    yield _make
    for client in made:
        await client.aclose()


def eid(ciphertext: bytes) -> bytes:
    return envelope_id_of(ciphertext)


class Inbox:
    """An on_envelope handler that records what it was given."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, bytes]] = []
        self.changed = asyncio.Event()

    async def __call__(self, envelope_id: bytes, ciphertext: bytes) -> None:
        self.received.append((envelope_id, ciphertext))
        self.changed.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.received) < count:
                self.changed.clear()
                await self.changed.wait()


async def wait_until(predicate: Callable[[], bool]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in 5 s")


def start_reading(client: RelayClient, key: SigningKey, inbox: Inbox) -> asyncio.Task[None]:
    return asyncio.create_task(client.read(key.public_key, key.sign, inbox))


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises((asyncio.CancelledError, RelayBroken)):
        await task


async def test_deposit_then_read_and_ack(start: StartRelay, clients: Any) -> None:
    relay = await start()
    owner = SigningKey.generate()
    sender = clients(relay.url)
    for n in range(3):
        await sender.deposit(owner.public_key, b"msg%d" % n)
    inbox = Inbox()
    reader = clients(relay.url)
    task = start_reading(reader, owner, inbox)
    await inbox.wait_for(3)
    assert inbox.received == [(eid(b"msg%d" % n), b"msg%d" % n) for n in range(3)]
    await wait_until(lambda: relay.relay.store.stats().envelopes == 0)
    await sender.deposit(owner.public_key, b"live")
    await inbox.wait_for(4)
    assert inbox.received[-1] == (eid(b"live"), b"live")
    await stop(task)


async def test_caught_up_once_the_stored_backlog_is_handled_and_acked(
    start: StartRelay, clients: Any
) -> None:
    relay = await start()
    owner = SigningKey.generate()
    sender = clients(relay.url)
    for n in range(3):
        await sender.deposit(owner.public_key, b"msg%d" % n)
    inbox = Inbox()
    reader = clients(relay.url)
    assert not reader.caught_up
    task = start_reading(reader, owner, inbox)
    await wait_until(lambda: reader.caught_up)
    assert len(inbox.received) == 3  # every stored envelope was handled first
    await wait_until(lambda: relay.relay.store.stats().envelopes == 0)  # and acknowledged
    await stop(task)
    await reader.aclose()
    assert not reader.caught_up


async def test_one_connection_deposits_and_reads(start: StartRelay, clients: Any) -> None:
    relay = await start()
    owner = SigningKey.generate()
    client = clients(relay.url)
    inbox = Inbox()
    task = start_reading(client, owner, inbox)
    await wait_until(lambda: relay.relay.gauges().readers == 1)
    await client.deposit(owner.public_key, b"note to self")
    await inbox.wait_for(1)
    assert relay.relay.gauges().connections == 1
    await stop(task)


async def test_ack_waits_for_the_handler(start: StartRelay, clients: Any) -> None:
    relay = await start()
    owner = SigningKey.generate()
    await clients(relay.url).deposit(owner.public_key, b"x")
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_store(envelope_id: bytes, ciphertext: bytes) -> None:
        entered.set()
        await release.wait()

    reader = clients(relay.url)
    task = asyncio.create_task(reader.read(owner.public_key, owner.sign, slow_store))
    await asyncio.wait_for(entered.wait(), 5)
    await asyncio.sleep(0.2)
    assert relay.relay.store.stats().envelopes == 1
    release.set()
    await wait_until(lambda: relay.relay.store.stats().envelopes == 0)
    await stop(task)


async def test_a_failing_handler_leaves_the_envelope_for_next_time(
    start: StartRelay, clients: Any
) -> None:
    relay = await start()
    owner = SigningKey.generate()
    await clients(relay.url).deposit(owner.public_key, b"x")

    async def disk_full(envelope_id: bytes, ciphertext: bytes) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        await clients(relay.url).read(owner.public_key, owner.sign, disk_full)
    inbox = Inbox()
    task = start_reading(clients(relay.url), owner, inbox)
    await inbox.wait_for(1)
    assert inbox.received == [(eid(b"x"), b"x")]
    await stop(task)


async def test_redelivered_ids_reach_the_handler_once(start: StartRelay, clients: Any) -> None:
    relay = await start()
    owner = SigningKey.generate()
    sender = clients(relay.url)
    inbox = Inbox()
    task = start_reading(clients(relay.url), owner, inbox)
    await sender.deposit(owner.public_key, b"x")
    await inbox.wait_for(1)
    await wait_until(lambda: relay.relay.store.stats().envelopes == 0)
    await sender.deposit(owner.public_key, b"x")  # the relay delivers it again
    await sender.deposit(owner.public_key, b"y")
    await inbox.wait_for(2)
    await wait_until(lambda: relay.relay.store.stats().envelopes == 0)  # acked all the same
    assert [envelope_id for envelope_id, _ in inbox.received] == [eid(b"x"), eid(b"y")]
    await stop(task)


async def test_dedup_memory_is_bounded(start: StartRelay, clients: Any) -> None:
    relay = await start()
    owner = SigningKey.generate()
    sender = clients(relay.url)
    inbox = Inbox()
    task = start_reading(clients(relay.url, dedup_ids=1), owner, inbox)
    for n, expected in ((1, 1), (2, 2), (1, 3)):
        await sender.deposit(owner.public_key, b"x%d" % n)
        await inbox.wait_for(expected)
        await wait_until(lambda: relay.relay.store.stats().envelopes == 0)
    expected = [eid(b"x1"), eid(b"x2"), eid(b"x1")]
    assert [envelope_id for envelope_id, _ in inbox.received] == expected
    await stop(task)


async def test_refusals_are_typed(start: StartRelay, clients: Any) -> None:
    relay = await start(max_envelope_bytes=10, mailbox_max_envelopes=1)
    client = clients(relay.url)
    key = SigningKey.generate().public_key
    with pytest.raises(RelayRefused) as too_large:
        await client.deposit(key, bytes(11))
    assert too_large.value.code is ErrorCode.ENVELOPE_TOO_LARGE
    with pytest.raises(RelayRefused) as bad_key:
        await client.deposit(bytes([1]) + bytes(31), b"x")
    assert bad_key.value.code is ErrorCode.BAD_KEY
    await client.deposit(key, b"x")
    with pytest.raises(RelayBusy) as full:
        await client.deposit(key, b"y")
    assert full.value.code is ErrorCode.MAILBOX_FULL
    assert isinstance(full.value, Busy)
    await client.deposit(key, b"x")  # the link survived every refusal


async def test_rate_limit_is_busy_with_a_retry_time(start: StartRelay, clients: Any) -> None:
    relay = await start(connection_frame_burst=1, connection_frames_per_s=0.5)
    client = clients(relay.url)
    key = SigningKey.generate().public_key
    await client.deposit(key, b"x")
    with pytest.raises(RelayBusy) as limited:
        await client.deposit(key, b"y")
    assert limited.value.code is ErrorCode.RATE_LIMITED
    assert 1.0 < limited.value.retry_after_s <= 2.0


async def test_wrong_signer_is_auth_refused(start: StartRelay, clients: Any) -> None:
    relay = await start()
    owner, thief = SigningKey.generate(), SigningKey.generate()
    with pytest.raises(RelayAuthRefused) as refused:
        await clients(relay.url).read(owner.public_key, thief.sign, Inbox())
    assert refused.value.code is ErrorCode.BAD_SIGNATURE


async def test_signing_for_a_url_the_relay_does_not_serve_is_refused(
    start: StartRelay, clients: Any
) -> None:
    relay = await start()
    owner = SigningKey.generate()
    aliased = relay.url.replace("127.0.0.1", "localhost")
    with pytest.raises(RelayAuthRefused):
        await clients(aliased).read(owner.public_key, owner.sign, Inbox())


async def test_relay_shutdown_breaks_the_read(start: StartRelay, clients: Any) -> None:
    relay = await start()
    owner = SigningKey.generate()
    task = start_reading(clients(relay.url), owner, Inbox())
    await wait_until(lambda: relay.relay.gauges().readers == 1)
    await relay.aclose()
    with pytest.raises(RelayBroken) as broken:
        await task
    assert broken.value.code is ErrorCode.SHUTTING_DOWN
    assert isinstance(broken.value, Broken)


async def test_a_second_reader_breaks_the_first(start: StartRelay, clients: Any) -> None:
    relay = await start()
    owner = SigningKey.generate()
    first = start_reading(clients(relay.url), owner, Inbox())
    await wait_until(lambda: relay.relay.gauges().readers == 1)
    second = start_reading(clients(relay.url), owner, Inbox())
    with pytest.raises(RelayBroken) as broken:
        await first
    assert broken.value.code is ErrorCode.READER_REPLACED
    await stop(second)


async def test_read_forever_survives_a_relay_restart(start: StartRelay, clients: Any) -> None:
    relay = await start()
    port = relay.port
    owner = SigningKey.generate()
    inbox = Inbox()
    reader = clients(relay.url, connect_attempts=50)
    task = asyncio.create_task(reader.read_forever(owner.public_key, owner.sign, inbox))
    await wait_until(lambda: relay.relay.gauges().readers == 1)
    await relay.aclose()
    relay = await start(port=port)
    await clients(relay.url).deposit(owner.public_key, b"after restart")
    await inbox.wait_for(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_unreachable_relay_is_broken_after_backoff(clients: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = clients(f"ws://127.0.0.1:{port}/v1", connect_attempts=3)
    with pytest.raises(RelayBroken):
        await client.connect()
    assert not client.connected


async def test_connection_cap_is_busy(start: StartRelay, clients: Any) -> None:
    relay = await start(max_connections=1)
    holder = clients(relay.url)
    await holder.connect()
    with pytest.raises(RelayBusy) as busy:
        await clients(relay.url, connect_attempts=2).connect()
    assert busy.value.code is ErrorCode.TOO_MANY_CONNECTIONS


async def test_closed_client_raises_closed(start: StartRelay, clients: Any) -> None:
    relay = await start()
    client = clients(relay.url)
    await client.connect()
    assert client.connected
    await client.aclose()
    await client.aclose()
    with pytest.raises(RelayClosed):
        await client.deposit(SigningKey.generate().public_key, b"x")
    assert issubclass(RelayClosed, Closed)


async def test_a_relay_sending_garbage_is_misbehaving(clients: Any) -> None:
    async def garbage(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_bytes(b"\x09\x09garbage")
        await ws.receive()
        return ws

    app = web.Application()
    app.router.add_get("/v1", garbage)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        with pytest.raises(RelayMisbehaved):
            await clients(f"ws://{host}:{port}/v1", connect_attempts=1).connect()
    finally:
        await runner.cleanup()


def test_backoff_is_jittered_exponential_and_resets() -> None:
    backoff = Backoff(base_s=1.0, max_s=8.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(6)]
    for n, delay in enumerate(delays):
        assert 0.0 <= delay <= min(8.0, 2.0**n)
    assert len(set(delays)) == len(delays)
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_recent_ids_forget_the_oldest() -> None:
    recent = RecentIds(2)
    for envelope_id in (b"a", b"b", b"a", b"c"):
        recent.add(envelope_id)
    assert b"a" in recent
    assert b"c" in recent
    assert b"b" not in recent
    assert len(recent) == 2


@pytest.mark.parametrize(
    ("code", "during_auth", "kind"),
    [
        (ErrorCode.MAILBOX_FULL, False, RelayBusy),
        (ErrorCode.STORAGE_FAILED, False, RelayBusy),
        (ErrorCode.SHUTTING_DOWN, False, RelayBroken),
        (ErrorCode.BAD_SIGNATURE, True, RelayAuthRefused),
        (ErrorCode.BAD_KEY, False, RelayRefused),
        (ErrorCode.MALFORMED_FRAME, False, RelayRefused),
    ],
)
def test_error_mapping(code: ErrorCode, during_auth: bool, kind: type) -> None:
    error = error_for(Error(1, code, 2500), during_auth)
    assert type(error) is kind
    if isinstance(error, RelayBusy):
        assert error.retry_after_s == 2.5


async def test_two_reads_on_one_connection_are_refused_locally(
    start: StartRelay, clients: Any
) -> None:
    relay = await start()
    owner = SigningKey.generate()
    client = clients(relay.url)
    task = start_reading(client, owner, Inbox())
    await wait_until(lambda: relay.relay.gauges().readers == 1)
    with pytest.raises(RuntimeError):
        await client.read(owner.public_key, owner.sign, Inbox())
    assert not task.done()
    await stop(task)


IPV4_HEADER = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
)
IPV4_DEFAULT = "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
IPV4_LAN = "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
ZERO = "0" * 32
IPV6_DEFAULT = (
    f"{ZERO} 00 {ZERO} 00 fd000000000000000000000000000001 00000400 00000002 0 00000003 eth0\n"
)
IPV6_UNREACHABLE = f"{ZERO} 00 {ZERO} 00 {ZERO} ffffffff 00000001 0 00200200 lo\n"


@pytest.mark.parametrize(
    ("ipv4", "ipv6", "expected"),
    [
        (IPV4_HEADER + IPV4_LAN + IPV4_DEFAULT, "", True),
        (IPV4_HEADER + IPV4_LAN, IPV6_DEFAULT, True),
        (IPV4_HEADER + IPV4_LAN, IPV6_UNREACHABLE, False),
        (IPV4_HEADER + IPV4_DEFAULT.replace("0003", "0002"), "", False),  # route not up
        ("", "", False),
        ("garbage\nmore garbage\n", "x y z", False),
    ],
)
def test_default_route_detection(ipv4: str, ipv6: str, expected: bool) -> None:
    assert has_default_route(ipv4, ipv6) is expected


async def test_uplink_status_reports_route_and_connected_relays(
    start: StartRelay, clients: Any, tmp_path: Path
) -> None:
    relay = await start()
    up, down = clients(relay.url), clients("ws://127.0.0.1:9/v1")
    await up.connect()
    (tmp_path / "route").write_text(IPV4_HEADER + IPV4_DEFAULT)
    status = uplink_status([up, down], tmp_path)
    assert status.default_route
    assert status.connected_relays == (relay.url,)
    assert status.online
    offline = uplink_status([down], tmp_path / "missing")
    assert not offline.default_route
    assert not offline.online
