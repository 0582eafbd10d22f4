"""Receipt hashes: the vector, domain separation, and that no other secret verifies."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.mesh.receipt import (
    RECEIPT_HASH_LEN,
    RECEIPT_SECRET_LEN,
    receipt_hash,
    verify_receipt,
)

secrets_ = st.binary(min_size=RECEIPT_SECRET_LEN, max_size=RECEIPT_SECRET_LEN)


def test_known_vector() -> None:
    # Cross-checked with: printf 'pigeon/receipt/v1' + 16 zero bytes | openssl dgst -sha256
    assert receipt_hash(bytes(16)) == bytes.fromhex("a956d003f7864f7bbe001a7a8132f59f")


def test_hash_is_domain_separated() -> None:
    assert receipt_hash(bytes(16)) != hashlib.sha256(bytes(16)).digest()[:RECEIPT_HASH_LEN]


@given(secrets_)
def test_the_secret_verifies(secret: bytes) -> None:
    assert len(receipt_hash(secret)) == RECEIPT_HASH_LEN
    assert verify_receipt(secret, receipt_hash(secret))


@given(secrets_, secrets_)
def test_any_other_secret_is_a_forgery(secret: bytes, guess: bytes) -> None:
    if guess != secret:
        assert not verify_receipt(guess, receipt_hash(secret))


@given(st.binary(max_size=40), st.binary(max_size=40))
def test_verify_never_raises(secret: bytes, expected: bytes) -> None:
    verified = verify_receipt(secret, expected)
    assert verified == (
        len(secret) == RECEIPT_SECRET_LEN
        and len(expected) == RECEIPT_HASH_LEN
        and receipt_hash(secret) == expected
    )


@pytest.mark.parametrize("length", [0, 15, 17, 32])
def test_hash_rejects_bad_secret_lengths(length: int) -> None:
    with pytest.raises(ValueError, match="secret"):
        receipt_hash(bytes(length))
