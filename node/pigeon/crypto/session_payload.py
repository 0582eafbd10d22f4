"""The payload of secure-session handshake messages 2 and 3 (inside Noise's encryption).

Layout (PAYLOAD_LEN = 185 bytes, integers big-endian):
  u8 version (1) | u64 timestamp (Unix seconds) | 16 handshake id (random)
  | 128 IdentityBundle of the sender | 32 sender's first Double Ratchet public key (X25519)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from pigeon.crypto.bundle import BUNDLE_LEN, IdentityBundle, check_x25519_public_key
from pigeon.crypto.errors import MalformedInput

PAYLOAD_VERSION: Final = 1
HANDSHAKE_ID_LEN: Final = 16
RATCHET_KEY_LEN: Final = 32
_PREFIX: Final = struct.Struct(">BQ")
PAYLOAD_LEN: Final = _PREFIX.size + HANDSHAKE_ID_LEN + BUNDLE_LEN + RATCHET_KEY_LEN


@dataclass(frozen=True, slots=True)
class HandshakePayload:
    """What each side proves in its authenticated handshake message (2 or 3)."""

    timestamp_s: int
    handshake_id: bytes
    bundle: IdentityBundle
    ratchet_public: bytes

    def to_bytes(self) -> bytes:
        """The PAYLOAD_LEN-byte wire form."""
        return b"".join(
            (
                _PREFIX.pack(PAYLOAD_VERSION, self.timestamp_s),
                self.handshake_id,
                self.bundle.to_bytes(),
                self.ratchet_public,
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> HandshakePayload:
        """Parse and check; raises MalformedInput, WeakKey or InvalidSignature (the bundle)."""
        if len(data) != PAYLOAD_LEN:
            raise MalformedInput(f"handshake payload must be {PAYLOAD_LEN} bytes")
        version, timestamp_s = _PREFIX.unpack_from(data)
        if version != PAYLOAD_VERSION:
            raise MalformedInput(f"unsupported handshake payload version {version}")
        at = _PREFIX.size
        handshake_id = bytes(data[at : at + HANDSHAKE_ID_LEN])
        at += HANDSHAKE_ID_LEN
        bundle = IdentityBundle.from_bytes(data[at : at + BUNDLE_LEN])
        ratchet_public = bytes(data[at + BUNDLE_LEN :])
        check_x25519_public_key(ratchet_public)
        return cls(timestamp_s, handshake_id, bundle, ratchet_public)
