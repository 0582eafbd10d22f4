"""The app's BLE fragment: `version=1 | message id u16 | index u16 | count u16 | payload`.

Big-endian, 7-byte header; one fragment is one GATT write or notification. The payload size
of a broadcast is the smallest negotiated value length over its links minus the header,
clamped to 150..503, so a link must offer at least 157 bytes (docs/protocol.md).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from pigeon.appmesh.errors import MalformedFragment

VERSION: Final = 1
HEADER_SIZE: Final = 7
MIN_PAYLOAD: Final = 150  # the app never sends a smaller fragment payload
MAX_PAYLOAD: Final = 503  # nor a larger one
MIN_LINK_VALUE_LENGTH: Final = HEADER_SIZE + MIN_PAYLOAD  # 157
MAX_VALUE_LENGTH: Final = HEADER_SIZE + MAX_PAYLOAD  # 510: a longer link gains nothing
MAX_FRAGMENTS: Final = 0xFFFF

_HEADER: Final = struct.Struct(">BHHH")


@dataclass(frozen=True, slots=True)
class Fragment:
    """One decoded fragment."""

    message_id: int
    index: int
    count: int
    payload: bytes


def encode_fragment(fragment: Fragment) -> bytes:
    """The fragment's wire bytes; raises ValueError for fields out of range (our fault)."""
    if not 0 <= fragment.index < fragment.count <= MAX_FRAGMENTS:
        raise ValueError("need 0 <= index < count <= 65535")
    head = _HEADER.pack(VERSION, fragment.message_id, fragment.index, fragment.count)
    return head + fragment.payload


def decode_fragment(frame: bytes) -> Fragment:
    """Parse one frame; raises MalformedFragment."""
    if len(frame) < HEADER_SIZE:
        raise MalformedFragment("fragment shorter than its 7-byte header")
    version, message_id, index, count = _HEADER.unpack_from(frame)
    if version != VERSION:
        raise MalformedFragment("fragment version is not 1")
    if index >= count:  # also refuses count 0
        raise MalformedFragment("fragment index not below its count")
    return Fragment(message_id, index, count, frame[HEADER_SIZE:])


def payload_size(value_lengths: Iterable[int]) -> int:
    """Fragment payload bytes for a broadcast over links with these negotiated value lengths."""
    smallest = min(value_lengths, default=None)
    return MIN_PAYLOAD if smallest is None else payload_for(smallest)


def payload_for(value_length: int) -> int:
    """Fragment payload bytes for a smallest negotiated value length of `value_length`."""
    return min(max(value_length - HEADER_SIZE, MIN_PAYLOAD), MAX_PAYLOAD)


def split(message: bytes, message_id: int, size: int) -> list[bytes]:
    """`message` as encoded fragments of at most `size` payload bytes (an empty one is one).

    Raises ValueError when the message needs more than 65,535 fragments (our fault).
    """
    if size < 1:
        raise ValueError("fragment payload size must be positive")
    count = max(1, -(-len(message) // size))
    if count > MAX_FRAGMENTS:
        raise ValueError("message needs more than 65535 fragments")
    pack = _HEADER.pack
    message_id &= 0xFFFF
    return [
        pack(VERSION, message_id, index, count) + message[index * size : (index + 1) * size]
        for index in range(count)
    ]
