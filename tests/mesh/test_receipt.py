"""Receipt hashes (the vector, domain separation, no other secret verifies) and notices."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.mesh.receipt import (
    NOTICE_ID_LEN,
    NOTICE_LEN,
    RECEIPT_HASH_LEN,
    RECEIPT_SECRET_LEN,
    open_notice,
    receipt_hash,
    seal_notice,
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


keys = st.binary(min_size=16, max_size=64)
ids = st.binary(min_size=NOTICE_ID_LEN, max_size=NOTICE_ID_LEN)


@given(keys, secrets_, ids)
def test_a_notice_opens_with_its_tag_key(key: bytes, secret: bytes, envelope_id: bytes) -> None:
    sealed = seal_notice(key, secret, envelope_id)
    assert len(sealed) == NOTICE_LEN
    assert open_notice(key, sealed) == (secret, envelope_id)


@given(keys, keys, secrets_, ids)
def test_another_key_opens_a_notice_to_something_else(
    key: bytes, other: bytes, secret: bytes, envelope_id: bytes
) -> None:
    if other != key:
        opened = open_notice(other, seal_notice(key, secret, envelope_id))
        assert opened.secret != secret
        assert opened.envelope_id != envelope_id
        assert not verify_receipt(opened.secret, receipt_hash(secret))


@given(keys, secrets_, ids)
def test_a_notice_shows_neither_the_secret_nor_the_id(
    key: bytes, secret: bytes, envelope_id: bytes
) -> None:
    """What a hop knows of an envelope and its receipt never turns up in the notice."""
    sealed = seal_notice(key, secret, envelope_id)
    for known in (secret, envelope_id, receipt_hash(secret)):
        assert known not in sealed
    halves = (sealed[:16], sealed[16:])
    assert all(receipt_hash(half) != receipt_hash(secret) for half in halves)


def test_notice_rejects_bad_lengths() -> None:
    with pytest.raises(ValueError, match="secret"):
        seal_notice(bytes(32), bytes(15), bytes(16))
    with pytest.raises(ValueError, match="envelope id"):
        seal_notice(bytes(32), bytes(16), bytes(15))
    with pytest.raises(ValueError, match="notice"):
        open_notice(bytes(32), bytes(31))
