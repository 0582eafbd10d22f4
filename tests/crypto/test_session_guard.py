"""HandshakeGuard freshness and memory bounds, and the handshake payload codec."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.crypto.errors import InvalidSignature, MalformedInput, Replayed, WeakKey
from pigeon.crypto.identity import Identity
from pigeon.crypto.session_guard import HandshakeGuard
from pigeon.crypto.session_payload import PAYLOAD_LEN, HandshakePayload

NOW = 1_790_000_000
IDENTITY = Identity.from_secrets(bytes([7]) * 32, bytes([8]) * 32)


def ident(number: int) -> bytes:
    return number.to_bytes(16, "big")


def test_fresh_unseen_id_passes_then_repeats_are_refused() -> None:
    guard = HandshakeGuard()
    guard.check(ident(1), NOW, NOW)
    guard.remember(ident(1), NOW, NOW)
    with pytest.raises(Replayed):
        guard.check(ident(1), NOW, NOW + 1)
    guard.check(ident(2), NOW, NOW + 1)


@pytest.mark.parametrize(("timestamp", "ok"), [(NOW - 600, True), (NOW - 601, False)])
def test_window_edges(timestamp: int, ok: bool) -> None:
    guard = HandshakeGuard(max_age_s=600, max_ahead_s=60)
    with contextlib.nullcontext() if ok else pytest.raises(Replayed):
        guard.check(ident(1), timestamp, NOW)
    with contextlib.nullcontext() if ok else pytest.raises(Replayed):
        guard.check(ident(1), NOW + 60 + (0 if ok else 1), NOW)


def test_ids_outside_the_window_are_forgotten() -> None:
    guard = HandshakeGuard(max_age_s=600)
    guard.remember(ident(1), NOW, NOW)
    guard.remember(ident(2), NOW + 500, NOW + 500)
    guard.remember(ident(3), NOW + 700, NOW + 700)
    assert len(guard) == 2
    with pytest.raises(Replayed):
        guard.check(ident(2), NOW + 500, NOW + 700)


def test_capacity_evicts_oldest_first() -> None:
    guard = HandshakeGuard(capacity=3)
    for number in range(5):
        guard.remember(ident(number), NOW, NOW)
    assert len(guard) == 3
    guard.check(ident(0), NOW, NOW)
    guard.check(ident(1), NOW, NOW)
    with pytest.raises(Replayed):
        guard.check(ident(2), NOW, NOW)


def test_guard_bytes_round_trip() -> None:
    guard = HandshakeGuard()
    for number in range(4):
        guard.remember(ident(number), NOW + number, NOW + number)
    state = guard.to_bytes()
    restored = HandshakeGuard.from_bytes(state)
    assert restored.to_bytes() == state
    with pytest.raises(Replayed):
        restored.check(ident(3), NOW, NOW)


@pytest.mark.parametrize(
    "state",
    [
        b"",
        b"\x02\x00\x00\x00\x00",
        b"\x01\x00\x00\x00\x01" + bytes(23),
        b"\x01\x00\x00\x00\x02" + bytes(48),
        b"\x01\x00\x00\x00\x00\x00",
    ],
)
def test_malformed_guard_state_is_refused(state: bytes) -> None:
    with pytest.raises(MalformedInput):
        HandshakeGuard.from_bytes(state)


def test_payload_round_trip() -> None:
    payload = HandshakePayload(NOW, ident(9), IDENTITY.bundle(), IDENTITY.noise_static_public)
    data = payload.to_bytes()
    assert len(data) == PAYLOAD_LEN == 185
    assert data[0] == 1
    assert HandshakePayload.from_bytes(data) == payload


def test_payload_faults_are_typed() -> None:
    data = HandshakePayload(NOW, ident(9), IDENTITY.bundle(), IDENTITY.noise_static_public)
    good = data.to_bytes()
    with pytest.raises(MalformedInput):
        HandshakePayload.from_bytes(good[:-1])
    with pytest.raises(MalformedInput):
        HandshakePayload.from_bytes(b"\x02" + good[1:])
    with pytest.raises(WeakKey):
        HandshakePayload.from_bytes(good[:-32] + bytes(32))
    tampered = bytearray(good)
    tampered[25 + 70] ^= 1  # inside the bundle's signature
    with pytest.raises(InvalidSignature):
        HandshakePayload.from_bytes(bytes(tampered))


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_guard_state_raises_only_malformed_input(data: bytes) -> None:
    with contextlib.suppress(MalformedInput):
        HandshakeGuard.from_bytes(data)
