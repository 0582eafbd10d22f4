"""Routes version 2 payload (packet type 8): a whole table or a delta, with sequence numbers.

Layout (big-endian; docs/protocol.md "Routing" is the reference):

    kind u8 (0 full, 1 delta) | seq u32 | base u32 | count u8
    | count x (distance u8, tag_len u8, tag)

A full table has base 0 and distances 1..ROUTE_MAX_DISTANCE. A delta names the update it was
computed against (1 <= base < seq) and gives distance 0 for a tag withdrawn. No tag twice.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from pigeon.mesh.errors import MalformedPacket
from pigeon.mesh.tags import MAX_TAG_LEN, MIN_TAG_LEN

ROUTE_MAX_DISTANCE: Final = 32
WITHDRAWN: Final = 0  # a delta's distance for a tag no longer reached
MAX_UPDATE_ROUTES: Final = 255
MAX_SEQ: Final = 0xFFFF_FFFF
KIND_FULL: Final = 0
KIND_DELTA: Final = 1

_HEAD: Final = struct.Struct(">BIIB")


@dataclass(frozen=True, slots=True)
class RoutesUpdate:
    """One routes update: the whole table (`full`) or the entries changed since `base`."""

    full: bool
    seq: int
    base: int
    routes: tuple[tuple[int, bytes], ...]  # (distance, tag); distance 0: withdrawn (deltas)


def encode_routes_update(update: RoutesUpdate) -> bytes:
    """The payload of `update`; ValueError naming the fault if it is not valid."""
    fault = _head_fault(update.full, update.seq, update.base, len(update.routes))
    if fault is None:
        fault = _entries_fault(update.full, update.routes)
    if fault is not None:
        raise ValueError(fault)
    kind = KIND_FULL if update.full else KIND_DELTA
    parts = [_HEAD.pack(kind, update.seq, update.base, len(update.routes))]
    for distance, tag in update.routes:
        parts.append(bytes((distance, len(tag))))
        parts.append(tag)
    return b"".join(parts)


def routes_update_fault(payload: bytes) -> str | None:
    """The first fault of a routes version 2 payload as a short sentence, or None."""
    try:
        update = _parse(payload)
    except MalformedPacket as exc:
        return str(exc)
    fault = _head_fault(update.full, update.seq, update.base, len(update.routes))
    return fault or _entries_fault(update.full, update.routes)


def decode_routes_update(payload: bytes) -> RoutesUpdate:
    """Parse a routes version 2 payload; raises MalformedPacket naming the fault."""
    fault = routes_update_fault(payload)
    if fault is not None:
        raise MalformedPacket(fault)
    return _parse(payload)


def _parse(payload: bytes) -> RoutesUpdate:
    if len(payload) < _HEAD.size:
        raise MalformedPacket(f"routes update truncated: {len(payload)} bytes of header")
    kind, seq, base, count = _HEAD.unpack_from(payload)
    if kind not in (KIND_FULL, KIND_DELTA):
        raise MalformedPacket(f"routes update kind {kind} unknown")
    routes = []
    offset = _HEAD.size
    for index in range(count):
        if offset + 2 > len(payload):
            raise MalformedPacket(f"routes update truncated at entry {index}")
        distance, tag_len = payload[offset], payload[offset + 1]
        tag = payload[offset + 2 : offset + 2 + tag_len]
        if len(tag) != tag_len:
            raise MalformedPacket(f"routes update truncated at entry {index}")
        routes.append((distance, tag))
        offset += 2 + tag_len
    if offset != len(payload):
        raise MalformedPacket(f"routes update has {len(payload) - offset} trailing bytes")
    return RoutesUpdate(kind == KIND_FULL, seq, base, tuple(routes))


def _head_fault(full: bool, seq: int, base: int, count: int) -> str | None:
    if not 1 <= seq <= MAX_SEQ:
        return f"routes update seq {seq} outside 1..{MAX_SEQ}"
    if full and base != 0:
        return f"full routes table with base {base}, expected 0"
    if not full and not 1 <= base < seq:
        return f"routes delta base {base} outside 1..{seq - 1}"
    if count > MAX_UPDATE_ROUTES:
        return f"at most {MAX_UPDATE_ROUTES} routes per update"
    return None


def _entries_fault(full: bool, routes: Sequence[tuple[int, bytes]]) -> str | None:
    lowest = 1 if full else WITHDRAWN
    seen: set[bytes] = set()
    for index, (distance, tag) in enumerate(routes):
        if not lowest <= distance <= ROUTE_MAX_DISTANCE:
            return f"route {index} distance {distance} outside {lowest}..{ROUTE_MAX_DISTANCE}"
        if not MIN_TAG_LEN <= len(tag) <= MAX_TAG_LEN:
            return f"route {index} tag length {len(tag)} outside {MIN_TAG_LEN}..{MAX_TAG_LEN}"
        if tag in seen:
            return f"route {index} names a tag twice"
        seen.add(tag)
    return None
