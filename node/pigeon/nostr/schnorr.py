"""BIP-340 Schnorr signatures over secp256k1: the one module that imports coincurve.

coincurve wraps Bitcoin Core's libsecp256k1 and ships wheels for aarch64 (the Pi) and x86_64;
the node never implements curve arithmetic itself. Nostr signs 32-byte event ids only, so this
module takes 32-byte messages only (BIP-340 also defines other lengths; Nostr never uses them).
"""

from __future__ import annotations

from typing import Final

from coincurve import PrivateKey, PublicKeyXOnly

from pigeon.nostr.errors import LocalError

KEY_SIZE: Final = 32
MESSAGE_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64


def public_key(secret: bytes) -> bytes:
    """The 32-byte x-only public key of `secret`; raises LocalError for an invalid secret."""
    if len(secret) != KEY_SIZE:
        raise LocalError("a secp256k1 secret key is 32 bytes")
    try:
        return PublicKeyXOnly.from_secret(secret).format()
    except ValueError as exc:
        raise LocalError("the secret key is zero or not below the curve order") from exc


def sign(secret: bytes, message: bytes, aux_rand: bytes) -> bytes:
    """The BIP-340 signature of the 32-byte `message` under `secret`, with 32 bytes of
    auxiliary randomness (the caller's rng); raises LocalError."""
    if len(message) != MESSAGE_SIZE or len(aux_rand) != 32:
        raise LocalError("BIP-340 signing here takes a 32-byte message and 32 aux bytes")
    if len(secret) != KEY_SIZE:
        raise LocalError("a secp256k1 secret key is 32 bytes")
    try:
        return bytes(PrivateKey(secret).sign_schnorr(message, aux_rand))
    except ValueError as exc:
        raise LocalError("the secret key is zero or not below the curve order") from exc


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is a valid BIP-340 signature of the 32-byte `message` under the
    x-only key `public`; False for any malformed input (a key off the curve, wrong lengths)."""
    if len(public) != KEY_SIZE or len(message) != MESSAGE_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        return bool(PublicKeyXOnly(public).verify(signature, message))
    except ValueError:
        return False  # not an x coordinate on the curve
