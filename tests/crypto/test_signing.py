"""Ed25519 through libsodium: round trips, and the forgeries OpenSSL would accept."""

import pytest
from cryptography.exceptions import InvalidSignature as OpenSslInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from pigeon.crypto.errors import InvalidSignature, MalformedInput, WeakKey
from pigeon.crypto.signing import SigningKey, check_public_key, verify

SMALL_ORDER_KEY = bytes([1]) + bytes(31)  # the identity point
FORGED_SIGNATURE = bytes([1]) + bytes(63)  # R = identity, S = 0


def test_openssl_accepts_the_small_order_forgery_so_we_must_not_use_it() -> None:
    try:
        Ed25519PublicKey.from_public_bytes(SMALL_ORDER_KEY).verify(FORGED_SIGNATURE, b"any")
    except OpenSslInvalidSignature:
        pytest.skip("this OpenSSL rejects the forgery too; our check below still applies")


def test_small_order_forgery_is_rejected() -> None:
    with pytest.raises(WeakKey):
        verify(SMALL_ORDER_KEY, b"any", FORGED_SIGNATURE)


@given(st.binary(max_size=200))
def test_sign_verify_round_trip(message: bytes) -> None:
    key = SigningKey.generate()
    verify(key.public_key, message, key.sign(message))


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=511))
def test_any_flipped_signature_bit_is_rejected(message: bytes, bit: int) -> None:
    key = SigningKey(bytes(range(32)))
    signature = bytearray(key.sign(message))
    signature[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(InvalidSignature):
        verify(key.public_key, message, bytes(signature))


@pytest.mark.parametrize("length", [0, 31, 33])
def test_wrong_key_length_is_malformed(length: int) -> None:
    with pytest.raises(MalformedInput):
        check_public_key(bytes(length))


def test_wrong_signature_length_is_malformed() -> None:
    key = SigningKey.generate()
    with pytest.raises(MalformedInput):
        verify(key.public_key, b"m", bytes(63))


def test_repr_hides_the_seed() -> None:
    key = SigningKey(bytes(range(32)))
    assert key.seed.hex() not in repr(key)
