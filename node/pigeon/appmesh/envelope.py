"""The app's envelope (a packet's payload): `version=1 | type u8 | sender 32 | recipient 32 | rest`.

Sender and recipient are the parties' Ed25519 identity keys, in clear. The rest is opaque to a
relay (Olm ciphertext, or an X3DH initiation for type 6); it is never parsed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from pigeon.appmesh.errors import MalformedEnvelope

VERSION: Final = 1
KEY_SIZE: Final = 32
HEADER_SIZE: Final = 2 + 2 * KEY_SIZE  # 66


class EnvelopeType(IntEnum):
    """What an envelope carries."""

    HANDSHAKE = 1  # the old Noise handshake: still valid on the wire, ignored by the app now
    MESSAGE = 2
    REHANDSHAKE_REQUEST = 3
    ACK = 4
    CONTROL = 5
    X3DH_INIT = 6


_TYPES: Final = {int(kind): kind for kind in EnvelopeType}


@dataclass(frozen=True, slots=True)
class Envelope:
    """One decoded envelope."""

    type: EnvelopeType
    sender: bytes
    recipient: bytes
    payload: bytes


def encode_envelope(envelope: Envelope) -> bytes:
    """The envelope's wire bytes; raises ValueError for keys of the wrong size (our fault)."""
    if len(envelope.sender) != KEY_SIZE or len(envelope.recipient) != KEY_SIZE:
        raise ValueError("sender and recipient keys must be 32 bytes")
    return bytes((VERSION, envelope.type)) + envelope.sender + envelope.recipient + envelope.payload


def decode_envelope(data: bytes) -> Envelope:
    """Parse a packet payload; raises MalformedEnvelope."""
    kind, sender, recipient = route_of(data)
    return Envelope(kind, sender, recipient, data[HEADER_SIZE:])


def route_of(data: bytes, offset: int = 0) -> tuple[EnvelopeType, bytes, bytes]:
    """Type, sender and recipient of the envelope at `offset` in `data`, all a relay reads.

    Raises MalformedEnvelope. Only the 66-byte header is read (and not copied whole).
    """
    if len(data) - offset < HEADER_SIZE:
        raise MalformedEnvelope("envelope shorter than its 66-byte header")
    if data[offset] != VERSION:
        raise MalformedEnvelope("envelope version is not 1")
    kind = _TYPES.get(data[offset + 1])
    if kind is None:
        raise MalformedEnvelope("envelope type is not 1..6")
    keys = offset + 2
    return (
        kind,
        data[keys : keys + KEY_SIZE],
        data[keys + KEY_SIZE : keys + 2 * KEY_SIZE],
    )
