"""SecureSession: XX handshake into the ratchet, bundle binding, freshness, replay, state bytes."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.crypto.errors import (
    BundleMismatch,
    DecryptFailed,
    MalformedInput,
    Replayed,
    StateMisuse,
    WeakKey,
)
from pigeon.crypto.identity import Identity
from pigeon.crypto.noise import XX_25519_CHACHAPOLY_SHA256, HandshakeState
from pigeon.crypto.padding import BLOCK_LEN
from pigeon.crypto.ratchet import HEADER_LEN, TAG_LEN, DoubleRatchet
from pigeon.crypto.session import PROLOGUE, SecureSession
from pigeon.crypto.session_guard import HandshakeGuard
from pigeon.crypto.session_payload import HandshakePayload

NOW = 1_790_000_000
AD = b"mesh fields"
ALICE = Identity.from_secrets(bytes([1]) * 32, bytes([2]) * 32)
BOB = Identity.from_secrets(bytes([3]) * 32, bytes([4]) * 32)
CAROL = Identity.from_secrets(bytes([5]) * 32, bytes([6]) * 32)


def rng(seed: int) -> random.Random:
    return random.Random(seed)


def handshake(
    seed: int = 0, restore: bool = False
) -> tuple[SecureSession, SecureSession, HandshakeGuard, HandshakeGuard]:
    """A completed Alice (initiator) / Bob (responder) pair, optionally stored at every step."""
    alice_rng, bob_rng = rng(seed).randbytes, rng(seed + 1).randbytes
    alice_guard, bob_guard = HandshakeGuard(), HandshakeGuard()
    alice, message1 = SecureSession.initiate(ALICE, alice_rng)
    bob, message2 = SecureSession.respond(BOB, message1, NOW, bob_rng)
    if restore:
        alice = SecureSession.from_bytes(alice.to_bytes(), ALICE, alice_rng)
        bob = SecureSession.from_bytes(bob.to_bytes(), BOB, bob_rng)
    message3 = alice.read_handshake(message2, NOW + 1, alice_guard)
    assert message3 is not None
    if restore:
        alice = SecureSession.from_bytes(alice.to_bytes(), ALICE, alice_rng)
    assert bob.read_handshake(message3, NOW + 2, bob_guard) is None
    return alice, bob, alice_guard, bob_guard


def forged_message2(
    message1: bytes, static: Identity, bundle_of: Identity, handshake_id: bytes = bytes(16)
) -> bytes:
    """A message 2 from `static`'s Noise key carrying `bundle_of`'s bundle."""
    responder = HandshakeState(
        XX_25519_CHACHAPOLY_SHA256, False, static.noise_static_private, PROLOGUE
    )
    responder.read_message(message1)
    payload = HandshakePayload(NOW, handshake_id, bundle_of.bundle(), CAROL.noise_static_public)
    return responder.write_message(payload.to_bytes())


@pytest.mark.parametrize("restore", [False, True])
def test_handshake_then_both_sides_talk(restore: bool) -> None:
    alice, bob, _, _ = handshake(restore=restore)
    assert alice.established
    assert bob.established
    assert (alice.role, bob.role) == ("initiator", "responder")
    assert alice.peer_bundle == BOB.bundle()
    assert bob.peer_bundle == ALICE.bundle()
    assert alice.decrypt(bob.encrypt(b"responder first", AD), AD) == b"responder first"
    assert bob.decrypt(alice.encrypt(b"and back", AD), AD) == b"and back"


def test_sessions_are_stored_and_restored_exactly_at_every_step() -> None:
    alice, message1 = SecureSession.initiate(ALICE, rng(0).randbytes)
    bob, message2 = SecureSession.respond(BOB, message1, NOW, rng(1).randbytes)
    for session, identity in ((alice, ALICE), (bob, BOB)):
        state = session.to_bytes()
        assert state[0] == 1
        assert SecureSession.from_bytes(state, identity).to_bytes() == state
        assert not SecureSession.from_bytes(state, identity).established
    message3 = alice.read_handshake(message2, NOW, HandshakeGuard())
    assert message3 is not None
    bob.read_handshake(message3, NOW, HandshakeGuard())
    for session, identity in ((alice, ALICE), (bob, BOB)):
        state = session.to_bytes()
        assert SecureSession.from_bytes(state, identity).to_bytes() == state


def test_each_side_can_resend_its_last_handshake_message_until_confirmed() -> None:
    alice_rng, bob_rng = rng(0).randbytes, rng(1).randbytes
    alice, message1 = SecureSession.initiate(ALICE, alice_rng)
    assert alice.handshake_to_resend() == message1
    bob, message2 = SecureSession.respond(BOB, message1, NOW, bob_rng)
    assert bob.handshake_to_resend() == message2
    assert SecureSession.from_bytes(bob.to_bytes(), BOB).handshake_to_resend() == message2
    message3 = alice.read_handshake(message2, NOW, HandshakeGuard())
    assert message3 is not None
    alice = SecureSession.from_bytes(alice.to_bytes(), ALICE, alice_rng)
    assert alice.handshake_to_resend() == message3
    early = alice.encrypt(b"sent before Bob had message 3", AD)
    with pytest.raises(StateMisuse):
        bob.decrypt(early, AD)
    assert bob.read_handshake(message3, NOW, HandshakeGuard()) is None
    assert bob.handshake_to_resend() is None
    assert bob.decrypt(early, AD) == b"sent before Bob had message 3"
    assert alice.handshake_to_resend() == message3
    with pytest.raises(DecryptFailed):
        alice.decrypt(CAROL.noise_static_public + bytes(8 + BLOCK_LEN + TAG_LEN), AD)
    assert alice.handshake_to_resend() == message3
    alice.decrypt(bob.encrypt(b"reply", AD), AD)
    assert alice.handshake_to_resend() is None
    assert SecureSession.from_bytes(alice.to_bytes(), ALICE).handshake_to_resend() is None


def test_messages_are_padded_to_whole_blocks() -> None:
    alice, bob, _, _ = handshake()
    for size, blocks in ((0, 1), (BLOCK_LEN - 1, 1), (BLOCK_LEN, 2)):
        message = alice.encrypt(bytes(size), AD)
        assert len(message) == HEADER_LEN + blocks * BLOCK_LEN + TAG_LEN
        assert bob.decrypt(message, AD) == bytes(size)


def test_badly_padded_message_is_refused_without_state_change() -> None:
    alice, bob, _, _ = handshake()
    alice.decrypt(bob.encrypt(b"confirms message 3", AD), AD)
    alice_ratchet = DoubleRatchet.from_bytes(alice.to_bytes()[3 + 128 :])
    unpadded = alice_ratchet.encrypt(b"no padding", AD)
    state = bob.to_bytes()
    with pytest.raises(MalformedInput):
        bob.decrypt(unpadded, AD)
    assert bob.to_bytes() == state


def test_duplicated_ratchet_message_is_refused() -> None:
    alice, bob, _, _ = handshake()
    message = alice.encrypt(b"once", AD)
    assert bob.decrypt(message, AD) == b"once"
    state = bob.to_bytes()
    with pytest.raises(Replayed):
        bob.decrypt(message, AD)
    assert bob.to_bytes() == state


def test_handshake_message_after_completion_is_a_replay() -> None:
    alice_rng, bob_rng = rng(0).randbytes, rng(1).randbytes
    alice, message1 = SecureSession.initiate(ALICE, alice_rng)
    bob, message2 = SecureSession.respond(BOB, message1, NOW, bob_rng)
    message3 = alice.read_handshake(message2, NOW, HandshakeGuard())
    assert message3 is not None
    bob.read_handshake(message3, NOW, HandshakeGuard())
    with pytest.raises(Replayed):
        alice.read_handshake(message2, NOW, HandshakeGuard())
    with pytest.raises(Replayed):
        bob.read_handshake(message3, NOW, HandshakeGuard())


def test_message2_replayed_to_another_handshake_fails() -> None:
    _, message1 = SecureSession.initiate(ALICE, rng(0).randbytes)
    _, message2 = SecureSession.respond(BOB, message1, NOW, rng(1).randbytes)
    other, _ = SecureSession.initiate(ALICE, rng(2).randbytes)
    state = other.to_bytes()
    with pytest.raises(DecryptFailed):
        other.read_handshake(message2, NOW, HandshakeGuard())
    assert other.to_bytes() == state


def test_repeated_handshake_id_is_refused_by_the_node_guard() -> None:
    guard = HandshakeGuard()
    first, message1 = SecureSession.initiate(ALICE, rng(0).randbytes)
    assert first.read_handshake(forged_message2(message1, BOB, BOB), NOW, guard) is not None
    second, message1 = SecureSession.initiate(ALICE, rng(1).randbytes)
    state = second.to_bytes()
    with pytest.raises(Replayed):
        second.read_handshake(forged_message2(message1, BOB, BOB), NOW, guard)
    assert second.to_bytes() == state
    fresh_id = forged_message2(message1, BOB, BOB, handshake_id=bytes([1]) * 16)
    assert second.read_handshake(fresh_id, NOW, guard) is not None


@pytest.mark.parametrize("offset", [601, -601, 10**6])
def test_stale_or_future_handshake_is_refused_and_can_be_retried(offset: int) -> None:
    alice, message1 = SecureSession.initiate(ALICE, rng(0).randbytes)
    _, message2 = SecureSession.respond(BOB, message1, NOW, rng(1).randbytes)
    guard = HandshakeGuard()
    state = alice.to_bytes()
    with pytest.raises(Replayed):
        alice.read_handshake(message2, NOW + offset, guard)
    assert alice.to_bytes() == state
    assert len(guard) == 0
    assert alice.read_handshake(message2, NOW + 599, guard) is not None


def test_initiator_refuses_responder_bundle_for_another_key() -> None:
    alice, message1 = SecureSession.initiate(ALICE, rng(0).randbytes)
    guard = HandshakeGuard()
    state = alice.to_bytes()
    with pytest.raises(BundleMismatch):
        alice.read_handshake(forged_message2(message1, BOB, CAROL), NOW, guard)
    assert alice.to_bytes() == state
    assert len(guard) == 0


def test_responder_refuses_initiator_bundle_for_another_key() -> None:
    initiator = HandshakeState(
        XX_25519_CHACHAPOLY_SHA256, True, ALICE.noise_static_private, PROLOGUE
    )
    bob, message2 = SecureSession.respond(BOB, initiator.write_message(b""), NOW, rng(1).randbytes)
    initiator.read_message(message2)
    payload = HandshakePayload(NOW, bytes(16), CAROL.bundle(), CAROL.noise_static_public)
    guard = HandshakeGuard()
    state = bob.to_bytes()
    with pytest.raises(BundleMismatch):
        bob.read_handshake(initiator.write_message(payload.to_bytes()), NOW, guard)
    assert bob.to_bytes() == state
    assert len(guard) == 0


def test_message1_must_carry_no_payload() -> None:
    initiator = HandshakeState(
        XX_25519_CHACHAPOLY_SHA256, True, ALICE.noise_static_private, PROLOGUE
    )
    with pytest.raises(MalformedInput):
        SecureSession.respond(BOB, initiator.write_message(b"early data"), NOW)


def test_message1_with_low_order_key_is_weak() -> None:
    with pytest.raises(WeakKey):
        SecureSession.respond(BOB, bytes(32), NOW)


def test_ratchet_messages_need_an_established_session() -> None:
    alice, _ = SecureSession.initiate(ALICE)
    with pytest.raises(StateMisuse):
        alice.encrypt(b"too early", AD)
    with pytest.raises(StateMisuse):
        alice.decrypt(bytes(HEADER_LEN + TAG_LEN), AD)


def test_repr_shows_no_secret() -> None:
    alice, bob, _, _ = handshake()
    for session in (alice, bob):
        text = repr(session)
        assert "established" in text
        assert session.to_bytes().hex()[-64:] not in text


@pytest.mark.parametrize(
    "state",
    [
        b"",
        b"\x01",
        b"\x02\x01" + bytes(32),
        b"\x01\x09",
        b"\x01\x01" + bytes(31),
        b"\x01\x02" + bytes(100),
        b"\x01\x03\x02" + bytes(200),
        b"\x01\x03\x00" + bytes(128),
        b"\x01\x03\x03" + bytes(1000),
        b"\x01\x03",
    ],
)
def test_malformed_session_state_is_refused(state: bytes) -> None:
    with pytest.raises(MalformedInput):
        SecureSession.from_bytes(state, ALICE)


def test_established_state_with_tampered_bundle_is_refused() -> None:
    alice, _, _, _ = handshake()
    state = bytearray(alice.to_bytes())
    state[3 + 100] ^= 1
    with pytest.raises(MalformedInput):
        SecureSession.from_bytes(bytes(state), ALICE)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=600))
def test_random_session_state_raises_only_malformed_input(data: bytes) -> None:
    with contextlib.suppress(MalformedInput):
        SecureSession.from_bytes(data, ALICE)


@settings(max_examples=25, deadline=None)
@given(
    steps=st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), max_size=20),
    seed=st.integers(0, 1000),
)
def test_conversation_survives_storage_at_any_step(
    steps: list[tuple[bool, bool, bool]], seed: int
) -> None:
    alice, bob, _, _ = handshake(seed, restore=True)
    for index, (from_alice, deliver_twice, store) in enumerate(steps):
        sender, receiver = (alice, bob) if from_alice else (bob, alice)
        text = b"message %d" % index
        message = sender.encrypt(text, AD)
        assert receiver.decrypt(message, AD) == text
        if deliver_twice:
            with pytest.raises(Replayed):
                receiver.decrypt(message, AD)
        if store:
            alice = SecureSession.from_bytes(alice.to_bytes(), ALICE, rng(index).randbytes)
            bob = SecureSession.from_bytes(bob.to_bytes(), BOB, rng(index + 1).randbytes)


@pytest.mark.parametrize("now", [-1.0, float("nan"), float("inf")])
def test_a_broken_clock_is_our_misuse(now: float) -> None:
    alice, message1 = SecureSession.initiate(ALICE, rng(0).randbytes)
    with pytest.raises(StateMisuse):
        SecureSession.respond(BOB, message1, now)
    bob, message2 = SecureSession.respond(BOB, message1, NOW, rng(1).randbytes)
    with pytest.raises(StateMisuse):
        alice.read_handshake(message2, now, HandshakeGuard())
    message3 = alice.read_handshake(message2, NOW, HandshakeGuard())
    assert message3 is not None
    state = bob.to_bytes()
    with pytest.raises(StateMisuse):
        bob.read_handshake(message3, now, HandshakeGuard())
    assert bob.to_bytes() == state
