"""Noise XX handshake state machine (Noise spec rev 34), sans-IO, for two suites.

`Noise_XX_25519_ChaChaPoly_SHA256` and `Noise_XX_25519_ChaChaPoly_BLAKE2s`:
  -> e
  <- e, ee, s, es
  -> s, se
Every method either completes or raises and leaves the state exactly as it was. Raises (see
pigeon.crypto.errors): MalformedInput (bad lengths, unsupported name), WeakKey (low-order peer key),
DecryptFailed, StateMisuse (wrong turn, used after completion), NonceExhausted (transport).
Message 1's payload is neither encrypted nor authenticated: act on it only once `complete`.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from pigeon.crypto.errors import MalformedInput, StateMisuse, WeakKey
from pigeon.crypto.noise_cipher import (
    BLAKE2S,
    MAX_MESSAGE_LEN,
    SHA256,
    TAG_LEN,
    CipherState,
    HashSuite,
    SymmetricState,
    initial_hash,
)

__all__ = [
    "DH_LEN",
    "MAX_MESSAGE_LEN",
    "MESSAGE_OVERHEAD",
    "SUPPORTED_PROTOCOLS",
    "XX_25519_CHACHAPOLY_BLAKE2S",
    "XX_25519_CHACHAPOLY_SHA256",
    "CipherState",
    "HandshakeState",
    "forget_static_keys",
    "is_static_key_cached",
]

XX_25519_CHACHAPOLY_SHA256: Final = "Noise_XX_25519_ChaChaPoly_SHA256"
XX_25519_CHACHAPOLY_BLAKE2S: Final = "Noise_XX_25519_ChaChaPoly_BLAKE2s"
DH_LEN: Final = 32

_SUITES: Final[dict[str, HashSuite]] = {
    XX_25519_CHACHAPOLY_SHA256: SHA256,
    XX_25519_CHACHAPOLY_BLAKE2S: BLAKE2S,
}
SUPPORTED_PROTOCOLS: Final = frozenset(_SUITES)
# h before the prologue depends only on the name, so it is computed once per suite.
_FIRST_HASH: Final = {name: initial_hash(suite, name.encode()) for name, suite in _SUITES.items()}

_XX: Final = (("e",), ("e", "ee", "s", "es"), ("s", "se"))
# Bytes each XX message adds to its payload: keys, the encrypted static's tag, the payload's tag.
MESSAGE_OVERHEAD: Final = (DH_LEN, DH_LEN + DH_LEN + TAG_LEN + TAG_LEN, DH_LEN + TAG_LEN + TAG_LEN)
_ZERO_SHARED: Final = bytes(DH_LEN)


def _private_key(private: bytes, what: str) -> tuple[X25519PrivateKey, bytes]:
    """The key object and its public key; X25519 clamps any 32 bytes into a valid scalar."""
    if len(private) != DH_LEN:
        raise MalformedInput(f"a Noise {what} private key is {DH_LEN} bytes")
    key = X25519PrivateKey.from_private_bytes(private)
    return key, key.public_key().public_bytes_raw()


# A node reuses one static key for every handshake, and deriving its public key is a scalar
# multiplication (a fifth of a handshake's cost), so the last few are kept. Small on purpose.
# The cache holds private keys: whoever closes an identity (lock, reset) calls forget_static_keys.
_STATIC_KEYS_KEPT: Final = 4
_static_keys: OrderedDict[bytes, tuple[X25519PrivateKey, bytes]] = OrderedDict()
_static_keys_lock: Final = threading.Lock()  # handshakes may run in worker threads


def _static_key(private: bytes) -> tuple[X25519PrivateKey, bytes]:
    with _static_keys_lock:
        pair = _static_keys.pop(private, None)
    if pair is None:
        pair = _private_key(private, "static")
    with _static_keys_lock:
        _static_keys[private] = pair  # most recently used last
        while len(_static_keys) > _STATIC_KEYS_KEPT:
            _static_keys.popitem(last=False)
    return pair


def forget_static_keys() -> None:
    """Drop every cached static key pair (the vault was locked or the identity replaced)."""
    with _static_keys_lock:
        _static_keys.clear()


def is_static_key_cached(private: bytes) -> bool:
    """Whether the module holds the key pair of static private key `private` now."""
    with _static_keys_lock:
        return private in _static_keys


def _dh(private: X25519PrivateKey, public: X25519PublicKey) -> bytes:
    """X25519; a low-order peer key (all-zero result) raises WeakKey."""
    try:
        shared = private.exchange(public)
    except ValueError:  # OpenSSL refuses an all-zero shared secret
        raise WeakKey("Noise peer key is low-order (all-zero shared secret)") from None
    if shared == _ZERO_SHARED:  # in case a backend returns it instead of refusing
        raise WeakKey("Noise peer key is low-order (all-zero shared secret)")
    return shared


class HandshakeState:
    """One side of a Noise XX handshake; `split()` it once `complete`.

    `ephemeral_private` is for test vectors and for replaying a stored transcript; leave it
    None to draw a fresh one from os.urandom. Static key pairs are cached (the last four), since
    a node reuses its static key for every handshake; `forget_static_keys` empties the cache.
    """

    __slots__ = (
        "_ephemeral",
        "_ephemeral_public",
        "_handshake_hash",
        "_index",
        "_initiator",
        "_peer_ee",
        "_remote_ephemeral",
        "_remote_static",
        "_remote_static_key",
        "_split_done",
        "_static",
        "_static_public",
        "_symmetric",
    )

    def __init__(
        self,
        protocol_name: str,
        initiator: bool,
        static_private: bytes,
        prologue: bytes = b"",
        ephemeral_private: bytes | None = None,
    ) -> None:
        suite = _SUITES.get(protocol_name)
        if suite is None:
            raise MalformedInput("unsupported Noise protocol name")
        self._initiator = initiator
        self._static, self._static_public = _static_key(static_private)
        if ephemeral_private is None:
            ephemeral_private = os.urandom(DH_LEN)
        ephemeral, self._ephemeral_public = _private_key(ephemeral_private, "ephemeral")
        self._ephemeral: X25519PrivateKey | None = ephemeral
        self._symmetric: SymmetricState | None = SymmetricState(suite, _FIRST_HASH[protocol_name])
        self._symmetric.mix_hash(prologue)
        self._remote_ephemeral: X25519PublicKey | None = None
        self._remote_static: bytes | None = None
        self._remote_static_key: X25519PublicKey | None = None
        # The responder's ee secret, computed when message 1 is read so a weak key fails there.
        self._peer_ee: bytes | None = None
        self._index = 0
        self._handshake_hash = b""
        self._split_done = False

    @property
    def complete(self) -> bool:
        """Whether all three messages have been written or read."""
        return self._index == len(_XX)

    @property
    def handshake_hash(self) -> bytes:
        """h after the last message: a channel binding. Raises StateMisuse before `complete`."""
        if not self.complete:
            raise StateMisuse("the Noise handshake hash is final only once the handshake completes")
        return self._handshake_hash

    @property
    def remote_static(self) -> bytes | None:
        """The peer's static public key once its `s` was read (kept after completion)."""
        return self._remote_static

    @property
    def static_public(self) -> bytes:
        """Our static public key."""
        return self._static_public

    def write_message(self, payload: bytes) -> bytes:
        """The next handshake message carrying `payload`.

        Raises StateMisuse (not our turn, or complete), MalformedInput (message over 65535 bytes).
        """
        index = self._turn(writing=True)
        if len(payload) > MAX_MESSAGE_LEN - MESSAGE_OVERHEAD[index]:
            raise MalformedInput(f"a Noise handshake message is at most {MAX_MESSAGE_LEN} bytes")
        symmetric = self._symmetric_copy()
        parts: list[bytes] = []
        for token in _XX[index]:
            if token == "e":
                parts.append(self._ephemeral_public)
                symmetric.mix_hash(self._ephemeral_public)
            elif token == "s":
                parts.append(symmetric.encrypt_and_hash(self._static_public))
            else:
                symmetric.mix_key(self._dh_for(token))
        parts.append(symmetric.encrypt_and_hash(payload))
        self._peer_ee = None
        self._advance(symmetric)
        return b"".join(parts)

    def read_message(self, message: bytes) -> bytes:
        """The payload of the peer's next handshake message; on error nothing changes.

        Raises StateMisuse (not the peer's turn, or complete), MalformedInput (truncated or
        oversized), DecryptFailed (tampered or wrong keys), WeakKey (low-order peer key).
        """
        index = self._turn(writing=False)
        if len(message) > MAX_MESSAGE_LEN:
            raise MalformedInput(f"a Noise handshake message is at most {MAX_MESSAGE_LEN} bytes")
        if len(message) < MESSAGE_OVERHEAD[index]:
            raise MalformedInput("Noise handshake message is truncated")
        symmetric = self._symmetric_copy()
        saved = (self._remote_ephemeral, self._remote_static, self._remote_static_key)
        try:
            payload = self._read_tokens(symmetric, message, _XX[index])
        except BaseException:
            self._remote_ephemeral, self._remote_static, self._remote_static_key = saved
            raise
        self._advance(symmetric)
        return payload

    def split(self) -> tuple[CipherState, CipherState]:
        """(send, receive) transport states for this side; once, after `complete`."""
        if not self.complete or self._split_done:
            raise StateMisuse("Noise split is available once, after the handshake completes")
        assert self._symmetric is not None  # kept from completion until this split
        initiator_to_responder, responder_to_initiator = self._symmetric.split()
        self._symmetric = None
        self._split_done = True
        if self._initiator:
            return initiator_to_responder, responder_to_initiator
        return responder_to_initiator, initiator_to_responder

    def __repr__(self) -> str:
        role = "initiator" if self._initiator else "responder"
        return f"HandshakeState({role}, next message {self._index + 1} of {len(_XX)})"

    def _turn(self, writing: bool) -> int:
        """The index of the next message, if it is ours to write (or the peer's to send)."""
        index = self._index
        if index == len(_XX):
            raise StateMisuse("the Noise handshake is already complete")
        ours = (index % 2 == 0) == self._initiator
        if ours and not writing:
            raise StateMisuse("it is our turn to write a Noise message, not to read one")
        if writing and not ours:
            raise StateMisuse("it is the peer's turn to send a Noise message")
        return index

    def _symmetric_copy(self) -> SymmetricState:
        assert self._symmetric is not None  # present until complete, which _turn excludes
        return self._symmetric.copy()

    def _read_tokens(
        self, symmetric: SymmetricState, message: bytes, tokens: tuple[str, ...]
    ) -> bytes:
        """Process `tokens` of a received message into `symmetric` and the remote keys."""
        offset = 0
        for token in tokens:
            if token == "e":
                public = message[offset : offset + DH_LEN]
                offset += DH_LEN
                symmetric.mix_hash(public)
                self._remote_ephemeral = X25519PublicKey.from_public_bytes(public)
            elif token == "s":
                end = offset + DH_LEN + (TAG_LEN if symmetric.has_key else 0)
                remote_static = symmetric.decrypt_and_hash(message[offset:end])
                offset = end
                self._remote_static = remote_static
                self._remote_static_key = X25519PublicKey.from_public_bytes(remote_static)
            else:
                symmetric.mix_key(self._dh_for(token))
        payload = symmetric.decrypt_and_hash(message[offset:])
        if not self._initiator and self._index == 0:
            # Message 1 brings only `e`; test it now (ee of message 2) so a weak key fails here,
            # on the read that can be rolled back, not later when we write.
            self._peer_ee = self._dh_for("ee")
        return payload

    def _dh_for(self, token: str) -> bytes:
        """The DH result a token mixes in, from this side's point of view."""
        if token == "ee":
            if self._peer_ee is not None:
                return self._peer_ee
            local, remote = self._ephemeral, self._remote_ephemeral
        elif (token == "es") == self._initiator:  # initiator's es, responder's se
            local, remote = self._ephemeral, self._remote_static_key
        else:  # initiator's se, responder's es
            local, remote = self._static, self._remote_ephemeral
        assert local is not None
        assert remote is not None
        return _dh(local, remote)

    def _advance(self, symmetric: SymmetricState) -> None:
        """Commit a processed message; after the last, drop what the handshake no longer needs."""
        self._index += 1
        self._symmetric = symmetric
        if self._index < len(_XX):
            return
        # Done: keep h, and the chaining key only until split() (callers that root their own
        # keys in h never pay for the transport keys); drop the ephemeral secrets now.
        self._handshake_hash = symmetric.handshake_hash
        self._ephemeral = None
        self._remote_ephemeral = None
        self._peer_ee = None
