"""A bitchat identity this node speaks as: a Noise static key (X25519) and an Ed25519 signing
key, its peer id (the first 8 bytes of SHA-256 of the Noise public key, as phones require),
and the signed packets it originates: announces and public messages.

It is never the owner's Pigeon identity: its secrets are its own 64 bytes, kept by the caller
in the encrypted store (`to_bytes` / `from_bytes`). Randomness comes from the caller.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from pigeon.bitchat import packet as wire
from pigeon.bitchat.errors import LocalError

STATE_VERSION: Final = 1
KEY_SIZE: Final = 32
STATE_SIZE: Final = 1 + 2 * KEY_SIZE
# Announce TLVs (bitchat's AnnouncementPacket).
TLV_NICKNAME: Final = 0x01
TLV_NOISE_KEY: Final = 0x02
TLV_SIGNING_KEY: Final = 0x03
TLV_NEIGHBOURS: Final = 0x04
TLV_CAPABILITIES: Final = 0x05
# Phones re-encode a packet to check its signature and compress payloads of 100 bytes or more
# whose bytes are under 90% distinct. Our announce stays under 100 bytes so no compressor's
# output is ever part of what we sign: 73 bytes of keys and TLV heads plus the nickname.
MAX_NICKNAME_BYTES: Final = 24
COMPRESSION_THRESHOLD: Final = 100
MAX_MESSAGE_BYTES: Final = 400  # one packet within a 512-byte GATT value: we send no fragments
# The node advertises no optional capability: it does no prekeys, Wi-Fi bulk, Nostr gateway,
# groups, boards, vouching, mesh diagnostics (it answers no ping) or bridging. Sending the TLV
# with value 0 tells phones this (an absent TLV means an old client).
NODE_CAPABILITIES: Final = 0


def peer_id_for(noise_public_key: bytes) -> bytes:
    """bitchat's peer id for a Noise static public key."""
    return hashlib.sha256(noise_public_key).digest()[: wire.ID_SIZE]


def encode_capabilities(bits: int) -> bytes:
    """bitchat's capability bits: little-endian, shortest form, at least one byte."""
    return bits.to_bytes(max(1, (bits.bit_length() + 7) // 8), "little")


@dataclass(frozen=True, slots=True)
class BitchatIdentity:
    """The keys of one bitchat peer this node speaks as."""

    noise_private: bytes
    signing_seed: bytes

    @classmethod
    def generate(cls, random_bytes: Callable[[int], bytes]) -> BitchatIdentity:
        """Fresh keys from `random_bytes` (os.urandom in the node)."""
        return cls(random_bytes(KEY_SIZE), random_bytes(KEY_SIZE))

    @classmethod
    def from_bytes(cls, state: bytes) -> BitchatIdentity:
        """Keys from `to_bytes`; raises ValueError for anything else."""
        if len(state) != STATE_SIZE or state[0] != STATE_VERSION:
            raise ValueError("not a version 1 bitchat identity")
        return cls(state[1 : 1 + KEY_SIZE], state[1 + KEY_SIZE :])

    def to_bytes(self) -> bytes:
        """The secret keys, versioned, for the encrypted store."""
        return bytes((STATE_VERSION,)) + self.noise_private + self.signing_seed

    @property
    def noise_public(self) -> bytes:
        """The Noise static public key (X25519)."""
        return bytes(PrivateKey(self.noise_private).public_key)

    @property
    def signing_public(self) -> bytes:
        """The Ed25519 public key."""
        return bytes(SigningKey(self.signing_seed).verify_key)

    @property
    def peer_id(self) -> bytes:
        """The 8-byte bitchat peer id."""
        return peer_id_for(self.noise_public)

    def announce(
        self, nickname: str, timestamp_ms: int, capabilities: int = NODE_CAPABILITIES
    ) -> bytes:
        """A signed, padded v1 announce at TTL 7; raises LocalError for a long nickname."""
        name = nickname.encode()
        if not 0 < len(name) <= MAX_NICKNAME_BYTES:
            raise LocalError("nickname must be 1 to 24 bytes of UTF-8")
        payload = b"".join(
            (
                _tlv(TLV_NICKNAME, name),
                _tlv(TLV_NOISE_KEY, self.noise_public),
                _tlv(TLV_SIGNING_KEY, self.signing_public),
                _tlv(TLV_CAPABILITIES, encode_capabilities(capabilities)),
            )
        )
        return self._signed(wire.OutPacket(wire.ANNOUNCE, 7, timestamp_ms, self.peer_id, payload))

    def public_message(self, text: str, timestamp_ms: int) -> bytes:
        """A signed, padded v1 public message (broadcast, TTL 7); raises LocalError."""
        body = text.encode()
        if not 0 < len(body) <= MAX_MESSAGE_BYTES:
            raise LocalError("a public message must be 1 to 400 bytes of UTF-8")
        return self._signed(_maybe_compressed(wire.MESSAGE, timestamp_ms, self.peer_id, body))

    def directed(self, kind: int, recipient: bytes, payload: bytes, timestamp_ms: int) -> bytes:
        """A signed, padded v1 packet of `kind` for `recipient` (TTL 7): courier envelopes and
        spray receipts, compressed as bitchat's encoder would so phones check what we signed."""
        return self._signed(_maybe_compressed(kind, timestamp_ms, self.peer_id, payload, recipient))

    def unsigned_broadcast(self, kind: int, payload: bytes, timestamp_ms: int) -> bytes:
        """An unsigned, padded v1 broadcast of `kind` (TTL 7), compressed as bitchat's encoder
        would: a gateway's downlink carriers, whose events carry their own signatures."""
        return wire.encode(_maybe_compressed(kind, timestamp_ms, self.peer_id, payload))

    def _signed(self, out: wire.OutPacket) -> bytes:
        unsigned = wire.encode(out, padded=False)
        view = wire.parse(unsigned)
        signature = SigningKey(self.signing_seed).sign(wire.signed_bytes(unsigned, view)).signature
        return wire.encode(out, signature)


def _tlv(kind: int, value: bytes) -> bytes:
    return bytes((kind, len(value))) + value


def should_compress(payload: bytes) -> bool:
    """bitchat's rule: 100 bytes or more, and under 90% distinct bytes in the first 256."""
    if len(payload) < COMPRESSION_THRESHOLD:
        return False
    return len(set(payload)) / min(len(payload), 256) < 0.9


def _maybe_compressed(
    kind: int, timestamp_ms: int, sender: bytes, body: bytes, recipient: bytes | None = None
) -> wire.OutPacket:
    """Compress as bitchat's encoder would (raw DEFLATE, zlib level 5) so that a phone, which
    re-encodes a packet to check its signature, signs-checks the same bytes we signed."""
    if should_compress(body):
        compressor = zlib.compressobj(5, zlib.DEFLATED, -15)
        packed = compressor.compress(body) + compressor.flush()
        if len(packed) < len(body):
            return wire.OutPacket(
                kind, 7, timestamp_ms, sender, packed, recipient, compressed_from=len(body)
            )
    return wire.OutPacket(kind, 7, timestamp_ms, sender, body, recipient)
