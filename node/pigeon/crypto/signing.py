"""Ed25519 signing and verification through libsodium (pynacl).

Verification goes through libsodium, never OpenSSL: `cryptography` accepts a forged signature
(R = identity, S = 0) under the small-order public key 01 00..00; libsodium rejects it. We also
refuse small-order and off-curve keys up front so the caller gets `WeakKey`, not a mere mismatch.
"""

from __future__ import annotations

import os
from typing import Final

import nacl.bindings
import nacl.exceptions
import nacl.signing

from pigeon.crypto.errors import InvalidSignature, MalformedInput, WeakKey

PUBLIC_KEY_LEN: Final = 32
SEED_LEN: Final = 32
SIGNATURE_LEN: Final = 64


def check_public_key(public_key: bytes) -> None:
    """Raise `MalformedInput` or `WeakKey` unless `public_key` is a usable Ed25519 key."""
    if len(public_key) != PUBLIC_KEY_LEN:
        raise MalformedInput(f"Ed25519 public key must be {PUBLIC_KEY_LEN} bytes")
    if not nacl.bindings.crypto_core_ed25519_is_valid_point(public_key):
        raise WeakKey("Ed25519 public key is small-order or not on the curve")


def verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Return if `signature` over `message` verifies under `public_key`.

    Raises MalformedInput (bad lengths), WeakKey (small-order key), InvalidSignature.
    """
    check_public_key(public_key)
    if len(signature) != SIGNATURE_LEN:
        raise MalformedInput(f"Ed25519 signature must be {SIGNATURE_LEN} bytes")
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except nacl.exceptions.BadSignatureError as exc:
        raise InvalidSignature("Ed25519 signature does not verify") from exc


class SigningKey:
    """An Ed25519 private key; `repr` never shows the secret."""

    __slots__ = ("_key",)

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_LEN:
            raise MalformedInput(f"Ed25519 seed must be {SEED_LEN} bytes")
        self._key = nacl.signing.SigningKey(seed)

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh key from the OS CSPRNG."""
        return cls(os.urandom(SEED_LEN))

    @property
    def seed(self) -> bytes:
        """The 32-byte secret seed, for storage only."""
        return bytes(self._key)

    @property
    def public_key(self) -> bytes:
        """The 32-byte public key."""
        return bytes(self._key.verify_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached signature of `message`."""
        return self._key.sign(message).signature

    def __repr__(self) -> str:
        return "SigningKey(<secret>)"
