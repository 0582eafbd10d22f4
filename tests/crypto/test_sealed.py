"""Sealed boxes to a Noise X25519 static key (libsodium's crypto_box_seal through pynacl)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.crypto.bundle import LOW_ORDER_X25519
from pigeon.crypto.errors import DecryptFailed, MalformedInput, WeakKey
from pigeon.crypto.identity import Identity
from pigeon.crypto.sealed import SEAL_OVERHEAD, open_sealed, seal

ME = Identity.from_secrets(bytes(range(32)), bytes(range(32, 64)))
OTHER = Identity.from_secrets(bytes(32), bytes([7]) * 32)


@given(st.binary(max_size=200))
def test_a_sealed_box_opens_only_with_its_noise_static_key(plaintext: bytes) -> None:
    sealed = seal(ME.noise_static_public, plaintext)
    assert len(sealed) == len(plaintext) + SEAL_OVERHEAD
    assert open_sealed(ME.noise_static_private, sealed) == plaintext
    with pytest.raises(DecryptFailed):
        open_sealed(OTHER.noise_static_private, sealed)


def test_each_seal_is_fresh_and_tampering_is_caught() -> None:
    first, second = seal(ME.noise_static_public, b"k" * 32), seal(ME.noise_static_public, b"k" * 32)
    assert first != second  # a fresh ephemeral key each time: boxes are unlinkable
    for at in (0, 40, len(first) - 1):
        tampered = first[:at] + bytes([first[at] ^ 1]) + first[at + 1 :]
        with pytest.raises(DecryptFailed):
            open_sealed(ME.noise_static_private, tampered)
    with pytest.raises(MalformedInput):
        open_sealed(ME.noise_static_private, first[: SEAL_OVERHEAD - 1])


def test_weak_or_malformed_recipient_keys_are_refused() -> None:
    with pytest.raises(WeakKey):
        seal(sorted(LOW_ORDER_X25519)[0], b"x")
    with pytest.raises(MalformedInput):
        seal(bytes(31), b"x")
