"""Noise XX state machine: round trips, every typed error, and state left intact on failure."""

from __future__ import annotations

import hmac

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pigeon.crypto.errors import (
    CryptoError,
    DecryptFailed,
    MalformedInput,
    NonceExhausted,
    StateMisuse,
    WeakKey,
)
from pigeon.crypto.noise import (
    MAX_MESSAGE_LEN,
    MESSAGE_OVERHEAD,
    XX_25519_CHACHAPOLY_BLAKE2S,
    XX_25519_CHACHAPOLY_SHA256,
    CipherState,
    HandshakeState,
)
from pigeon.crypto.noise_cipher import BLAKE2S, MAX_NONCE, SHA256, TAG_LEN, HashSuite
from tests.crypto.noise_helpers import (
    INIT_EPHEMERAL,
    INIT_STATIC,
    LOW_ORDER_POINTS,
    PROLOGUE,
    RESP_EPHEMERAL,
    RESP_STATIC,
    SUITES,
    forge_message2_with_static,
    forge_message3_with_static,
    pair,
    run_handshake,
)

KEY = bytes(range(32))


def _public(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def _reference_hkdf2(suite: HashSuite, chaining_key: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    """Noise spec 4.3 written out with the standard library's generic HMAC."""
    temp_key = hmac.new(chaining_key, ikm, suite.new).digest()
    output1 = hmac.new(temp_key, b"\x01", suite.new).digest()
    return output1, hmac.new(temp_key, output1 + b"\x02", suite.new).digest()


# --- the happy path -------------------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES)
def test_handshake_completes_and_both_sides_agree(suite: str) -> None:
    initiator, responder = pair(suite)
    transcript = run_handshake(initiator, responder, (b"one", b"two", b"three"))
    assert initiator.remote_static == _public(RESP_STATIC) == responder.static_public
    assert responder.remote_static == _public(INIT_STATIC) == initiator.static_public
    assert [len(m) for m in transcript.messages] == [
        overhead + len(p)
        for overhead, p in zip(MESSAGE_OVERHEAD, (b"one", b"two", b"three"), strict=True)
    ]
    (i_send, i_recv), (r_send, r_recv) = transcript.initiator, transcript.responder
    assert r_recv.decrypt_with_ad(b"ad", i_send.encrypt_with_ad(b"ad", b"to responder")) == (
        b"to responder"
    )
    assert i_recv.decrypt_with_ad(b"", r_send.encrypt_with_ad(b"", b"to initiator")) == (
        b"to initiator"
    )
    assert (i_send.nonce, i_recv.nonce, r_send.nonce, r_recv.nonce) == (1, 1, 1, 1)


def test_suites_and_prologues_separate_handshakes() -> None:
    sha = run_handshake(*pair(XX_25519_CHACHAPOLY_SHA256)).handshake_hash
    blake = run_handshake(*pair(XX_25519_CHACHAPOLY_BLAKE2S)).handshake_hash
    assert sha != blake
    initiator = HandshakeState(
        XX_25519_CHACHAPOLY_SHA256, True, INIT_STATIC, b"other", INIT_EPHEMERAL
    )
    responder = HandshakeState(
        XX_25519_CHACHAPOLY_SHA256, False, RESP_STATIC, PROLOGUE, RESP_EPHEMERAL
    )
    responder.read_message(initiator.write_message(b""))
    with pytest.raises(DecryptFailed):
        initiator.read_message(responder.write_message(b""))


def test_remote_static_is_kept_after_completion_and_split() -> None:
    initiator, responder = pair()
    assert initiator.remote_static is None
    run_handshake(initiator, responder)
    assert responder.remote_static == _public(INIT_STATIC)
    assert initiator.remote_static == _public(RESP_STATIC)


def test_static_keys_stay_right_beyond_the_cache_size() -> None:
    statics = [bytes([n]) * 32 for n in range(1, 8)]
    for _ in range(2):
        for static in statics:
            state = HandshakeState(XX_25519_CHACHAPOLY_SHA256, False, static)
            assert state.static_public == _public(static)


def test_fresh_ephemerals_give_fresh_handshakes() -> None:
    first = HandshakeState(XX_25519_CHACHAPOLY_SHA256, True, INIT_STATIC)
    second = HandshakeState(XX_25519_CHACHAPOLY_SHA256, True, INIT_STATIC)
    assert first.write_message(b"") != second.write_message(b"")


@pytest.mark.parametrize("suite", [SHA256, BLAKE2S], ids=lambda s: s.name)
@given(chaining_key=st.binary(min_size=32, max_size=32), ikm=st.binary(max_size=64))
def test_hkdf_matches_the_spec_written_out(
    suite: HashSuite, chaining_key: bytes, ikm: bytes
) -> None:
    assert suite.hkdf2(chaining_key, ikm) == _reference_hkdf2(suite, chaining_key, ikm)


@pytest.mark.parametrize("suite", SUITES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payloads=st.tuples(st.binary(max_size=300), st.binary(max_size=300), st.binary(max_size=300)),
    transport=st.lists(st.tuples(st.booleans(), st.binary(max_size=300)), max_size=8),
)
def test_random_payloads_round_trip(
    suite: str, payloads: tuple[bytes, bytes, bytes], transport: list[tuple[bool, bytes]]
) -> None:
    transcript = run_handshake(
        HandshakeState(suite, True, INIT_STATIC),
        HandshakeState(suite, False, RESP_STATIC),
        payloads,
    )
    (i_send, i_recv), (r_send, r_recv) = transcript.initiator, transcript.responder
    for from_initiator, plaintext in transport:
        send, receive = (i_send, r_recv) if from_initiator else (r_send, i_recv)
        assert receive.decrypt_with_ad(b"", send.encrypt_with_ad(b"", plaintext)) == plaintext


# --- StateMisuse ----------------------------------------------------------------------------


def test_each_side_may_only_act_in_its_turn() -> None:
    initiator, responder = pair()
    with pytest.raises(StateMisuse):
        initiator.read_message(bytes(64))
    with pytest.raises(StateMisuse):
        responder.write_message(b"")
    message1 = initiator.write_message(b"")
    with pytest.raises(StateMisuse):
        initiator.write_message(b"")
    responder.read_message(message1)
    with pytest.raises(StateMisuse):
        responder.read_message(message1)
    message2 = responder.write_message(b"")
    with pytest.raises(StateMisuse):
        initiator.write_message(b"")
    initiator.read_message(message2)
    message3 = initiator.write_message(b"")
    with pytest.raises(StateMisuse):
        responder.write_message(b"")
    responder.read_message(message3)


def test_a_complete_handshake_takes_no_more_messages_and_splits_once() -> None:
    initiator, responder = pair()
    with pytest.raises(StateMisuse):
        initiator.split()
    with pytest.raises(StateMisuse):
        _ = initiator.handshake_hash
    transcript = run_handshake(initiator, responder)
    for side in (initiator, responder):
        with pytest.raises(StateMisuse):
            side.write_message(b"")
        with pytest.raises(StateMisuse):
            side.read_message(transcript.messages[2])
        with pytest.raises(StateMisuse):
            side.split()
        assert side.handshake_hash == transcript.handshake_hash


def test_split_is_oriented_for_each_side() -> None:
    transcript = run_handshake(*pair())
    (i_send, i_recv), (r_send, r_recv) = transcript.initiator, transcript.responder
    message = i_send.encrypt_with_ad(b"", b"x")
    with pytest.raises(DecryptFailed):
        i_recv.decrypt_with_ad(b"", message)
    assert r_recv.decrypt_with_ad(b"", message) == b"x"
    with pytest.raises(DecryptFailed):
        r_recv.decrypt_with_ad(b"", r_send.encrypt_with_ad(b"", b"y"))


# --- MalformedInput -------------------------------------------------------------------------


def test_bad_construction_is_refused() -> None:
    with pytest.raises(MalformedInput):
        HandshakeState("Noise_XX_25519_AESGCM_SHA256", True, INIT_STATIC)
    with pytest.raises(MalformedInput):
        HandshakeState(XX_25519_CHACHAPOLY_SHA256, True, INIT_STATIC[:31])
    with pytest.raises(MalformedInput):
        HandshakeState(XX_25519_CHACHAPOLY_SHA256, True, INIT_STATIC, b"", INIT_EPHEMERAL + b"x")
    with pytest.raises(MalformedInput):
        CipherState(KEY[:16])
    with pytest.raises(MalformedInput):
        CipherState(KEY, nonce=-1)
    with pytest.raises(MalformedInput):
        CipherState(KEY, nonce=MAX_NONCE + 1)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_largest_payload_fits_and_one_more_byte_is_refused(index: int) -> None:
    initiator, responder = pair()
    sides = [(initiator, responder), (responder, initiator), (initiator, responder)]
    for step in range(index):
        sender, receiver = sides[step]
        receiver.read_message(sender.write_message(b""))
    sender, receiver = sides[index]
    largest = MAX_MESSAGE_LEN - MESSAGE_OVERHEAD[index]
    with pytest.raises(MalformedInput):
        sender.write_message(bytes(largest + 1))
    message = sender.write_message(bytes(largest))
    assert len(message) == MAX_MESSAGE_LEN
    assert receiver.read_message(message) == bytes(largest)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_oversized_and_truncated_messages_are_malformed(index: int) -> None:
    initiator, responder = pair()
    sides = [(initiator, responder), (responder, initiator), (initiator, responder)]
    for step in range(index):
        sender, receiver = sides[step]
        receiver.read_message(sender.write_message(b""))
    sender, receiver = sides[index]
    with pytest.raises(MalformedInput):
        receiver.read_message(bytes(MAX_MESSAGE_LEN + 1))
    message = sender.write_message(b"")
    for length in range(MESSAGE_OVERHEAD[index]):
        with pytest.raises(MalformedInput):
            receiver.read_message(message[:length])
    assert receiver.read_message(message) == b""


def test_transport_length_limits() -> None:
    cipher = CipherState(KEY)
    with pytest.raises(MalformedInput):
        cipher.encrypt_with_ad(b"", bytes(MAX_MESSAGE_LEN - TAG_LEN + 1))
    assert len(cipher.encrypt_with_ad(b"", bytes(MAX_MESSAGE_LEN - TAG_LEN))) == MAX_MESSAGE_LEN
    receiver = CipherState(KEY)
    with pytest.raises(MalformedInput):
        receiver.decrypt_with_ad(b"", bytes(MAX_MESSAGE_LEN + 1))
    with pytest.raises(MalformedInput):
        receiver.decrypt_with_ad(b"", bytes(TAG_LEN - 1))
    assert receiver.nonce == 0


# --- DecryptFailed and NonceExhausted -------------------------------------------------------


def test_failed_decrypt_does_not_advance_the_nonce() -> None:
    sender, receiver = CipherState(KEY), CipherState(KEY)
    genuine = sender.encrypt_with_ad(b"ad", b"hello")
    tampered = bytes([genuine[0] ^ 1]) + genuine[1:]
    with pytest.raises(DecryptFailed):
        receiver.decrypt_with_ad(b"ad", tampered)
    with pytest.raises(DecryptFailed):
        receiver.decrypt_with_ad(b"other ad", genuine)
    assert receiver.nonce == 0
    assert receiver.decrypt_with_ad(b"ad", genuine) == b"hello"
    assert receiver.nonce == 1


def test_nonce_exhaustion_is_typed_and_the_last_nonce_is_never_used() -> None:
    sender = CipherState(KEY, nonce=MAX_NONCE - 1)
    receiver = CipherState(KEY, nonce=MAX_NONCE - 1)
    last = sender.encrypt_with_ad(b"", b"last")
    assert sender.nonce == MAX_NONCE
    with pytest.raises(NonceExhausted):
        sender.encrypt_with_ad(b"", b"one too many")
    assert receiver.decrypt_with_ad(b"", last) == b"last"
    with pytest.raises(NonceExhausted):
        receiver.decrypt_with_ad(b"", last)
    assert (sender.nonce, receiver.nonce) == (MAX_NONCE, MAX_NONCE)


def test_a_keyless_cipher_state_passes_bytes_through() -> None:
    cipher = CipherState()
    assert not cipher.has_key
    assert cipher.encrypt_with_ad(b"ad", b"plain") == b"plain"
    assert cipher.decrypt_with_ad(b"ad", b"plain") == b"plain"
    assert cipher.nonce == 0


# --- WeakKey --------------------------------------------------------------------------------


@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=lambda p: p.hex()[:8])
def test_low_order_ephemeral_in_message1_is_refused_on_read(point: bytes) -> None:
    control_initiator, control_responder = pair()
    expected = run_handshake(control_initiator, control_responder).handshake_hash
    initiator, responder = pair()
    with pytest.raises(WeakKey):
        responder.read_message(point + b"payload")
    assert run_handshake(initiator, responder).handshake_hash == expected


@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=lambda p: p.hex()[:8])
def test_low_order_ephemeral_in_message2_is_refused(point: bytes) -> None:
    initiator, responder = pair()
    message1 = initiator.write_message(b"")
    responder.read_message(message1)
    genuine = responder.write_message(b"")
    with pytest.raises(WeakKey):
        initiator.read_message(point + genuine[32:])
    assert initiator.read_message(genuine) == b""


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("point", LOW_ORDER_POINTS[:3], ids=lambda p: p.hex()[:8])
def test_low_order_static_in_message2_is_refused(suite: str, point: bytes) -> None:
    initiator, responder = pair(suite)
    message1 = initiator.write_message(b"")
    responder.read_message(message1)
    forged = forge_message2_with_static(suite, message1, point)
    with pytest.raises(WeakKey):
        initiator.read_message(forged)
    assert initiator.remote_static is None
    initiator.read_message(responder.write_message(b""))
    assert initiator.remote_static == _public(RESP_STATIC)


@pytest.mark.parametrize("point", LOW_ORDER_POINTS[:3], ids=lambda p: p.hex()[:8])
def test_low_order_static_in_message3_is_refused(point: bytes) -> None:
    initiator, responder = pair()
    responder.read_message(initiator.write_message(b""))
    initiator.read_message(responder.write_message(b""))
    forged = forge_message3_with_static(initiator, point)
    with pytest.raises(WeakKey):
        responder.read_message(forged)
    assert responder.remote_static is None
    responder.read_message(initiator.write_message(b""))
    assert responder.remote_static == _public(INIT_STATIC)


# --- failures leave the state exactly as it was ---------------------------------------------


@pytest.mark.parametrize("suite", SUITES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_bit_flip_in_messages_2_or_3_fails_and_changes_nothing(
    suite: str, data: st.DataObject
) -> None:
    control = run_handshake(*pair(suite), (b"a", b"bb", b"ccc"))
    index = data.draw(st.sampled_from([1, 2]), label="message index")
    genuine = control.messages[index]
    bit = data.draw(st.integers(0, len(genuine) * 8 - 1), label="bit")
    tampered = bytearray(genuine)
    tampered[bit // 8] ^= 1 << (bit % 8)
    initiator, responder = pair(suite)
    sides = [(initiator, responder), (responder, initiator), (initiator, responder)]
    for step in range(index):
        sender, receiver = sides[step]
        receiver.read_message(sender.write_message([b"a", b"bb", b"ccc"][step]))
    sender, receiver = sides[index]
    assert sender.write_message([b"a", b"bb", b"ccc"][index]) == genuine
    remote_static_before = receiver.remote_static
    with pytest.raises((DecryptFailed, WeakKey)):
        receiver.read_message(bytes(tampered))
    assert receiver.remote_static == remote_static_before
    assert receiver.read_message(genuine) == [b"a", b"bb", b"ccc"][index]
    if index == 1:
        responder.read_message(initiator.write_message(b"ccc"))
    assert initiator.handshake_hash == responder.handshake_hash == control.handshake_hash


@pytest.mark.parametrize("suite", SUITES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_bit_flip_in_message_1_makes_message_2_fail(suite: str, data: st.DataObject) -> None:
    initiator, responder = pair(suite)
    genuine = initiator.write_message(b"hello")
    bit = data.draw(st.integers(0, len(genuine) * 8 - 1), label="bit")
    tampered = bytearray(genuine)
    tampered[bit // 8] ^= 1 << (bit % 8)
    try:
        assert responder.read_message(bytes(tampered)) == bytes(tampered[32:])
    except WeakKey:  # the flip landed on a low-order point; nothing else may happen
        return
    with pytest.raises(DecryptFailed):
        initiator.read_message(responder.write_message(b""))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage=st.binary(max_size=200), index=st.sampled_from([1, 2]))
def test_random_bytes_never_advance_a_handshake(garbage: bytes, index: int) -> None:
    initiator, responder = pair()
    message1 = initiator.write_message(b"")
    responder.read_message(message1)
    message2 = responder.write_message(b"")
    receiver, genuine = (initiator, message2) if index == 1 else (responder, None)
    if index == 2:
        initiator.read_message(message2)
        genuine = initiator.write_message(b"")
    assert genuine is not None
    with pytest.raises(CryptoError):
        receiver.read_message(garbage)
    assert receiver.read_message(genuine) == b""


# --- no secrets in reprs --------------------------------------------------------------------


def test_reprs_show_no_key_material() -> None:
    initiator, responder = pair()
    transcript = run_handshake(initiator, responder)
    secrets = [INIT_STATIC, RESP_STATIC, INIT_EPHEMERAL, RESP_EPHEMERAL, transcript.handshake_hash]
    texts = [repr(initiator), repr(responder), *map(repr, transcript.initiator)]
    for text in texts:
        for secret in secrets:
            assert secret.hex() not in text
            assert repr(secret) not in text
    assert repr(transcript.initiator[0]) == "CipherState(has_key=True, nonce=0)"


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=200), ad=st.binary(max_size=40), data=st.data())
def test_any_bit_flip_or_cut_in_a_transport_message_fails_and_keeps_the_nonce(
    plaintext: bytes, ad: bytes, data: st.DataObject
) -> None:
    sender, receiver = CipherState(KEY, nonce=7), CipherState(KEY, nonce=7)
    genuine = sender.encrypt_with_ad(ad, plaintext)
    bit = data.draw(st.integers(0, len(genuine) * 8 - 1), label="bit")
    flipped = bytearray(genuine)
    flipped[bit // 8] ^= 1 << (bit % 8)
    cut = genuine[: data.draw(st.integers(0, len(genuine) - 1), label="cut")]
    for bad in (bytes(flipped), cut):
        with pytest.raises((DecryptFailed, MalformedInput)):
            receiver.decrypt_with_ad(ad, bad)
        assert receiver.nonce == 7
    assert receiver.decrypt_with_ad(ad, genuine) == plaintext
    assert receiver.nonce == 8


@pytest.mark.parametrize("index", [1, 2])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_cut_handshake_message_fails_and_changes_nothing(index: int, data: st.DataObject) -> None:
    initiator, responder = pair()
    sides = [(initiator, responder), (responder, initiator), (initiator, responder)]
    for step in range(index):
        sender, receiver = sides[step]
        receiver.read_message(sender.write_message(b"payload"))
    sender, receiver = sides[index]
    genuine = sender.write_message(b"payload")
    cut = genuine[: data.draw(st.integers(0, len(genuine) - 1), label="cut")]
    with pytest.raises((MalformedInput, DecryptFailed)):
        receiver.read_message(cut)
    assert receiver.read_message(genuine) == b"payload"
