"""Identity: key pairs, secrets for storage, the handle, and nothing secret in a repr."""

import base64
import hashlib
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from pigeon.crypto.card_kat import FIXED_ALICE_HANDLE, FIXED_ALICE_SECRETS
from pigeon.crypto.errors import MalformedInput
from pigeon.crypto.identity import Identity, handle
from pigeon.crypto.signing import SigningKey, verify

HANDLE_SHAPE = re.compile(r"^[A-Z2-7]{4}(-[A-Z2-7]{4}){4}$")


def test_secrets_restore_the_same_identity() -> None:
    identity = Identity.generate()
    restored = Identity.from_secrets(*identity.secrets())
    assert restored.public_key == identity.public_key
    assert restored.noise_static_public == identity.noise_static_public
    assert restored.bundle() == identity.bundle()


def test_generated_identities_differ() -> None:
    first, second = Identity.generate(), Identity.generate()
    assert first.public_key != second.public_key
    assert first.noise_static_public != second.noise_static_public


def test_keys_match_independent_derivations() -> None:
    seed, x_private = FIXED_ALICE_SECRETS
    identity = Identity.from_secrets(seed, x_private)
    assert identity.public_key == SigningKey(seed).public_key
    expected_x = X25519PrivateKey.from_private_bytes(x_private).public_key().public_bytes_raw()
    assert identity.noise_static_public == expected_x
    assert identity.noise_static_private == x_private
    assert identity.secrets() == (seed, x_private)


def test_signatures_verify_under_the_public_key() -> None:
    identity = Identity.generate()
    verify(identity.public_key, b"message", identity.sign(b"message"))


@pytest.mark.parametrize(("seed_len", "x_len"), [(31, 32), (33, 32), (32, 31), (32, 33), (0, 0)])
def test_wrong_secret_lengths_are_malformed(seed_len: int, x_len: int) -> None:
    with pytest.raises(MalformedInput):
        Identity.from_secrets(bytes(seed_len), bytes(x_len))


def test_repr_shows_no_secret() -> None:
    identity = Identity.from_secrets(*FIXED_ALICE_SECRETS)
    text = repr(identity) + str(identity)
    for secret in identity.secrets():
        assert secret.hex() not in text
        assert repr(secret) not in text
    assert identity.handle in text


def test_fixed_handle() -> None:
    assert Identity.from_secrets(*FIXED_ALICE_SECRETS).handle == FIXED_ALICE_HANDLE


@given(st.binary(min_size=32, max_size=32))
def test_handle_is_grouped_base32_of_sha256(public_key: bytes) -> None:
    shown = handle(public_key)
    assert HANDLE_SHAPE.match(shown)
    digest_b32 = base64.b32encode(hashlib.sha256(public_key).digest()).decode()
    assert shown.replace("-", "") == digest_b32[:20]


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_handle_of_wrong_length_key_is_malformed(length: int) -> None:
    with pytest.raises(MalformedInput):
        handle(bytes(length))
