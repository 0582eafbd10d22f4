"""Secure-session steps for the messenger, over stored bytes (sans-IO, no vault access).

Each method takes stored state, returns new state and what to send; the caller stores the
state in the same vault transaction that records what the step produced or consumed. Raises
the crypto room's errors (CryptoError) on bad input from outside, leaving nothing changed.
Parsed sessions are cached by the exact bytes they were last stored as (parsing verifies the
peer's bundle signature, which a 25 MB file would otherwise pay for thousands of times); a
transaction that rolled back leaves other bytes in the vault, so the cache misses and reparses.
Simultaneous initiation: `initiation_wins` decides which of two handshakes both sides keep.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from pigeon.crypto.bundle import IdentityBundle
from pigeon.crypto.errors import BundleMismatch, StateMisuse
from pigeon.crypto.identity import Identity
from pigeon.crypto.session import SecureSession
from pigeon.crypto.session_guard import HandshakeGuard
from pigeon.messenger.envelope import Inner, decode_inner, encode_inner
from pigeon.messenger.packets import Random

CACHE_SIZE: Final = 32


@dataclass(frozen=True, slots=True, repr=False)
class Established:
    """A session that completed its handshake, and the peer it proved."""

    state: bytes
    peer: IdentityBundle


def load_guard(data: bytes | None) -> HandshakeGuard:
    """The node-wide handshake guard from its stored bytes (a fresh one if none)."""
    return HandshakeGuard() if data is None else HandshakeGuard.from_bytes(data)


def initiation_wins(our_key: bytes, peer_key: bytes) -> bool:
    """Both sides initiated: the initiation of the lower Ed25519 key (bytewise) is kept."""
    return our_key < peer_key


def decode(plaintext: bytes) -> Inner:
    """The inner message of a decrypted plaintext; raises MalformedEnvelope."""
    return decode_inner(plaintext)


class SessionOps:
    """Session steps for one identity, with a small cache of parsed sessions."""

    def __init__(self, identity: Identity, rng: Random) -> None:
        self._identity = identity
        self._rng = rng
        self._cache: OrderedDict[bytes, SecureSession] = OrderedDict()

    def forget(self) -> None:
        """Drop the parsed sessions (they hold the identity's keys): the vault is being locked."""
        self._cache.clear()

    def _load(self, state: bytes) -> SecureSession:
        """The session stored as `state`; taken out of the cache (the caller may mutate it)."""
        session = self._cache.pop(state, None)
        if session is None:
            session = SecureSession.from_bytes(state, self._identity, self._rng)
        return session

    def _keep(self, session: SecureSession) -> bytes:
        """Store `session` in the cache under its bytes, and return them."""
        state = session.to_bytes()
        self._cache[state] = session
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return state

    def _peek(self, state: bytes) -> SecureSession:
        session = self._cache.get(state)
        if session is None:
            session = SecureSession.from_bytes(state, self._identity, self._rng)
            self._cache[state] = session
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return session

    def initiate(self) -> tuple[bytes, bytes]:
        """(initiator session state, Noise message 1)."""
        session, message1 = SecureSession.initiate(self._identity, self._rng)
        return session.to_bytes(), message1

    def respond(self, message1: bytes, now: float) -> tuple[bytes, bytes]:
        """(responder session state, Noise message 2) for a received message 1."""
        session, message2 = SecureSession.respond(self._identity, message1, now, self._rng)
        return session.to_bytes(), message2

    def read_reply(
        self,
        state: bytes,
        message2: bytes,
        expected: IdentityBundle,
        guard: HandshakeGuard,
        now: float,
    ) -> tuple[Established, bytes]:
        """Complete our initiation with message 2: (session, Noise message 3 to send).

        Raises BundleMismatch if the responder is not `expected` (the contact's card); the
        guard may have changed then, so store it only after success.
        """
        session = SecureSession.from_bytes(state, self._identity, self._rng)
        if session.established or session.role != "initiator":
            raise StateMisuse("no initiation is pending")
        message3 = session.read_handshake(message2, now, guard)
        peer = session.peer_bundle
        if message3 is None or peer is None or peer.to_bytes() != expected.to_bytes():
            raise BundleMismatch("message 2 came from someone other than the contact")
        return Established(self._keep(session), peer), message3

    def read_confirm(
        self, state: bytes, message3: bytes, guard: HandshakeGuard, now: float
    ) -> Established:
        """Complete a responder session with message 3; the caller checks who the peer is."""
        session = SecureSession.from_bytes(state, self._identity, self._rng)
        session.read_handshake(message3, now, guard)
        peer = session.peer_bundle
        if peer is None:
            raise StateMisuse("a completed handshake names its peer")
        return Established(self._keep(session), peer)

    def encrypt(self, state: bytes, inner: Inner, ad: bytes) -> tuple[bytes, bytes]:
        """(new session state, ratchet message) carrying `inner`."""
        session = self._load(state)
        message = session.encrypt(encode_inner(inner), ad)
        return self._keep(session), message

    def decrypt(
        self, state: bytes, message: bytes, ad: bytes, *, new_chain: bool = True
    ) -> tuple[bytes, bytes]:
        """(new session state, plaintext); raises CryptoError and changes nothing on failure.
        With `new_chain` False a ratchet key the session never saw is refused before any DH."""
        session = self._peek(state)
        # on failure the session is unchanged
        plaintext = session.decrypt(message, ad, new_chain=new_chain)
        self._cache.pop(state, None)
        return self._keep(session), plaintext

    def remote_ratchet_keys(self, state: bytes) -> frozenset[bytes]:
        """The peer's ratchet keys stored session state opens messages under without DH."""
        return self._peek(state).remote_ratchet_keys() if state else frozenset()

    def is_established(self, state: bytes) -> bool:
        """Whether stored session state has completed its handshake."""
        return bool(state) and self._peek(state).established

    def is_initiator(self, state: bytes) -> bool:
        """Whether stored session state is our own initiation (pending or established)."""
        return bool(state) and self._peek(state).role == "initiator"

    def unconfirmed_handshake(self, state: bytes) -> bytes | None:
        """Our last handshake message while the peer may still lack it, else None."""
        return self._peek(state).handshake_to_resend() if state else None
