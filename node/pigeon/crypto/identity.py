"""A Pigeon identity: an Ed25519 signing key plus the X25519 static key it uses in Noise.

The Ed25519 public key is who you are (the handle, the mailbox address, the safety number);
the X25519 key is what Noise authenticates, bound to the Ed25519 key by the `IdentityBundle`
signature. Secrets leave this object only through `secrets()` (for the vault) and
`noise_static_private` (for the Noise handshake); `repr` shows the handle only.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pigeon.crypto.bundle import IdentityBundle, bundle_message
from pigeon.crypto.errors import MalformedInput
from pigeon.crypto.signing import PUBLIC_KEY_LEN, SEED_LEN, SigningKey

X25519_PRIVATE_LEN: Final = 32
HANDLE_CHARS: Final = 20  # 100 bits of SHA-256: far beyond any second-preimage search
HANDLE_GROUP: Final = 4
HANDLE_SEPARATOR: Final = "-"


def handle(public_key: bytes) -> str:
    """The handle of an Ed25519 public key: `XXXX-XXXX-XXXX-XXXX-XXXX`.

    SHA-256 of the 32-byte key, RFC 4648 base32 (A-Z, 2-7: no 0/O, 1/I/L or 8/B pairs to
    confuse when read aloud), first 20 characters (100 bits) in five groups of four.
    Raises MalformedInput if the key is not 32 bytes.
    """
    if len(public_key) != PUBLIC_KEY_LEN:
        raise MalformedInput(f"Ed25519 public key must be {PUBLIC_KEY_LEN} bytes")
    text = base64.b32encode(hashlib.sha256(public_key).digest()).decode("ascii")[:HANDLE_CHARS]
    groups = (text[i : i + HANDLE_GROUP] for i in range(0, HANDLE_CHARS, HANDLE_GROUP))
    return HANDLE_SEPARATOR.join(groups)


class Identity:
    """Our own Ed25519 identity key and X25519 Noise static key; `repr` never shows secrets."""

    __slots__ = ("_bundle", "_noise_static", "_noise_static_public", "_signing_key")

    def __init__(self, signing_key: SigningKey, noise_static: X25519PrivateKey) -> None:
        self._signing_key = signing_key
        self._noise_static = noise_static
        self._noise_static_public = noise_static.public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw
        )
        self._bundle: IdentityBundle | None = None

    @classmethod
    def generate(cls) -> Identity:
        """A fresh identity from the OS CSPRNG."""
        return cls.from_secrets(os.urandom(SEED_LEN), os.urandom(X25519_PRIVATE_LEN))

    @classmethod
    def from_secrets(cls, ed25519_seed: bytes, x25519_private: bytes) -> Identity:
        """Restore an identity from `secrets()`; raises MalformedInput on wrong lengths."""
        if len(x25519_private) != X25519_PRIVATE_LEN:
            raise MalformedInput(f"X25519 private key must be {X25519_PRIVATE_LEN} bytes")
        signing_key = SigningKey(ed25519_seed)
        return cls(signing_key, X25519PrivateKey.from_private_bytes(x25519_private))

    def secrets(self) -> tuple[bytes, bytes]:
        """(Ed25519 seed, X25519 private key), 32 bytes each, for the vault only."""
        return self._signing_key.seed, self.noise_static_private

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key: the identity, mailbox address and safety number key."""
        return self._signing_key.public_key

    @property
    def noise_static_public(self) -> bytes:
        """The 32-byte X25519 public key Noise authenticates."""
        return self._noise_static_public

    @property
    def noise_static_private(self) -> bytes:
        """The 32-byte X25519 private key, for the Noise handshake only."""
        return self._noise_static.private_bytes_raw()

    @property
    def handle(self) -> str:
        """The grouped base32 handle of `public_key` (see `handle()`)."""
        return handle(self.public_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message`."""
        return self._signing_key.sign(message)

    def bundle(self) -> IdentityBundle:
        """Our signed `IdentityBundle` binding the Ed25519 and X25519 public keys."""
        if self._bundle is None:  # signed and verified once: every handshake sends it
            message = bundle_message(self.public_key, self.noise_static_public)
            signature = self.sign(message)
            self._bundle = IdentityBundle(self.public_key, self.noise_static_public, signature)
        return self._bundle

    def __repr__(self) -> str:
        return f"Identity(handle={self.handle!r})"
