"""Noise CipherState and SymmetricState (Noise spec rev 34, sections 5.1-5.2) over ChaChaPoly.

HASH comes from hashlib; HKDF is the spec's (section 4.3), which for SHA-256 is RFC 5869 HKDF as
`cryptography` computes it, and for BLAKE2s the HMAC chain over hmac. The AEAD is
`cryptography`'s ChaCha20Poly1305 with the spec's nonce: 32 zero bits, then the 64-bit counter
little-endian. Raises MalformedInput, DecryptFailed, NonceExhausted (pigeon.crypto.errors).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeAlias

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pigeon.crypto.errors import DecryptFailed, MalformedInput, NonceExhausted

if TYPE_CHECKING:
    from _hashlib import _HashObject

    HashConstructor: TypeAlias = Callable[..., _HashObject]

MAX_MESSAGE_LEN: Final = 65535
KEY_LEN: Final = 32
TAG_LEN: Final = 16
HASH_LEN: Final = 32
# Nonce 2^64-1 is reserved by the spec (for rekeying), so it may never be used to encrypt.
MAX_NONCE: Final = 2**64 - 1

_CHACHA_NONCE: Final = struct.Struct("<4xQ")
_SHA256_ALGORITHM: Final = hashes.SHA256()
_BYTE_1: Final = b"\x01"
_BYTE_2: Final = b"\x02"


@dataclass(frozen=True, slots=True)
class HashSuite:
    """One Noise hash function: its name in protocol names, HASH, and the spec's HKDF."""

    name: str
    new: HashConstructor
    hkdf2: Callable[[bytes, bytes], tuple[bytes, bytes]]

    def hash(self, data: bytes) -> bytes:
        """HASH(data)."""
        return self.new(data).digest()


def _hkdf2_sha256(chaining_key: bytes, input_key_material: bytes) -> tuple[bytes, bytes]:
    # Noise's HKDF (spec 4.3) is RFC 5869 HKDF with the chaining key as salt and empty info;
    # `cryptography` runs all three HMACs in one native call, faster than three hmac.digest.
    output = HKDF(_SHA256_ALGORITHM, 2 * HASH_LEN, chaining_key, b"").derive(input_key_material)
    return output[:HASH_LEN], output[HASH_LEN:]


def _hkdf2_blake2s(chaining_key: bytes, input_key_material: bytes) -> tuple[bytes, bytes]:
    # The spec's HMAC chain, written out: here hashlib's BLAKE2s under hmac beats cryptography's
    # HKDF over BLAKE2s. Passing the constructor (not the name) keeps HMAC on hashlib's BLAKE2s.
    temp_key = hmac.digest(chaining_key, input_key_material, hashlib.blake2s)
    output1 = hmac.digest(temp_key, _BYTE_1, hashlib.blake2s)
    return output1, hmac.digest(temp_key, output1 + _BYTE_2, hashlib.blake2s)


SHA256: Final = HashSuite("SHA256", hashlib.sha256, _hkdf2_sha256)
BLAKE2S: Final = HashSuite("BLAKE2s", hashlib.blake2s, _hkdf2_blake2s)


class CipherState:
    """A key (or none yet) and a 64-bit nonce counter; encrypts under the spec's AEAD rules.

    Without a key it passes bytes through unchanged, as the spec requires during a handshake.
    """

    __slots__ = ("_aead", "_nonce")

    def __init__(self, key: bytes | None = None, nonce: int = 0) -> None:
        if key is not None and len(key) != KEY_LEN:
            raise MalformedInput(f"a Noise cipher key is {KEY_LEN} bytes")
        if not 0 <= nonce <= MAX_NONCE:
            raise MalformedInput("a Noise nonce is a 64-bit counter")
        self._aead = None if key is None else ChaCha20Poly1305(key)
        self._nonce = nonce

    @classmethod
    def _sharing(cls, aead: ChaCha20Poly1305 | None, nonce: int) -> CipherState:
        """A state with an existing AEAD object (immutable, so safe to share between copies)."""
        state = cls.__new__(cls)
        state._aead = aead
        state._nonce = nonce
        return state

    @property
    def has_key(self) -> bool:
        """Whether a key is set (before it is, encryption is the identity)."""
        return self._aead is not None

    @property
    def nonce(self) -> int:
        """The nonce the next encryption or decryption will use."""
        return self._nonce

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        """Encrypt and advance the nonce. Raises MalformedInput (too long), NonceExhausted."""
        aead = self._aead
        if aead is None:
            if len(plaintext) > MAX_MESSAGE_LEN:
                raise MalformedInput(f"a Noise message is at most {MAX_MESSAGE_LEN} bytes")
            return plaintext
        if len(plaintext) > MAX_MESSAGE_LEN - TAG_LEN:
            raise MalformedInput(f"a Noise plaintext is at most {MAX_MESSAGE_LEN - TAG_LEN} bytes")
        nonce = self._nonce
        if nonce == MAX_NONCE:
            raise NonceExhausted("this Noise cipher state has used every nonce")
        ciphertext = aead.encrypt(_CHACHA_NONCE.pack(nonce), plaintext, ad)
        self._nonce = nonce + 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        """Decrypt and advance the nonce; on any error the nonce stays where it was.

        Raises MalformedInput (too long or shorter than a tag), NonceExhausted, DecryptFailed.
        """
        if len(ciphertext) > MAX_MESSAGE_LEN:
            raise MalformedInput(f"a Noise message is at most {MAX_MESSAGE_LEN} bytes")
        aead = self._aead
        if aead is None:
            return ciphertext
        if len(ciphertext) < TAG_LEN:
            raise MalformedInput("Noise ciphertext is shorter than its authentication tag")
        nonce = self._nonce
        if nonce == MAX_NONCE:
            raise NonceExhausted("this Noise cipher state has used every nonce")
        try:
            plaintext = aead.decrypt(_CHACHA_NONCE.pack(nonce), ciphertext, ad)
        except InvalidTag:
            raise DecryptFailed("Noise ciphertext does not authenticate") from None
        self._nonce = nonce + 1
        return plaintext

    def __repr__(self) -> str:
        return f"CipherState(has_key={self.has_key}, nonce={self._nonce})"


def initial_hash(suite: HashSuite, protocol_name: bytes) -> bytes:
    """The spec's first h: the name zero-padded to HASHLEN, or its hash if longer."""
    if len(protocol_name) <= HASH_LEN:
        return protocol_name.ljust(HASH_LEN, b"\x00")
    return suite.hash(protocol_name)


class SymmetricState:
    """The chaining key, the handshake hash h and the handshake's CipherState (spec 5.2)."""

    __slots__ = ("_chaining_key", "_cipher", "_hash", "_suite")

    def __init__(self, suite: HashSuite, first_hash: bytes) -> None:
        self._suite = suite
        self._chaining_key = first_hash
        self._hash = first_hash
        self._cipher = CipherState()

    def copy(self) -> SymmetricState:
        """An independent copy, to run a message on and keep only if the whole message succeeds."""
        twin = SymmetricState.__new__(SymmetricState)
        twin._suite = self._suite
        twin._chaining_key = self._chaining_key
        twin._hash = self._hash
        cipher = self._cipher
        twin._cipher = CipherState._sharing(cipher._aead, cipher._nonce)
        return twin

    @property
    def handshake_hash(self) -> bytes:
        """The current h."""
        return self._hash

    @property
    def has_key(self) -> bool:
        """Whether the handshake cipher has a key yet."""
        return self._cipher._aead is not None

    def mix_key(self, input_key_material: bytes) -> None:
        """MixKey: ratchet the chaining key and rekey the cipher with nonce 0."""
        self._chaining_key, temp_key = self._suite.hkdf2(self._chaining_key, input_key_material)
        self._cipher = CipherState._sharing(ChaCha20Poly1305(temp_key), 0)

    def mix_hash(self, data: bytes) -> None:
        """MixHash: h = HASH(h || data)."""
        self._hash = self._suite.new(self._hash + data).digest()

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        """EncryptAndHash: encrypt with h as associated data, then mix the ciphertext into h."""
        ciphertext = self._cipher.encrypt_with_ad(self._hash, plaintext)
        self._hash = self._suite.new(self._hash + ciphertext).digest()
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        """DecryptAndHash; raises as `CipherState.decrypt_with_ad` and then changes nothing."""
        plaintext = self._cipher.decrypt_with_ad(self._hash, ciphertext)
        self._hash = self._suite.new(self._hash + ciphertext).digest()
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        """Split: the initiator-to-responder and responder-to-initiator transport states."""
        key1, key2 = self._suite.hkdf2(self._chaining_key, b"")
        return CipherState(key1), CipherState(key2)
