"""The relay served on 127.0.0.1 and driven by real WebSocket clients, frame by frame."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from pigeon.crypto.signing import SigningKey
from pigeon.relay.protocol import (
    CLOSE_CODE_BASE,
    Acked,
    AuthOk,
    BacklogSent,
    Deposit,
    Envelope,
    Error,
    ErrorCode,
    Stored,
    decode_server_frame,
    envelope_id_of,
)
from pigeon.relay.storage import DB_FILE_NAME
from tests.relay.conftest import StartRelay, WallClock
from tests.relay.rawclient import RawClient, expect_closed

SMALL_ORDER_KEY = bytes([1]) + bytes(31)


def eid(ciphertext: bytes) -> bytes:
    return envelope_id_of(ciphertext)


def envelope(ciphertext: bytes) -> Envelope:
    return Envelope(envelope_id_of(ciphertext), ciphertext)


async def read_backlog(client: RawClient, count: int) -> list[Envelope]:
    """The `count` stored envelopes a new reader gets, and then BACKLOG_SENT."""
    envelopes = []
    for _ in range(count):
        frame = await client.receive()
        assert isinstance(frame, Envelope), frame
        envelopes.append(frame)
    assert await client.receive() == BacklogSent()
    return envelopes


async def open_reader(url: str, key: SigningKey, timestamp_ms: int | None = None) -> RawClient:
    reader = await RawClient.connect(url)
    assert await reader.auth(key, timestamp_ms=timestamp_ms) == AuthOk()
    return reader


async def test_deposit_then_read_delivers_in_order(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    depositor = await RawClient.connect(relay.url)
    for n in range(3):
        answer = await depositor.deposit(owner.public_key, b"ct%d" % n)
        assert isinstance(answer, Stored)
    reader = await open_reader(relay.url, owner)
    got = await read_backlog(reader, 3)
    assert [e.ciphertext for e in got] == [b"ct%d" % n for n in range(3)]
    assert [e.envelope_id for e in got] == [eid(e.ciphertext) for e in got]
    await depositor.close()
    await reader.close()


async def test_stored_answers_name_their_request(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    client = await RawClient.connect(relay.url)
    await client.send(Deposit(7, owner.public_key, b"a"))
    await client.send(Deposit(9, owner.public_key, b"b"))
    answers = {await client.receive(), await client.receive()}
    assert answers == {Stored(7), Stored(9)}
    await client.close()


async def test_live_delivery_to_a_connected_reader(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    reader = await open_reader(relay.url, owner)
    assert await read_backlog(reader, 0) == []
    depositor = await RawClient.connect(relay.url)
    assert isinstance(await depositor.deposit(owner.public_key, b"live"), Stored)
    assert await reader.receive() == envelope(b"live")
    await depositor.close()
    await reader.close()


async def test_reader_can_deposit_on_its_own_connection(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    reader = await open_reader(relay.url, owner)
    await read_backlog(reader, 0)
    await reader.send(Deposit(3, owner.public_key, b"self"))
    frames = [await reader.receive(), await reader.receive()]
    assert Stored(3) in frames
    assert envelope(b"self") in frames
    await reader.close()


async def test_many_stored_envelopes_are_paged_out(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    depositor = await RawClient.connect(relay.url)
    for n in range(150):
        await depositor.send(Deposit(n + 1, owner.public_key, b"x%d" % n))
    for _ in range(150):
        assert isinstance(await depositor.receive(), Stored)
    reader = await open_reader(relay.url, owner)
    got = await read_backlog(reader, 150)
    assert [e.envelope_id for e in got] == [eid(b"x%d" % n) for n in range(150)]
    await depositor.close()
    await reader.close()


async def test_unacked_envelopes_come_again_and_acked_never(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    depositor = await RawClient.connect(relay.url)
    for n in range(3):
        await depositor.deposit(owner.public_key, b"m%d" % n)
    reader = await open_reader(relay.url, owner)
    await read_backlog(reader, 3)
    request_id = await reader.ack(eid(b"m0"), eid(b"m2"))
    assert await reader.receive() == Acked(request_id)
    await reader.close()

    reader = await open_reader(relay.url, owner)
    assert [e.envelope_id for e in await read_backlog(reader, 1)] == [eid(b"m1")]
    request_id = await reader.ack(eid(b"m1"))
    assert await reader.receive() == Acked(request_id)
    await reader.close()

    reader = await open_reader(relay.url, owner)
    await read_backlog(reader, 0)
    await depositor.deposit(owner.public_key, b"next")
    assert (await reader.receive()).envelope_id == eid(b"next")  # type: ignore[union-attr]
    await depositor.close()
    await reader.close()


async def test_across_a_restart_unacked_stay_and_acked_stay_gone(
    start: StartRelay, tmp_path: Path
) -> None:
    relay = await start(data_dir=tmp_path / "kept")
    owner = SigningKey.generate()
    depositor = await RawClient.connect(relay.url)
    await depositor.deposit(owner.public_key, b"keep")
    await depositor.deposit(owner.public_key, b"gone")
    reader = await open_reader(relay.url, owner)
    await read_backlog(reader, 2)
    request_id = await reader.ack(eid(b"gone"))
    assert await reader.receive() == Acked(request_id)
    await depositor.close()
    await reader.close()
    await relay.aclose()

    relay = await start(data_dir=tmp_path / "kept")
    reader = await open_reader(relay.url, owner)
    assert await read_backlog(reader, 1) == [envelope(b"keep")]
    await reader.close()


async def test_duplicate_deposit_is_stored_once(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    depositor = await RawClient.connect(relay.url)
    assert isinstance(await depositor.deposit(owner.public_key, b"a"), Stored)
    assert isinstance(await depositor.deposit(owner.public_key, b"a"), Stored)
    assert relay.relay.store.stats().envelopes == 1
    await depositor.close()


async def test_ack_only_deletes_from_the_readers_own_mailbox(start: StartRelay) -> None:
    relay = await start()
    alice, bob = SigningKey.generate(), SigningKey.generate()
    depositor = await RawClient.connect(relay.url)
    await depositor.deposit(alice.public_key, b"for alice")
    reader = await open_reader(relay.url, bob)
    await read_backlog(reader, 0)
    request_id = await reader.ack(eid(b"for alice"))
    assert await reader.receive() == Acked(request_id)
    assert relay.relay.store.stats().envelopes == 1
    await depositor.close()
    await reader.close()


async def test_a_second_reader_replaces_the_first(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    first = await open_reader(relay.url, owner)
    await read_backlog(first, 0)
    second = await open_reader(relay.url, owner)
    await read_backlog(second, 0)
    assert await first.receive() == Error(0, ErrorCode.READER_REPLACED)
    assert await expect_closed(first.ws) == CLOSE_CODE_BASE + ErrorCode.READER_REPLACED
    depositor = await RawClient.connect(relay.url)
    await depositor.deposit(owner.public_key, b"to second")
    assert await second.receive() == envelope(b"to second")
    for client in (first, second, depositor):
        await client.close()


# --- authentication failures --------------------------------------------------------------


async def assert_auth_refused(client: RawClient, frame: object, code: ErrorCode) -> None:
    await client.send(frame)  # type: ignore[arg-type]
    assert await client.receive() == Error(0, code)
    assert await expect_closed(client.ws) == CLOSE_CODE_BASE + code
    await client.close()


async def test_signature_by_another_key_is_refused(start: StartRelay) -> None:
    relay = await start()
    owner, thief = SigningKey.generate(), SigningKey.generate()
    client = await RawClient.connect(relay.url)
    forged = client.auth_frame(thief)
    forged = type(forged)(owner.public_key, forged.timestamp_ms, forged.signature)
    await assert_auth_refused(client, forged, ErrorCode.BAD_SIGNATURE)


async def test_small_order_key_is_refused(start: StartRelay) -> None:
    relay = await start()
    client = await RawClient.connect(relay.url)
    frame = client.auth_frame(SigningKey.generate())
    # The classic forgery (R = identity, S = 0) that OpenSSL accepts under this key.
    forged = type(frame)(SMALL_ORDER_KEY, frame.timestamp_ms, SMALL_ORDER_KEY + bytes(32))
    await assert_auth_refused(client, forged, ErrorCode.BAD_KEY)


async def test_off_curve_key_is_refused(start: StartRelay) -> None:
    relay = await start()
    client = await RawClient.connect(relay.url)
    frame = client.auth_frame(SigningKey.generate())
    bad = type(frame)(b"\xff" * 32, frame.timestamp_ms, frame.signature)
    await assert_auth_refused(client, bad, ErrorCode.BAD_KEY)


async def test_answer_replayed_on_another_connection_is_refused(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    first = await RawClient.connect(relay.url)
    answer = first.auth_frame(owner)
    await first.send(answer)
    assert await first.receive() == AuthOk()
    await first.close()
    second = await RawClient.connect(relay.url)
    await assert_auth_refused(second, answer, ErrorCode.BAD_SIGNATURE)


async def test_signature_over_another_connections_challenge_is_refused(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    first = await RawClient.connect(relay.url)
    second = await RawClient.connect(relay.url)
    await assert_auth_refused(
        second, second.auth_frame(owner, challenge=first.challenge), ErrorCode.BAD_SIGNATURE
    )
    await first.close()


async def test_second_auth_on_a_connection_is_refused(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    client = await RawClient.connect(relay.url)
    answer = client.auth_frame(owner)
    await client.send(answer)
    assert await client.receive() == AuthOk()
    await read_backlog(client, 0)
    await assert_auth_refused(client, answer, ErrorCode.CHALLENGE_USED)


async def test_failed_auth_burns_the_challenge(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    client = await RawClient.connect(relay.url)
    await client.send(client.auth_frame(owner, url="ws://elsewhere.example/v1"))
    assert await client.receive() == Error(0, ErrorCode.BAD_SIGNATURE)
    await client.close()


async def test_signature_for_another_relay_url_is_refused(start: StartRelay) -> None:
    relay = await start()
    client = await RawClient.connect(relay.url)
    frame = client.auth_frame(SigningKey.generate(), url="wss://evil.example/v1")
    await assert_auth_refused(client, frame, ErrorCode.BAD_SIGNATURE)


async def test_old_timestamp_is_refused(start: StartRelay) -> None:
    relay = await start(max_clock_skew_s=300)
    client = await RawClient.connect(relay.url)
    old_ms = int((relay.relay.wall_clock() - 301) * 1000)
    frame = client.auth_frame(SigningKey.generate(), timestamp_ms=old_ms)
    await assert_auth_refused(client, frame, ErrorCode.CLOCK_SKEW)


async def test_old_challenge_is_refused(start: StartRelay, wall_clock: WallClock) -> None:
    relay = await start(challenge_ttl_s=60)
    client = await RawClient.connect(relay.url)
    wall_clock.advance(61)
    now_ms = int(wall_clock() * 1000)
    frame = client.auth_frame(SigningKey.generate(), timestamp_ms=now_ms)
    await assert_auth_refused(client, frame, ErrorCode.CHALLENGE_EXPIRED)


async def test_configured_public_url_is_what_readers_sign(start: StartRelay) -> None:
    relay = await start()
    local_url = relay.url
    relay.relay.urls = ("wss://relay.example.org/v1", "ws://relay.lan/v1")
    owner = SigningKey.generate()
    client = await RawClient.connect(local_url)
    assert await client.auth(owner, url="ws://relay.lan/v1") == AuthOk()
    await client.close()


# --- protocol misuse --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x02", ErrorCode.MALFORMED_FRAME),
        (b"\x01\x01" + bytes(60), ErrorCode.UNSUPPORTED_VERSION),  # a version 1 DEPOSIT
        (b"\x03\x01" + bytes(60), ErrorCode.UNSUPPORTED_VERSION),
        (b"\x01\x7f", ErrorCode.UNSUPPORTED_VERSION),  # the version is checked before the type
        (b"\x02\x7f", ErrorCode.UNEXPECTED_FRAME),
        (b"\x02\x82\x00\x00\x00\x01", ErrorCode.UNEXPECTED_FRAME),  # a relay frame
        (b"\x02\x01" + bytes(4) + bytes(33), ErrorCode.MALFORMED_FRAME),  # request id 0
        (b"\x02\x03" + bytes(4), ErrorCode.MALFORMED_FRAME),  # malformed beats ACK before AUTH
    ],
)
async def test_bad_frames_close_with_a_typed_error(
    start: StartRelay, data: bytes, code: ErrorCode
) -> None:
    relay = await start()
    client = await RawClient.connect(relay.url)
    await client.send_bytes(data)
    assert await client.receive() == Error(0, code)
    assert await expect_closed(client.ws) == CLOSE_CODE_BASE + code
    await client.close()


async def test_text_message_is_unexpected(start: StartRelay) -> None:
    relay = await start()
    client = await RawClient.connect(relay.url)
    await client.ws.send_str("hello")
    assert await client.receive() == Error(0, ErrorCode.UNEXPECTED_FRAME)
    await client.close()


async def test_ack_before_auth_is_unexpected(start: StartRelay) -> None:
    relay = await start()
    client = await RawClient.connect(relay.url)
    await client.ack(eid(b"x"))
    assert await client.receive() == Error(0, ErrorCode.UNEXPECTED_FRAME)  # fatal: request id 0
    assert await expect_closed(client.ws) == CLOSE_CODE_BASE + ErrorCode.UNEXPECTED_FRAME
    await client.close()


async def test_deposit_to_a_small_order_key_is_refused_and_the_link_stays(
    start: StartRelay,
) -> None:
    relay = await start()
    client = await RawClient.connect(relay.url)
    answer = await client.deposit(SMALL_ORDER_KEY, b"x")
    assert isinstance(answer, Error)
    assert answer.code is ErrorCode.BAD_KEY
    assert isinstance(await client.deposit(SigningKey.generate().public_key, b"x"), Stored)
    await client.close()


# --- limits ------------------------------------------------------------------------------


async def test_envelope_too_large(start: StartRelay) -> None:
    relay = await start(max_envelope_bytes=100)
    client = await RawClient.connect(relay.url)
    key = SigningKey.generate().public_key
    answer = await client.deposit(key, bytes(101))
    assert isinstance(answer, Error)
    assert answer.code is ErrorCode.ENVELOPE_TOO_LARGE
    assert isinstance(await client.deposit(key, bytes(100)), Stored)
    await client.close()


async def test_frame_far_beyond_the_limit_closes_with_1009(start: StartRelay) -> None:
    relay = await start(max_envelope_bytes=100)
    client = await RawClient.connect(relay.url)
    key = SigningKey.generate().public_key
    await client.send(Deposit(1, key, bytes(10_000)))
    assert await expect_closed(client.ws) == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await client.close()


async def test_mailbox_count_quota(start: StartRelay) -> None:
    relay = await start(mailbox_max_envelopes=2)
    client = await RawClient.connect(relay.url)
    full, other = SigningKey.generate().public_key, SigningKey.generate().public_key
    assert isinstance(await client.deposit(full, b"a"), Stored)
    assert isinstance(await client.deposit(full, b"b"), Stored)
    answer = await client.deposit(full, b"c")
    assert isinstance(answer, Error)
    assert answer.code is ErrorCode.MAILBOX_FULL
    assert isinstance(await client.deposit(full, b"b"), Stored)  # a retry is fine
    assert isinstance(await client.deposit(other, b"c"), Stored)  # others unaffected
    await client.close()


async def test_mailbox_byte_quota(start: StartRelay) -> None:
    relay = await start(mailbox_max_bytes=10)
    client = await RawClient.connect(relay.url)
    key = SigningKey.generate().public_key
    assert isinstance(await client.deposit(key, bytes(6)), Stored)
    answer = await client.deposit(key, bytes(5))
    assert isinstance(answer, Error)
    assert answer.code is ErrorCode.MAILBOX_BYTES_FULL
    assert isinstance(await client.deposit(key, bytes(4)), Stored)
    await client.close()


async def test_quota_frees_up_after_ack(start: StartRelay) -> None:
    relay = await start(mailbox_max_envelopes=1)
    owner = SigningKey.generate()
    client = await RawClient.connect(relay.url)
    await client.deposit(owner.public_key, b"a")
    refused = await client.deposit(owner.public_key, b"b")
    assert isinstance(refused, Error)
    reader = await open_reader(relay.url, owner)
    await read_backlog(reader, 1)
    request_id = await reader.ack(eid(b"a"))
    assert await reader.receive() == Acked(request_id)
    assert isinstance(await client.deposit(owner.public_key, b"b"), Stored)
    await client.close()
    await reader.close()


async def test_relay_total_quota(start: StartRelay) -> None:
    relay = await start(relay_max_bytes=10)
    client = await RawClient.connect(relay.url)
    assert isinstance(await client.deposit(SigningKey.generate().public_key, bytes(8)), Stored)
    answer = await client.deposit(SigningKey.generate().public_key, bytes(8))
    assert isinstance(answer, Error)
    assert answer.code is ErrorCode.RELAY_FULL
    await client.close()


async def test_per_connection_rate_limit(start: StartRelay) -> None:
    relay = await start(connection_frame_burst=3, connection_frames_per_s=0.01)
    client = await RawClient.connect(relay.url)
    key = SigningKey.generate().public_key
    for n in range(3):
        assert isinstance(await client.deposit(key, b"x%d" % n), Stored)
    answer = await client.deposit(key, b"x3")
    assert isinstance(answer, Error)
    assert answer.code is ErrorCode.RATE_LIMITED
    assert answer.retry_after_ms > 0
    other = await RawClient.connect(relay.url)  # another connection has its own bucket
    assert isinstance(await other.deposit(key, b"x3"), Stored)
    await client.close()
    await other.close()


async def test_per_ip_deposit_rate_limit(start: StartRelay) -> None:
    relay = await start(ip_deposit_burst=2, ip_deposits_per_s=0.01)
    first, second = await RawClient.connect(relay.url), await RawClient.connect(relay.url)
    key = SigningKey.generate().public_key
    assert isinstance(await first.deposit(key, b"x1"), Stored)
    assert isinstance(await second.deposit(key, b"x2"), Stored)
    answer = await second.deposit(key, b"x3")
    assert isinstance(answer, Error)
    assert answer.code is ErrorCode.IP_RATE_LIMITED
    await first.close()
    await second.close()


async def test_per_ip_byte_rate_limit(start: StartRelay) -> None:
    relay = await start(ip_deposit_byte_burst=100, ip_deposit_bytes_per_s=1)
    client = await RawClient.connect(relay.url)
    key = SigningKey.generate().public_key
    assert isinstance(await client.deposit(key, bytes(60)), Stored)
    answer = await client.deposit(key, b"\x01" * 60)
    assert isinstance(answer, Error)
    assert answer.code is ErrorCode.IP_RATE_LIMITED
    assert 10_000 <= answer.retry_after_ms <= 21_000
    await client.close()


async def refused_connection(url: str) -> tuple[object, int | None]:
    session, ws = await RawClient.connect_raw(url)
    message = await ws.receive(timeout=5)
    frame = decode_server_frame(message.data)
    code = await expect_closed(ws)
    await session.close()
    return frame, code


async def test_connection_cap(start: StartRelay) -> None:
    relay = await start(max_connections=2)
    held = [await RawClient.connect(relay.url) for _ in range(2)]
    frame, code = await refused_connection(relay.url)
    assert frame == Error(0, ErrorCode.TOO_MANY_CONNECTIONS)
    assert code == CLOSE_CODE_BASE + ErrorCode.TOO_MANY_CONNECTIONS
    await held[0].close()
    await asyncio.sleep(0.1)
    again = await RawClient.connect(relay.url)  # a freed slot is usable
    for client in (again, held[1]):
        await client.close()


async def test_per_ip_connection_cap(start: StartRelay) -> None:
    relay = await start(max_connections_per_ip=1)
    held = await RawClient.connect(relay.url)
    frame, _ = await refused_connection(relay.url)
    assert frame == Error(0, ErrorCode.TOO_MANY_IP_CONNECTIONS)
    key = SigningKey.generate().public_key
    assert isinstance(await held.deposit(key, b"x"), Stored)  # the first is unaffected
    await held.close()


async def test_per_ip_connect_rate(start: StartRelay) -> None:
    relay = await start(ip_connect_burst=2, ip_connects_per_s=0.01)
    for _ in range(2):
        client = await RawClient.connect(relay.url)
        await client.close()
    frame, _ = await refused_connection(relay.url)
    assert isinstance(frame, Error)
    assert frame.code is ErrorCode.CONNECT_RATE_LIMITED
    assert frame.retry_after_ms > 0


async def test_relay_busy_when_the_writer_queue_is_full(start: StartRelay) -> None:
    relay = await start(max_queued_writes=1)
    client = await RawClient.connect(relay.url)
    key = SigningKey.generate().public_key
    for n in range(20):
        await client.send(Deposit(n + 1, key, b"x%d" % n))
    answers = [await client.receive() for _ in range(20)]
    busy = [a for a in answers if isinstance(a, Error)]
    assert busy
    assert all(a.code is ErrorCode.RELAY_BUSY for a in busy)
    assert any(isinstance(a, Stored) for a in answers)
    await client.close()


async def test_storage_failure_is_typed(start: StartRelay) -> None:
    relay = await start()
    client = await RawClient.connect(relay.url)
    await relay.relay.store.aclose()
    answer = await client.deposit(SigningKey.generate().public_key, b"x")
    assert isinstance(answer, Error)
    assert answer.code is ErrorCode.STORAGE_FAILED
    await client.close()


# --- expiry, operations, privacy --------------------------------------------------------


async def test_expired_envelopes_are_purged(start: StartRelay, wall_clock: WallClock) -> None:
    relay = await start(max_age_s=3600, purge_interval_s=0.05)
    owner = SigningKey.generate()
    client = await RawClient.connect(relay.url)
    await client.deposit(owner.public_key, b"old")
    wall_clock.advance(1800)
    await client.deposit(owner.public_key, b"young")
    wall_clock.advance(1801)
    # The purge counts after its delete commits (in the store's thread): wait for the count.
    for _ in range(100):
        if relay.relay.metrics.envelopes_purged_total:
            break
        await asyncio.sleep(0.05)
    assert relay.relay.metrics.envelopes_purged_total == 1
    assert relay.relay.store.stats().envelopes == 1
    reader = await open_reader(relay.url, owner, int(wall_clock() * 1000))
    assert await read_backlog(reader, 1) == [envelope(b"young")]
    await client.close()
    await reader.close()


async def test_healthz_and_metrics(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    client = await RawClient.connect(relay.url)
    await client.deposit(owner.public_key, b"abc")
    await client.deposit(owner.public_key, b"abc")
    await client.deposit(SMALL_ORDER_KEY, b"abc")
    base = f"http://{relay.host}:{relay.port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as response:
            assert response.status == 200
        async with session.get(f"{base}/metrics") as response:
            assert response.status == 200
            assert response.content_type == "text/plain"
            text = await response.text()
        await relay.relay.store.aclose()
        async with session.get(f"{base}/healthz") as response:
            assert response.status == 503
    samples = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert samples['pigeon_relay_deposits_total{result="new"}'] == "1"
    assert samples['pigeon_relay_deposits_total{result="duplicate"}'] == "1"
    assert samples['pigeon_relay_errors_total{code="BAD_KEY"}'] == "1"
    assert samples["pigeon_relay_stored_envelopes"] == "1"
    assert samples["pigeon_relay_stored_bytes"] == "3"
    assert samples["pigeon_relay_connections"] == "2"  # the WebSocket and this HTTP request
    assert owner.public_key.hex() not in text
    await client.close()


async def test_shutdown_tells_clients(start: StartRelay) -> None:
    relay = await start()
    client = await RawClient.connect(relay.url)
    await relay.aclose()
    assert await client.receive() == Error(0, ErrorCode.SHUTTING_DOWN)
    await client.close()


async def test_info_logs_carry_no_keys_or_addresses(
    start: StartRelay, caplog: pytest.LogCaptureFixture
) -> None:
    relay = await start()
    caplog.set_level(logging.INFO)
    caplog.clear()
    owner = SigningKey.generate()
    client = await RawClient.connect(relay.url)
    await client.deposit(owner.public_key, b"x")
    await client.send(client.auth_frame(SigningKey.generate()))
    await client.receive()
    await client.close()
    await relay.aclose()
    text = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert owner.public_key.hex() not in text
    assert "127.0.0.1" not in text


@pytest.mark.parametrize("relay_store", ["sqlite"], indirect=True)  # its file
async def test_storage_holds_no_depositor_data(start: StartRelay, tmp_path: Path) -> None:
    data_dir = tmp_path / "inspect"
    relay = await start(data_dir=data_dir)
    client = await RawClient.connect(relay.url)
    await client.deposit(SigningKey.generate().public_key, b"x")
    await client.close()
    await relay.aclose()
    db = sqlite3.connect(data_dir / DB_FILE_NAME)
    columns = [row[1] for row in db.execute("PRAGMA table_info(envelopes)")]
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert columns == ["seq", "mailbox", "envelope_id", "deposited_s", "ciphertext"]
    assert tables == {"envelopes"}
    assert oct(os.stat(data_dir / DB_FILE_NAME).st_mode & 0o777) == "0o600"


async def test_deposits_racing_a_login_arrive_exactly_once(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    depositor = await RawClient.connect(relay.url)
    for n in range(100):
        await depositor.send(Deposit(n + 1, owner.public_key, b"early%d" % n))
    reader = await RawClient.connect(relay.url)
    await reader.send(reader.auth_frame(owner))
    for n in range(100, 300):  # while the reader pages through what is stored
        await depositor.send(Deposit(n + 1, owner.public_key, b"racing%d" % n))
    assert await reader.receive() == AuthOk()
    frames = [await reader.receive() for _ in range(301)]
    assert frames.count(BacklogSent()) == 1
    got = [e.envelope_id for e in frames if isinstance(e, Envelope)]
    sent = [b"early%d" % n for n in range(100)] + [b"racing%d" % n for n in range(100, 300)]
    assert sorted(got) == sorted(eid(ciphertext) for ciphertext in sent)
    with pytest.raises(asyncio.TimeoutError):
        await reader.ws.receive(timeout=0.3)
    await depositor.close()
    await reader.close()
