"""The Double Ratchet (Signal spec rev 1) over X25519, HKDF/HMAC-SHA256 and AES-256-GCM; sans-IO.

A message is HEADER_LEN bytes of header, then the AES-256-GCM ciphertext and 16-byte tag:
  32 sender's ratchet public key | u32 PN (previous sending chain length) | u32 N (message number)
The GCM associated data is the caller's associated data followed by the header; the key and nonce
come from the message key (see `ratchet_kdf`).

Public API (every method raises only `pigeon.crypto.errors` types):
  DoubleRatchet.initiator(root_key, ratchet_private, remote_ratchet_public, rng)
      Alice, who knows Bob's first ratchet key (handshake message 2): can send at once.
  DoubleRatchet.responder(root_key, ratchet_private, remote_ratchet_public, rng)
      Bob, who already knows Alice's first ratchet key (the session ships it in handshake
      message 3), so he takes his first receiving step at once and can send at once too.
  encrypt(plaintext, ad) -> message                  raises StateMisuse
  decrypt(message, ad, unwrap, new_chain=True) -> unwrap(plaintext)  raises MalformedInput,
      DecryptFailed, SkipLimitExceeded, Replayed, WeakKey, or what `unwrap` raises (e.g.
      unpadding); on any error the state is exactly as before. With new_chain=False a header
      naming a ratchet key this side has never seen is refused (DecryptFailed) before any DH.
  remote_keys() -> the peer's ratchet keys a message opens under without a DH step.
  to_bytes() / DoubleRatchet.from_bytes(data, rng)   versioned state (`ratchet_state`).
Skipped message keys are kept per (ratchet key, N), at most MAX_SKIP per chain step and
MAX_SKIPPED_TOTAL in all, the oldest evicted first; a header that would need more is refused
before anything is derived. The last MAX_PREVIOUS_CHAINS remote ratchet keys are remembered, so
a repeated message from a recent earlier chain is a cheap `Replayed`, not a DH step that fails.
"""

from __future__ import annotations

import logging
import os
import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pigeon.crypto.errors import (
    DecryptFailed,
    MalformedInput,
    Replayed,
    SkipLimitExceeded,
    StateMisuse,
)
from pigeon.crypto.ratchet_kdf import KEY_LEN, dh, expand_message_key, kdf_ck, kdf_rk, public_key_of
from pigeon.crypto.ratchet_state import (
    MAX_COUNTER,
    MAX_PREVIOUS_CHAINS,
    MAX_SKIP,
    MAX_SKIPPED_TOTAL,
    RatchetSnapshot,
)

__all__ = [
    "HEADER_LEN",
    "MAX_SKIP",
    "MAX_SKIPPED_TOTAL",
    "TAG_LEN",
    "DoubleRatchet",
    "Random",
    "Unwrap",
]

_LOGGER = logging.getLogger(__name__)

Random = Callable[[int], bytes]
"""Source of random bytes: `rng(n)` returns n bytes (os.urandom in production)."""
Unwrap = Callable[[bytes], bytes]
"""Check or transform a decrypted plaintext before the ratchet commits (e.g. `padding.unpad`)."""

HEADER_LEN: Final = 40
TAG_LEN: Final = 16
_COUNTERS: Final = struct.Struct(">II")
_SkippedKeys = OrderedDict[tuple[bytes, int], bytes]


class DoubleRatchet:
    """One side of a Double Ratchet conversation; mutable, but only ever by a successful call."""

    __slots__ = (
        "_ckr",
        "_cks",
        "_dhr",
        "_dhs",
        "_dhs_public",
        "_nr",
        "_ns",
        "_pn",
        "_previous_dhr",
        "_rk",
        "_rng",
        "_skipped",
    )

    def __init__(self, snapshot: RatchetSnapshot, rng: Random = os.urandom) -> None:
        self._rng = rng
        self._dhs = X25519PrivateKey.from_private_bytes(snapshot.dhs_private)
        self._dhs_public = public_key_of(self._dhs)
        self._rk = snapshot.rk
        self._dhr = snapshot.dhr
        self._cks = snapshot.cks
        self._ckr = snapshot.ckr
        self._ns, self._nr, self._pn = snapshot.ns, snapshot.nr, snapshot.pn
        self._previous_dhr = snapshot.previous_dhr
        self._skipped: _SkippedKeys = OrderedDict(
            ((public, number), key) for public, number, key in snapshot.skipped
        )

    @classmethod
    def initiator(
        cls,
        root_key: bytes,
        ratchet_private: bytes,
        remote_ratchet_public: bytes,
        rng: Random = os.urandom,
    ) -> DoubleRatchet:
        """Alice's side (RatchetInitAlice); raises MalformedInput or WeakKey for a bad key."""
        _check_key(root_key)
        _check_key(ratchet_private)
        dhs = X25519PrivateKey.from_private_bytes(ratchet_private)
        rk, cks = kdf_rk(root_key, dh(dhs, remote_ratchet_public))
        snapshot = RatchetSnapshot(
            ratchet_private, rk, remote_ratchet_public, cks, None, 0, 0, 0, (), ()
        )
        return cls(snapshot, rng)

    @classmethod
    def responder(
        cls,
        root_key: bytes,
        ratchet_private: bytes,
        remote_ratchet_public: bytes,
        rng: Random = os.urandom,
    ) -> DoubleRatchet:
        """Bob's side (RatchetInitBob), stepped at once onto Alice's known first ratchet key."""
        _check_key(root_key)
        _check_key(ratchet_private)
        snapshot = RatchetSnapshot(ratchet_private, root_key, None, None, None, 0, 0, 0, (), ())
        ratchet = cls(snapshot, rng)
        rk, ckr, dhs, cks = ratchet._dh_step(remote_ratchet_public)
        ratchet._commit_dh_step(remote_ratchet_public, rk, ckr, dhs, cks)
        return ratchet

    @classmethod
    def from_bytes(cls, data: bytes, rng: Random = os.urandom) -> DoubleRatchet:
        """Restore from `to_bytes`; raises MalformedInput."""
        return cls(RatchetSnapshot.from_bytes(data), rng)

    def to_bytes(self) -> bytes:
        """The versioned state; `from_bytes` restores it exactly."""
        return self.snapshot().to_bytes()

    def snapshot(self) -> RatchetSnapshot:
        """Every field of the state as an immutable value."""
        skipped = tuple((public, number, key) for (public, number), key in self._skipped.items())
        return RatchetSnapshot(
            self._dhs.private_bytes_raw(),
            self._rk,
            self._dhr,
            self._cks,
            self._ckr,
            self._ns,
            self._nr,
            self._pn,
            self._previous_dhr,
            skipped,
        )

    def remote_keys(self) -> frozenset[bytes]:
        """The peer's ratchet keys a message may still be opened under without a DH step:
        the current one, and those of kept skipped message keys."""
        known = {public for public, _ in self._skipped}
        if self._dhr is not None:
            known.add(self._dhr)
        return frozenset(known)

    @property
    def ratchet_public(self) -> bytes:
        """Our current ratchet public key (the one the next message's header carries)."""
        return self._dhs_public

    def __repr__(self) -> str:
        return f"DoubleRatchet(ns={self._ns}, nr={self._nr}, skipped={len(self._skipped)})"

    def encrypt(self, plaintext: bytes, ad: bytes) -> bytes:
        """One message: header || ciphertext; raises StateMisuse without a sending chain."""
        cks = self._cks
        if cks is None:
            raise StateMisuse("no sending chain yet: wait for the peer's first message")
        if self._ns >= MAX_COUNTER:
            raise StateMisuse("sending chain exhausted")
        message_key, self._cks = kdf_ck(cks)
        header = self._dhs_public + _COUNTERS.pack(self._pn, self._ns)
        self._ns += 1
        okm = expand_message_key(message_key)
        return header + AESGCM(okm[:KEY_LEN]).encrypt(okm[KEY_LEN:], plaintext, ad + header)

    def decrypt(
        self, message: bytes, ad: bytes, unwrap: Unwrap = bytes, *, new_chain: bool = True
    ) -> bytes:
        """`unwrap` of the plaintext of `message`, committed only if both succeed; a new
        remote ratchet key (a DH step) is accepted only if `new_chain`."""
        if len(message) < HEADER_LEN + TAG_LEN:
            raise MalformedInput("ratchet message is shorter than header and tag")
        header = message[:HEADER_LEN]
        public = header[:KEY_LEN]
        pn, n = _COUNTERS.unpack_from(header, KEY_LEN)
        if n >= MAX_COUNTER:  # never sent (encrypt stops below it), and Nr must stay a u32
            raise MalformedInput("ratchet message number out of range")
        skipped = self._skipped
        if skipped:
            message_key = skipped.get((public, n))
            if message_key is not None:
                plaintext = unwrap(_open(message_key, message, ad, header))
                del skipped[(public, n)]
                return plaintext
        if public != self._dhr:
            if public in self._previous_dhr:
                raise Replayed("message of an earlier chain whose key was used or dropped")
            if not new_chain:
                raise DecryptFailed("ratchet key unknown here and no new chain is expected")
            return self._decrypt_new_chain(message, ad, header, pn, n, unwrap)
        ckr = self._ckr
        if ckr is None:
            raise DecryptFailed("no receiving chain for this ratchet key")
        if n < self._nr:
            raise Replayed("ratchet message key already used")
        if n > self._nr:
            return self._decrypt_after_gap(message, ad, header, n, unwrap)
        message_key, next_ckr = kdf_ck(ckr)
        plaintext = unwrap(_open(message_key, message, ad, header))
        self._ckr, self._nr = next_ckr, n + 1
        return plaintext

    def _decrypt_after_gap(
        self, message: bytes, ad: bytes, header: bytes, n: int, unwrap: Unwrap
    ) -> bytes:
        """A later message of the current chain: keep the keys of those not yet arrived."""
        assert self._ckr is not None  # the caller checked
        _check_skip(self._nr, n)
        new_skipped: list[tuple[tuple[bytes, int], bytes]] = []
        ckr = _skip(self._ckr, self._nr, n, header[:KEY_LEN], new_skipped)
        message_key, next_ckr = kdf_ck(ckr)
        plaintext = unwrap(_open(message_key, message, ad, header))
        self._add_skipped(new_skipped)
        self._ckr, self._nr = next_ckr, n + 1
        return plaintext

    def _decrypt_new_chain(
        self, message: bytes, ad: bytes, header: bytes, pn: int, n: int, unwrap: Unwrap
    ) -> bytes:
        """A header with a new ratchet key: skip, DH-step, decrypt, then commit all or nothing."""
        if self._ckr is not None:
            _check_skip(self._nr, pn)
        _check_skip(0, n)
        new_skipped: list[tuple[tuple[bytes, int], bytes]] = []
        if self._ckr is not None and self._dhr is not None:
            _skip(self._ckr, self._nr, pn, self._dhr, new_skipped)
        public = header[:KEY_LEN]
        rk, ckr, dhs, cks = self._dh_step(public)
        ckr = _skip(ckr, 0, n, public, new_skipped)
        message_key, next_ckr = kdf_ck(ckr)
        plaintext = unwrap(_open(message_key, message, ad, header))
        self._add_skipped(new_skipped)
        self._commit_dh_step(public, rk, next_ckr, dhs, cks)
        self._nr = n + 1
        _LOGGER.debug("ratchet stepped to a new remote key (%d keys skipped)", len(new_skipped))
        return plaintext

    def _dh_step(self, remote_public: bytes) -> tuple[bytes, bytes, X25519PrivateKey, bytes]:
        """DHRatchet's derivations, without touching state: (RK, CKr, new DHs, CKs)."""
        rk, ckr = kdf_rk(self._rk, dh(self._dhs, remote_public))
        dhs = X25519PrivateKey.from_private_bytes(self._rng(KEY_LEN))
        rk, cks = kdf_rk(rk, dh(dhs, remote_public))
        return rk, ckr, dhs, cks

    def _commit_dh_step(
        self, remote_public: bytes, rk: bytes, ckr: bytes, dhs: X25519PrivateKey, cks: bytes
    ) -> None:
        self._pn, self._ns, self._nr = self._ns, 0, 0
        if self._dhr is not None:
            self._previous_dhr = (*self._previous_dhr, self._dhr)[-MAX_PREVIOUS_CHAINS:]
        self._dhr, self._rk, self._ckr, self._cks = remote_public, rk, ckr, cks
        self._dhs, self._dhs_public = dhs, public_key_of(dhs)

    def _add_skipped(self, new_skipped: list[tuple[tuple[bytes, int], bytes]]) -> None:
        skipped = self._skipped
        skipped.update(new_skipped)
        for _ in range(len(skipped) - MAX_SKIPPED_TOTAL):
            skipped.popitem(last=False)


def _check_key(key: bytes) -> None:
    if len(key) != KEY_LEN:
        raise MalformedInput(f"ratchet keys are {KEY_LEN} bytes")


def _check_skip(nr: int, until: int) -> None:
    if until - nr > MAX_SKIP:
        raise SkipLimitExceeded("ratchet header skips more message keys than allowed")


def _skip(
    ckr: bytes, nr: int, until: int, public: bytes, out: list[tuple[tuple[bytes, int], bytes]]
) -> bytes:
    """Append the message keys nr..until-1 of a receiving chain to `out`; the chain key after."""
    while nr < until:
        message_key, ckr = kdf_ck(ckr)
        out.append(((public, nr), message_key))
        nr += 1
    return ckr


def _open(message_key: bytes, message: bytes, ad: bytes, header: bytes) -> bytes:
    okm = expand_message_key(message_key)
    try:
        return AESGCM(okm[:KEY_LEN]).decrypt(okm[KEY_LEN:], message[HEADER_LEN:], ad + header)
    except InvalidTag as exc:
        raise DecryptFailed("ratchet message does not authenticate") from exc
