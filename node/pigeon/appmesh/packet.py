"""The app's mesh packet: `version=1 | ttl u8 | packet id (16 random bytes) | payload`.

A relay forwards the received bytes with only the TTL byte changed (`with_ttl`); it never
re-encodes a packet it did not originate, so whatever the payload holds passes unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pigeon.appmesh.errors import MalformedPacket

VERSION: Final = 1
ID_SIZE: Final = 16
HEADER_SIZE: Final = 2 + ID_SIZE  # 18
TTL_OFFSET: Final = 1
DEFAULT_TTL: Final = 8  # what the app stamps on every packet it originates


@dataclass(frozen=True, slots=True)
class AppPacket:
    """One decoded packet."""

    ttl: int
    packet_id: bytes
    payload: bytes


def encode_packet(packet: AppPacket) -> bytes:
    """The packet's wire bytes; raises ValueError for fields out of range (our fault)."""
    if not 0 <= packet.ttl <= 0xFF or len(packet.packet_id) != ID_SIZE:
        raise ValueError("need a TTL of one byte and a 16-byte packet id")
    return bytes((VERSION, packet.ttl)) + packet.packet_id + packet.payload


def decode_packet(data: bytes) -> AppPacket:
    """Parse one reassembled message; raises MalformedPacket."""
    ttl, packet_id = read_header(data)
    return AppPacket(ttl, packet_id, data[HEADER_SIZE:])


def read_header(data: bytes) -> tuple[int, bytes]:
    """TTL and packet id of a packet's bytes, all a relay reads; raises MalformedPacket."""
    if len(data) < HEADER_SIZE:
        raise MalformedPacket("packet shorter than its 18-byte header")
    if data[0] != VERSION:
        raise MalformedPacket("packet version is not 1")
    return data[TTL_OFFSET], data[2:HEADER_SIZE]


def with_ttl(data: bytes, ttl: int) -> bytes:
    """`data` (a packet's bytes) with only its TTL byte replaced by `ttl`."""
    if not 0 <= ttl <= 0xFF:
        raise ValueError("TTL must fit in one byte")
    return data[:TTL_OFFSET] + bytes((ttl,)) + data[TTL_OFFSET + 1 :]
