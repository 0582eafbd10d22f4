"""Protocol version 2 on a real relay: content-named envelopes, the read label first, the backlog
marker, the exact frame limit and which error wins when a frame breaks several rules."""

from __future__ import annotations

import struct

import aiohttp

from pigeon.crypto.signing import SigningKey
from pigeon.relay.protocol import (
    CLOSE_CODE_BASE,
    Ack,
    Acked,
    Auth,
    AuthOk,
    BacklogSent,
    Deposit,
    Envelope,
    Error,
    ErrorCode,
    Stored,
    envelope_id_of,
    max_frame_bytes,
)
from tests.relay.conftest import StartRelay
from tests.relay.rawclient import RawClient, expect_closed


def v1_signed_message(challenge: bytes, url: str, timestamp_ms: int, key: bytes) -> bytes:
    """The version 1 layout: the relay's challenge first, the label in the middle."""
    encoded = url.encode()
    return b"".join(
        (
            challenge,
            struct.pack(">H", len(encoded)),
            encoded,
            b"Pigeon.RelayRead.v1",
            struct.pack(">Q", timestamp_ms),
            key,
        )
    )


async def test_junk_deposited_first_cannot_displace_the_genuine_envelope(
    start: StartRelay,
) -> None:
    relay = await start()
    owner = SigningKey.generate()
    genuine = b"genuine envelope"
    squatter, honest = await RawClient.connect(relay.url), await RawClient.connect(relay.url)
    assert isinstance(await squatter.deposit(owner.public_key, b"junk"), Stored)
    assert isinstance(await honest.deposit(owner.public_key, genuine), Stored)
    assert relay.relay.store.stats().envelopes == 2
    reader = await RawClient.connect(relay.url)
    assert await reader.auth(owner) == AuthOk()
    got = {await reader.receive(), await reader.receive()}
    assert Envelope(envelope_id_of(genuine), genuine) in got
    assert await reader.receive() == BacklogSent()
    for client in (squatter, honest, reader):
        await client.close()


async def test_a_signature_in_the_version_1_layout_is_refused(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    client = await RawClient.connect(relay.url)
    timestamp_ms = int(relay.relay.wall_clock() * 1000)
    message = v1_signed_message(client.challenge, relay.url, timestamp_ms, owner.public_key)
    await client.send(Auth(owner.public_key, timestamp_ms, owner.sign(message)))
    assert await client.receive() == Error(0, ErrorCode.BAD_SIGNATURE)
    await client.close()


async def test_backlog_sent_separates_stored_from_live_envelopes(start: StartRelay) -> None:
    relay = await start()
    owner = SigningKey.generate()
    depositor = await RawClient.connect(relay.url)
    for n in range(70):  # more than one page
        assert isinstance(await depositor.deposit(owner.public_key, b"stored%d" % n), Stored)
    reader = await RawClient.connect(relay.url)
    assert await reader.auth(owner) == AuthOk()
    stored = [await reader.receive() for _ in range(70)]
    assert all(isinstance(frame, Envelope) for frame in stored)
    assert await reader.receive() == BacklogSent()
    assert isinstance(await depositor.deposit(owner.public_key, b"live"), Stored)
    assert await reader.receive() == Envelope(envelope_id_of(b"live"), b"live")
    await depositor.close()
    await reader.close()


async def test_a_frame_of_exactly_the_limit_is_read_and_one_byte_more_is_not(
    start: StartRelay,
) -> None:
    relay = await start(max_envelope_bytes=3000)
    limit = max_frame_bytes(3000)
    key = SigningKey.generate().public_key
    client = await RawClient.connect(relay.url)
    await client.send(Deposit(1, key, bytes(limit - 38)))  # 38: the DEPOSIT header
    assert await client.receive() == Error(1, ErrorCode.ENVELOPE_TOO_LARGE)
    await client.send(Deposit(2, key, bytes(limit - 37)))
    assert await expect_closed(client.ws) == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await client.close()


async def test_a_full_ack_fits_under_a_small_envelope_limit(start: StartRelay) -> None:
    relay = await start(max_envelope_bytes=100)
    owner = SigningKey.generate()
    reader = await RawClient.connect(relay.url)
    assert await reader.auth(owner) == AuthOk()
    assert await reader.receive() == BacklogSent()
    await reader.send(Ack(5, tuple(n.to_bytes(16, "big") for n in range(256))))
    assert await reader.receive() == Acked(5)
    await reader.close()


async def test_ack_before_auth_is_fatal_even_when_rate_limited(start: StartRelay) -> None:
    relay = await start(connection_frame_burst=1, connection_frames_per_s=0.001)
    client = await RawClient.connect(relay.url)
    assert isinstance(await client.deposit(SigningKey.generate().public_key, b"x"), Stored)
    await client.send(Ack(9, (bytes(16),)))
    assert await client.receive() == Error(0, ErrorCode.UNEXPECTED_FRAME)
    assert await expect_closed(client.ws) == CLOSE_CODE_BASE + ErrorCode.UNEXPECTED_FRAME
    await client.close()
