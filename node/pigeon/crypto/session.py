"""SecureSession: a Noise_XX_25519_ChaChaPoly_SHA256 handshake, then the Double Ratchet; sans-IO.

Flow (prologue `PROLOGUE`; payloads are `session_payload.HandshakePayload`):
  initiator: session, msg1 = SecureSession.initiate(identity, rng)          msg1 payload empty
  responder: session, msg2 = SecureSession.respond(identity, msg1, now, rng)
             msg2 payload: responder's timestamp, id, bundle, first ratchet public key
  initiator: msg3 = session.read_handshake(msg2, now, guard)                 now established
             msg3 payload: initiator's timestamp, id, bundle, first ratchet public key
  responder: session.read_handshake(msg3, now, guard) -> None                now established
Each bundle must name the Noise static key the handshake authenticated (else BundleMismatch);
each payload must be fresh and unseen by the node-wide `HandshakeGuard` (else Replayed).
Message 1's payload must be empty: nothing unauthenticated is ever acted on.
Root key = HKDF-SHA256(salt = none, ikm = final handshake hash, info = ROOT_INFO, 32 bytes).
Both sides can send as soon as they are `established`.

  session.encrypt(plaintext, ad) -> message     pads to 512-byte blocks; raises StateMisuse
  session.decrypt(message, ad, new_chain=True) -> plaintext   raises StateMisuse (not
      established), MalformedInput, DecryptFailed, SkipLimitExceeded, Replayed, WeakKey;
      changes nothing then; new_chain=False refuses a ratchet key never seen (no DH step)
  session.established, session.role, session.peer_bundle, session.remote_ratchet_keys()
  session.handshake_to_resend() -> bytes | None  our last handshake message while the peer
      may lack it (message 1 or 2 while pending; message 3 until the initiator has read a
      ratchet message, which proves the responder completed): the lossy mesh may drop it
  session.to_bytes() / SecureSession.from_bytes(data, identity, rng)   at every step
read_handshake raises Replayed (stale, repeated, or the handshake already complete),
MalformedInput, WeakKey, InvalidSignature, BundleMismatch or DecryptFailed; on any error the
session and the guard are unchanged. `now` is Unix time in seconds, from the caller's clock
(StateMisuse if it is negative).

A pending handshake is stored as its transcript (our ephemeral key, and for the responder
message 1 and the payload it sent): Noise is deterministic given those, so each step rebuilds
the HandshakeState by replaying them, and a failed step leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Final, Literal

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from pigeon.crypto.bundle import BUNDLE_LEN, IdentityBundle
from pigeon.crypto.errors import (
    BundleMismatch,
    CryptoError,
    MalformedInput,
    Replayed,
    StateMisuse,
)
from pigeon.crypto.identity import Identity
from pigeon.crypto.noise import XX_25519_CHACHAPOLY_SHA256, HandshakeState
from pigeon.crypto.padding import pad, unpad
from pigeon.crypto.ratchet import DoubleRatchet, Random
from pigeon.crypto.ratchet_kdf import hkdf_sha256, public_key_of
from pigeon.crypto.session_guard import HandshakeGuard
from pigeon.crypto.session_payload import HANDSHAKE_ID_LEN, PAYLOAD_LEN, HandshakePayload

_LOGGER = logging.getLogger(__name__)

PROLOGUE: Final = b"Pigeon.Session.v1"
ROOT_INFO: Final = b"Pigeon.SessionRoot"
SESSION_VERSION: Final = 1
MESSAGE1_LEN: Final = 32  # XX message 1 is the ephemeral key and the empty payload
MESSAGE3_LEN: Final = 48 + PAYLOAD_LEN + 16  # encrypted static key, encrypted payload
_KEY_LEN: Final = 32
_INITIATOR_PENDING: Final = 1
_RESPONDER_PENDING: Final = 2
_ESTABLISHED: Final = 3
_RESPONDER: Final = 0x01
_UNCONFIRMED: Final = 0x02

Role = Literal["initiator", "responder"]


@dataclass(frozen=True, slots=True, repr=False)
class _InitiatorPending:
    """Message 1 sent, message 2 awaited."""

    ephemeral_private: bytes


@dataclass(frozen=True, slots=True, repr=False)
class _ResponderPending:
    """Message 1 read and message 2 sent, message 3 awaited."""

    ephemeral_private: bytes
    ratchet_private: bytes
    message1: bytes
    payload2: bytes


_Pending = _InitiatorPending | _ResponderPending


def _handshake(identity: Identity, initiator: bool, ephemeral_private: bytes) -> HandshakeState:
    return HandshakeState(
        XX_25519_CHACHAPOLY_SHA256,
        initiator,
        identity.noise_static_private,
        PROLOGUE,
        ephemeral_private,
    )


def _timestamp(now: float) -> int:
    if not 0 <= now < 2**63:
        raise StateMisuse("the clock gave a time outside the Unix epoch range")
    return int(now)


def _root_key(handshake: HandshakeState) -> bytes:
    return hkdf_sha256(None, handshake.handshake_hash, ROOT_INFO, _KEY_LEN)


def _check_bundle(payload: HandshakePayload, handshake: HandshakeState) -> None:
    if payload.bundle.noise_static_public != handshake.remote_static:
        raise BundleMismatch("peer's bundle does not name the key its handshake proved")


class SecureSession:
    """One end-to-end session with one peer: handshake first, then ratchet messages."""

    __slots__ = (
        "_identity",
        "_peer_bundle",
        "_pending",
        "_ratchet",
        "_rng",
        "_role",
        "_unconfirmed",
    )

    def __init__(
        self,
        identity: Identity,
        role: Role,
        rng: Random,
        pending: _Pending | None = None,
        ratchet: DoubleRatchet | None = None,
        peer_bundle: IdentityBundle | None = None,
        unconfirmed: bytes | None = None,
    ) -> None:
        self._identity = identity
        self._role: Role = role
        self._rng = rng
        self._pending = pending
        self._ratchet = ratchet
        self._peer_bundle = peer_bundle
        self._unconfirmed = unconfirmed

    @classmethod
    def initiate(cls, identity: Identity, rng: Random = os.urandom) -> tuple[SecureSession, bytes]:
        """A new initiator session and handshake message 1 (no payload) to send."""
        ephemeral_private = rng(_KEY_LEN)
        message1 = _handshake(identity, True, ephemeral_private).write_message(b"")
        return cls(identity, "initiator", rng, _InitiatorPending(ephemeral_private)), message1

    @classmethod
    def respond(
        cls, identity: Identity, message1: bytes, now: float, rng: Random = os.urandom
    ) -> tuple[SecureSession, bytes]:
        """A responder session for a received message 1, and message 2 to send back.

        Raises MalformedInput (not a bare XX message 1) or WeakKey (low-order ephemeral key).
        """
        if len(message1) != MESSAGE1_LEN:
            raise MalformedInput(f"handshake message 1 must be {MESSAGE1_LEN} bytes")
        ephemeral_private, ratchet_private = rng(_KEY_LEN), rng(_KEY_LEN)
        handshake = _handshake(identity, False, ephemeral_private)
        handshake.read_message(message1)
        ratchet_public = public_key_of(X25519PrivateKey.from_private_bytes(ratchet_private))
        payload2 = HandshakePayload(
            _timestamp(now), rng(HANDSHAKE_ID_LEN), identity.bundle(), ratchet_public
        ).to_bytes()
        message2 = handshake.write_message(payload2)
        pending = _ResponderPending(ephemeral_private, ratchet_private, bytes(message1), payload2)
        return cls(identity, "responder", rng, pending), message2

    @property
    def established(self) -> bool:
        """Whether the handshake is complete and messages may flow."""
        return self._ratchet is not None

    @property
    def role(self) -> Role:
        """Which side of the handshake we are."""
        return self._role

    @property
    def peer_bundle(self) -> IdentityBundle | None:
        """The peer's verified bundle once its handshake message proved it, else None."""
        return self._peer_bundle

    def read_handshake(self, message: bytes, now: float, guard: HandshakeGuard) -> bytes | None:
        """Read message 2 (returns message 3 to send) or message 3 (returns None)."""
        pending = self._pending
        if pending is None:
            raise Replayed("the handshake of this session is already complete")
        _timestamp(now)  # refuse a broken clock before any freshness comparison
        if isinstance(pending, _InitiatorPending):
            return self._read_message2(pending, message, now, guard)
        self._read_message3(pending, message, now, guard)
        return None

    def _read_message2(
        self, pending: _InitiatorPending, message: bytes, now: float, guard: HandshakeGuard
    ) -> bytes:
        handshake = _handshake(self._identity, True, pending.ephemeral_private)
        handshake.write_message(b"")
        peer = HandshakePayload.from_bytes(handshake.read_message(message))
        guard.check(peer.handshake_id, peer.timestamp_s, now)
        _check_bundle(peer, handshake)
        ratchet_private = self._rng(_KEY_LEN)
        ratchet_public = public_key_of(X25519PrivateKey.from_private_bytes(ratchet_private))
        payload3 = HandshakePayload(
            _timestamp(now), self._rng(HANDSHAKE_ID_LEN), self._identity.bundle(), ratchet_public
        )
        message3 = handshake.write_message(payload3.to_bytes())
        ratchet = DoubleRatchet.initiator(
            _root_key(handshake), ratchet_private, peer.ratchet_public, self._rng
        )
        guard.remember(peer.handshake_id, peer.timestamp_s, now)
        self._establish(ratchet, peer.bundle)
        self._unconfirmed = message3
        return message3

    def _read_message3(
        self, pending: _ResponderPending, message: bytes, now: float, guard: HandshakeGuard
    ) -> None:
        handshake = _handshake(self._identity, False, pending.ephemeral_private)
        handshake.read_message(pending.message1)
        handshake.write_message(pending.payload2)
        peer = HandshakePayload.from_bytes(handshake.read_message(message))
        guard.check(peer.handshake_id, peer.timestamp_s, now)
        _check_bundle(peer, handshake)
        ratchet = DoubleRatchet.responder(
            _root_key(handshake), pending.ratchet_private, peer.ratchet_public, self._rng
        )
        guard.remember(peer.handshake_id, peer.timestamp_s, now)
        self._establish(ratchet, peer.bundle)

    def _establish(self, ratchet: DoubleRatchet, peer_bundle: IdentityBundle) -> None:
        self._pending, self._ratchet, self._peer_bundle = None, ratchet, peer_bundle
        _LOGGER.debug("secure session established as %s", self._role)

    def encrypt(self, plaintext: bytes, ad: bytes) -> bytes:
        """A ratchet message carrying `plaintext` padded to 512-byte blocks."""
        return self._established_ratchet().encrypt(pad(plaintext), ad)

    def decrypt(self, message: bytes, ad: bytes, *, new_chain: bool = True) -> bytes:
        """The unpadded plaintext of a ratchet message; a message key is used at most once."""
        plaintext = self._established_ratchet().decrypt(message, ad, unpad, new_chain=new_chain)
        self._unconfirmed = None  # the peer sent under this session, so it has message 3
        return plaintext

    def remote_ratchet_keys(self) -> frozenset[bytes]:
        """The peer's ratchet keys a message opens under without a DH step (none before
        the handshake completes)."""
        return frozenset() if self._ratchet is None else self._ratchet.remote_keys()

    def handshake_to_resend(self) -> bytes | None:
        """Our last handshake message while the peer may not have it, else None."""
        pending = self._pending
        if isinstance(pending, _InitiatorPending):
            return _handshake(self._identity, True, pending.ephemeral_private).write_message(b"")
        if isinstance(pending, _ResponderPending):
            handshake = _handshake(self._identity, False, pending.ephemeral_private)
            handshake.read_message(pending.message1)
            return handshake.write_message(pending.payload2)
        return self._unconfirmed

    def _established_ratchet(self) -> DoubleRatchet:
        if self._ratchet is None:
            raise StateMisuse("the session's handshake is not complete yet")
        return self._ratchet

    def __repr__(self) -> str:
        state = "established" if self.established else "handshaking"
        return f"SecureSession({self._role}, {state})"

    def to_bytes(self) -> bytes:
        """Versioned state (see `from_bytes`); store it after every step."""
        pending = self._pending
        if isinstance(pending, _InitiatorPending):
            return bytes((SESSION_VERSION, _INITIATOR_PENDING)) + pending.ephemeral_private
        if isinstance(pending, _ResponderPending):
            return b"".join(
                (
                    bytes((SESSION_VERSION, _RESPONDER_PENDING)),
                    pending.ephemeral_private,
                    pending.ratchet_private,
                    pending.message1,
                    pending.payload2,
                )
            )
        # Neither pending: established, which always sets both.
        assert self._ratchet is not None
        assert self._peer_bundle is not None
        flags = (self._role == "responder") | (self._unconfirmed is not None) << 1
        return b"".join(
            (
                bytes((SESSION_VERSION, _ESTABLISHED, flags)),
                self._peer_bundle.to_bytes(),
                self._unconfirmed or b"",
                self._ratchet.to_bytes(),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes, identity: Identity, rng: Random = os.urandom) -> SecureSession:
        """Restore a session of `identity` from `to_bytes`; raises MalformedInput.

        Version 1: u8 version | u8 kind, then for kind 1 (initiator awaiting message 2) our
        ephemeral private key (32); kind 2 (responder awaiting message 3) our ephemeral and
        ratchet private keys (32 + 32), message 1 (32) and our message 2 payload (185);
        kind 3 (established) u8 flags (bit 0: we are the responder; bit 1: message 3 not yet
        confirmed, initiator only), the peer's bundle (128), message 3 (249) if bit 1, and the
        ratchet state (the rest).
        """
        data = bytes(data)
        if len(data) < 2:
            raise MalformedInput("session state is truncated")
        version, kind, body = data[0], data[1], data[2:]
        if version != SESSION_VERSION:
            raise MalformedInput(f"unsupported session state version {version}")
        if kind == _INITIATOR_PENDING:
            if len(body) != _KEY_LEN:
                raise MalformedInput("initiator session state has the wrong length")
            return cls(identity, "initiator", rng, _InitiatorPending(body))
        if kind == _RESPONDER_PENDING:
            return cls(identity, "responder", rng, _parse_responder_pending(body))
        if kind == _ESTABLISHED:
            return _parse_established(cls, body, identity, rng)
        raise MalformedInput("unknown session state kind")


def _parse_responder_pending(body: bytes) -> _ResponderPending:
    if len(body) != 3 * _KEY_LEN + PAYLOAD_LEN:
        raise MalformedInput("responder session state has the wrong length")
    payload2 = body[3 * _KEY_LEN :]
    try:
        HandshakePayload.from_bytes(payload2)
    except CryptoError as exc:
        raise MalformedInput("responder session state holds a bad payload") from exc
    return _ResponderPending(
        body[:_KEY_LEN], body[_KEY_LEN : 2 * _KEY_LEN], body[2 * _KEY_LEN : 3 * _KEY_LEN], payload2
    )


def _parse_established(
    cls: type[SecureSession], body: bytes, identity: Identity, rng: Random
) -> SecureSession:
    flags = body[0] if body else 0xFF
    if flags > _UNCONFIRMED:  # also refuses a responder with message 3 unconfirmed
        raise MalformedInput("established session state is malformed")
    role: Role = "responder" if flags & _RESPONDER else "initiator"
    try:
        peer_bundle = IdentityBundle.from_bytes(body[1 : 1 + BUNDLE_LEN])
    except CryptoError as exc:
        raise MalformedInput("established session state holds a bad bundle") from exc
    at = 1 + BUNDLE_LEN
    unconfirmed = None
    if flags & _UNCONFIRMED:
        unconfirmed, at = body[at : at + MESSAGE3_LEN], at + MESSAGE3_LEN
    ratchet = DoubleRatchet.from_bytes(body[at:], rng)
    return cls(identity, role, rng, None, ratchet, peer_bundle, unconfirmed)
