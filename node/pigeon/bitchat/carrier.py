"""bitchat's Nostr carrier (0x28) payload: a signed Nostr event's JSON ferried over the mesh.

TLVs (type u8 | length u16 big-endian | value), as NostrCarrierPacket.swift reads them: 0x01
direction (1 byte: 1 to a gateway, 2 from a gateway, 3 to a bridge, 4 from a bridge), 0x02
geohash (UTF-8), 0x03 event JSON; unknown types skipped; all three required; the TLVs must end
exactly at the payload's end; the geohash is 1 to 12 bytes and the JSON 1 byte to 16 KiB (both
ways, as bitchat's constructor, which its decoder calls, checks). The gateway checks the rest.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from pigeon.bitchat.errors import LocalError, MalformedCarrier

MAX_EVENT_JSON_BYTES: Final = 16 * 1024
MAX_GEOHASH_BYTES: Final = 12
T_DIRECTION: Final = 0x01
T_GEOHASH: Final = 0x02
T_EVENT: Final = 0x03
_HEAD: Final = struct.Struct(">BH")


class Direction(IntEnum):
    """Which way a carrier goes."""

    TO_GATEWAY = 0x01
    FROM_GATEWAY = 0x02
    TO_BRIDGE = 0x03
    FROM_BRIDGE = 0x04


_DIRECTIONS: Final = frozenset(int(d) for d in Direction)


@dataclass(frozen=True, slots=True)
class NostrCarrier:
    """One carrier: the direction, the geohash channel, the event's JSON bytes as sent."""

    direction: Direction
    geohash: str
    event_json: bytes = field(repr=False)


def encode_carrier(carrier: NostrCarrier) -> bytes:
    """The carrier's TLVs; raises LocalError for a geohash or event bitchat would refuse."""
    geohash = carrier.geohash.encode()
    if not 0 < len(geohash) <= MAX_GEOHASH_BYTES:
        raise LocalError("a carrier's geohash is 1 to 12 bytes")
    if not 0 < len(carrier.event_json) <= MAX_EVENT_JSON_BYTES:
        raise LocalError("a carrier's event is 1 byte to 16 KiB")
    return b"".join(
        (
            _HEAD.pack(T_DIRECTION, 1), bytes((carrier.direction,)),
            _HEAD.pack(T_GEOHASH, len(geohash)), geohash,
            _HEAD.pack(T_EVENT, len(carrier.event_json)), carrier.event_json,
        )
    )  # fmt: skip


def decode_carrier(data: bytes) -> NostrCarrier:
    """A carrier from its TLVs; raises MalformedCarrier."""
    fields: dict[int, bytes] = {}
    offset = 0
    while offset + _HEAD.size <= len(data):
        kind, length = _HEAD.unpack_from(data, offset)
        offset += _HEAD.size
        if offset + length > len(data):
            raise MalformedCarrier("a carrier TLV runs past the end")
        value = data[offset : offset + length]
        offset += length
        if kind == T_DIRECTION and (len(value) != 1 or value[0] not in _DIRECTIONS):
            raise MalformedCarrier("a carrier's direction is unknown")
        if kind == T_GEOHASH:
            _utf8(value)
        if T_DIRECTION <= kind <= T_EVENT:
            fields[kind] = value  # repeated: the last wins, as in bitchat's decoder
    if offset != len(data):
        raise MalformedCarrier("a carrier ends inside a TLV head")
    try:
        direction, geohash, event = fields[T_DIRECTION], fields[T_GEOHASH], fields[T_EVENT]
    except KeyError as exc:
        raise MalformedCarrier("a carrier lacks its direction, geohash or event") from exc
    if not 0 < len(geohash) <= MAX_GEOHASH_BYTES or not 0 < len(event) <= MAX_EVENT_JSON_BYTES:
        raise MalformedCarrier("a carrier's geohash or event is empty or too long")
    return NostrCarrier(Direction(direction[0]), _utf8(geohash), event)


def _utf8(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise MalformedCarrier("a carrier's geohash is not UTF-8") from exc
