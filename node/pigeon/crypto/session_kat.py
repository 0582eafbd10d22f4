"""Known-answer checks of the Double Ratchet and SecureSession for `pigeon selftest`.

`check_ratchet_kdf` runs libsignal's published KDF_CK and X3DH vectors through our KDF functions
with Signal's labels. `check_ratchet` and `check_session` replay a fixed conversation from fixed
keys and a fixed byte source and compare the SHA-256 of every byte sent with a pinned answer
(pinned from this code; the tests prove the same functions against the vectors and properties),
then decrypt it all on the other side. Each check returns on success and raises otherwise.
"""

from __future__ import annotations

import hashlib
from typing import Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from pigeon.crypto.identity import Identity
from pigeon.crypto.ratchet import DoubleRatchet
from pigeon.crypto.ratchet_kdf import dh, expand_message_key, hkdf_sha256, kdf_ck, public_key_of
from pigeon.crypto.session import SecureSession
from pigeon.crypto.session_guard import HandshakeGuard

_H = bytes.fromhex
# shared/vectors/double_ratchet_kdf.md section 1 (libsignal keys.rs test_chain_key_derivation).
_SIGNAL_CHAIN_KEY: Final = _H("8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f")
_SIGNAL_NEXT_CHAIN_KEY: Final = _H(
    "28e8f8fee54b801eef7c5cfb2f17f32c7b334485bbb70fac6ec10342a246d15d"
)
_SIGNAL_CIPHER_KEY: Final = _H("bf51e9d75e0e31031051f82a2491ffc084fa298b7793bd9db620056febf45217")
_SIGNAL_MAC_KEY: Final = _H("c6c77d6a73a354337a56435e34607dfe48e3ace14e77314dc6abc172e7a7030b")
# Section 3 (libsignal RatchetingSessionTest.testRatchetingSessionAsBob).
_SIGNAL_BOB_SIGNED_PREKEY: Final = _H(
    "583900131fb727998b7803fe6ac22cc591f342e4e42a8c8d5d78194209b8d253"
)
_SIGNAL_BOB_IDENTITY: Final = _H("4875cc69ddf8ea0719ec947d61081135868d5fd801f02c0225e516df2156605e")
_SIGNAL_ALICE_IDENTITY: Final = _H(
    "b4a8455660ada65b401007f615e654041746432e3339c6875149bceefcb42b4a"
)
_SIGNAL_ALICE_BASE: Final = _H("472d1fb1a9862c3af6beaca8920277e2b26f4a79213ec7c906aeb35e03cf8950")
_SIGNAL_SENDER_CHAIN: Final = _H("9797caca53c989bbe229a40ca7727010eb2604fc14945d77958a0aeda088b44d")

_RATCHET_TRANSCRIPT_SHA256: Final = (
    "f250716ca5d1076afa150627fb4edeb02a416d6abe43aa0e0406d8c38f83954a"
)
_SESSION_TRANSCRIPT_SHA256: Final = (
    "216178c8b1a6c761d149d7a711357320e74f259a25414075e9ce2b7ff52c350b"
)
_NOW: Final = 1_790_000_000
_AD: Final = b"Pigeon selftest"


def _expect_equal(what: str, got: object, expected: object) -> None:
    if got != expected:
        raise AssertionError(f"{what} differs from the known answer")


class _FixedBytes:
    """A deterministic byte source (SHA-256 of a label and a counter) standing in for the rng."""

    __slots__ = ("_count", "_label")

    def __init__(self, label: bytes) -> None:
        self._label = label
        self._count = 0

    def __call__(self, length: int) -> bytes:
        self._count += 1
        return hashlib.sha256(self._label + self._count.to_bytes(4, "big")).digest()[:length]


def check_ratchet_kdf() -> None:
    """libsignal's chain-key and X3DH vectors through `kdf_ck`, `expand_message_key`, `hkdf`."""
    message_key, next_chain_key = kdf_ck(_SIGNAL_CHAIN_KEY)
    _expect_equal("KDF_CK next chain key", next_chain_key, _SIGNAL_NEXT_CHAIN_KEY)
    okm = expand_message_key(message_key, info=b"WhisperMessageKeys", length=80)
    _expect_equal("message cipher key", okm[:32], _SIGNAL_CIPHER_KEY)
    _expect_equal("message MAC key", okm[32:64], _SIGNAL_MAC_KEY)
    signed_prekey = X25519PrivateKey.from_private_bytes(_SIGNAL_BOB_SIGNED_PREKEY)
    identity = X25519PrivateKey.from_private_bytes(_SIGNAL_BOB_IDENTITY)
    secrets = b"".join(
        (
            b"\xff" * 32,
            dh(signed_prekey, _SIGNAL_ALICE_IDENTITY),
            dh(identity, _SIGNAL_ALICE_BASE),
            dh(signed_prekey, _SIGNAL_ALICE_BASE),
        )
    )
    okm = hkdf_sha256(None, secrets, b"WhisperText", 64)
    _expect_equal("X3DH sender chain key", okm[32:], _SIGNAL_SENDER_CHAIN)


def _ratchet_transcript() -> bytes:
    """A fixed conversation with a ratchet step each way and a message delivered late."""
    rng = _FixedBytes(b"ratchet")
    root_key, bob_private = rng(32), rng(32)
    bob_public = public_key_of(X25519PrivateKey.from_private_bytes(bob_private))
    alice = DoubleRatchet.initiator(root_key, rng(32), bob_public, rng)
    bob = DoubleRatchet.responder(root_key, bob_private, alice.ratchet_public, rng)
    late = alice.encrypt(b"late", _AD)
    sent = [late, alice.encrypt(b"first", _AD)]
    _expect_equal("ratchet message", bob.decrypt(sent[1], _AD), b"first")
    sent.append(bob.encrypt(b"reply", _AD))
    _expect_equal("ratchet reply", alice.decrypt(sent[2], _AD), b"reply")
    sent.append(alice.encrypt(b"again", _AD))
    _expect_equal("ratchet after a step", bob.decrypt(sent[3], _AD), b"again")
    _expect_equal("late ratchet message", bob.decrypt(late, _AD), b"late")
    return b"".join(sent) + alice.to_bytes() + bob.to_bytes()


def check_ratchet() -> None:
    """A fixed ratchet conversation: pinned bytes, every message decrypts, late one too."""
    digest = hashlib.sha256(_ratchet_transcript()).hexdigest()
    _expect_equal("ratchet transcript", digest, _RATCHET_TRANSCRIPT_SHA256)


def _session_transcript() -> bytes:
    """A fixed handshake between two fixed identities, then one message each way."""
    alice_id = Identity.from_secrets(bytes(range(32)), bytes(range(32, 64)))
    bob_id = Identity.from_secrets(bytes(range(64, 96)), bytes(range(96, 128)))
    alice_rng, bob_rng = _FixedBytes(b"alice"), _FixedBytes(b"bob")
    alice, message1 = SecureSession.initiate(alice_id, alice_rng)
    bob, message2 = SecureSession.respond(bob_id, message1, _NOW, bob_rng)
    message3 = alice.read_handshake(message2, _NOW, HandshakeGuard())
    if message3 is None:
        raise AssertionError("the initiator produced no message 3")
    bob.read_handshake(message3, _NOW, HandshakeGuard())
    _expect_equal("peer bundle", alice.peer_bundle, bob_id.bundle())
    _expect_equal("peer bundle", bob.peer_bundle, alice_id.bundle())
    to_bob = alice.encrypt(b"hello Bob", _AD)
    to_alice = bob.encrypt(b"hello Alice", _AD)
    _expect_equal("session message", bob.decrypt(to_bob, _AD), b"hello Bob")
    _expect_equal("session reply", alice.decrypt(to_alice, _AD), b"hello Alice")
    return b"".join((message1, message2, message3, to_bob, to_alice))


def check_session() -> None:
    """A fixed XX handshake into the ratchet: pinned bytes, both bundles, one message each way."""
    digest = hashlib.sha256(_session_transcript()).hexdigest()
    _expect_equal("session transcript", digest, _SESSION_TRANSCRIPT_SHA256)
