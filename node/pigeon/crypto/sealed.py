"""Anonymous sealed boxes to an X25519 key: libsodium's `crypto_box_seal` through pynacl.

A sealed box (ephemeral X25519 public key 32 || XSalsa20-Poly1305 ciphertext with its 16-byte
tag) can be opened only with the recipient's private key and says nothing about its sender:
it is confidential, not authenticated. libsodium's box keys are Curve25519 keys, so a Noise
X25519 static key works as is. libsodium draws the ephemeral key itself (no injected rng).
"""

from __future__ import annotations

from typing import Final

import nacl.bindings
import nacl.exceptions
import nacl.public

from pigeon.crypto.bundle import check_x25519_public_key
from pigeon.crypto.errors import DecryptFailed, MalformedInput

SEAL_OVERHEAD: Final = int(nacl.bindings.crypto_box_SEALBYTES)  # 48


def seal(recipient_x25519_public: bytes, plaintext: bytes) -> bytes:
    """`plaintext` sealed to the X25519 key; raises MalformedInput or WeakKey for a bad key."""
    check_x25519_public_key(recipient_x25519_public)
    box = nacl.public.SealedBox(nacl.public.PublicKey(bytes(recipient_x25519_public)))
    return bytes(box.encrypt(bytes(plaintext)))


def open_sealed(x25519_private: bytes, sealed: bytes) -> bytes:
    """The plaintext of a box sealed to our key; raises MalformedInput or DecryptFailed."""
    if len(sealed) < SEAL_OVERHEAD:
        raise MalformedInput("sealed box is shorter than its overhead")
    box = nacl.public.SealedBox(nacl.public.PrivateKey(bytes(x25519_private)))
    try:
        return bytes(box.decrypt(bytes(sealed)))
    except nacl.exceptions.CryptoError:
        raise DecryptFailed("sealed box does not open with this key") from None
