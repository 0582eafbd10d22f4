"""bitchat's packet (versions 1 and 2, big-endian), read just enough to route it.

Layout: version u8 | type u8 | TTL u8 | timestamp ms u64 | flags u8 | payload length (u16 in
v1, u32 in v2) | sender id (8) | recipient id (8, flag 0x01) | route (v2 and flag 0x08: count
u8, then count 8-byte hops) | payload (with its original size first, u16/u32, when flag 0x04:
zlib) | Ed25519 signature (64, flag 0x02) | padding. The payload length counts the payload
only (with the size prefix when compressed), never the route.

A relay forwards the received bytes with only the TTL byte changed (`with_ttl`): the signature
covers everything but the TTL, and compression output is not canonical, so a packet is never
decoded and re-encoded. `encode` is for packets this node originates.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from pigeon.bitchat.errors import MalformedPacket, PacketTooLarge
from pigeon.bitchat.padding import pad, unpad

V1: Final = 1
V2: Final = 2
V1_HEADER_SIZE: Final = 14
V2_HEADER_SIZE: Final = 16
TTL_OFFSET: Final = 2
FLAGS_OFFSET: Final = 11
ID_SIZE: Final = 8
SIGNATURE_SIZE: Final = 64
BROADCAST: Final = b"\xff" * ID_SIZE

FLAG_RECIPIENT: Final = 0x01
FLAG_SIGNATURE: Final = 0x02
FLAG_COMPRESSED: Final = 0x04
FLAG_ROUTE: Final = 0x08  # v2 only; a v1 decoder ignores it
FLAG_RSR: Final = 0x10  # a sync response: exempt from the freshness window, never relayed

# Types (bitchat's MessageType.swift).
ANNOUNCE: Final = 0x01
MESSAGE: Final = 0x02
LEAVE: Final = 0x03
COURIER_ENVELOPE: Final = 0x04
NOISE_HANDSHAKE: Final = 0x10
NOISE_ENCRYPTED: Final = 0x11
FRAGMENT: Final = 0x20
REQUEST_SYNC: Final = 0x21
FILE_TRANSFER: Final = 0x22
BOARD_POST: Final = 0x23
PREKEY_BUNDLE: Final = 0x24
GROUP_MESSAGE: Final = 0x25
PING: Final = 0x26
PONG: Final = 0x27
NOSTR_CARRIER: Final = 0x28
VOICE_FRAME: Final = 0x29
COURIER_SPRAY_ACK: Final = 0x2A
COURIER_SPRAY_DECLINE: Final = 0x2B
ANNOUNCE_V2: Final = 0x2C
KNOWN_TYPES: Final = frozenset(
    {
        ANNOUNCE, MESSAGE, LEAVE, COURIER_ENVELOPE, NOISE_HANDSHAKE, NOISE_ENCRYPTED, FRAGMENT,
        REQUEST_SYNC, FILE_TRANSFER, BOARD_POST, PREKEY_BUNDLE, GROUP_MESSAGE, PING, PONG,
        NOSTR_CARRIER, VOICE_FRAME, COURIER_SPRAY_ACK, COURIER_SPRAY_DECLINE, ANNOUNCE_V2,
    }
)  # fmt: skip

DEFAULT_MAX_PAYLOAD: Final = 64 * 1024
_V1_FIXED: Final = struct.Struct(">BBBQBH")
_V2_FIXED: Final = struct.Struct(">BBBQBI")


@dataclass(frozen=True, slots=True)
class PacketView:
    """What a relay reads of a packet; offsets index the bytes it was parsed from."""

    version: int
    type: int
    ttl: int
    timestamp_ms: int
    flags: int
    sender: bytes
    recipient: bytes | None  # None: no recipient field (a broadcast)
    route: tuple[bytes, ...]
    payload_start: int  # the payload as on the wire (compressed: with its size prefix)
    payload_end: int
    end: int  # end of the packet proper (after the signature), before any padding

    @property
    def is_broadcast(self) -> bool:
        """No recipient, or the all-0xFF broadcast recipient."""
        return self.recipient is None or self.recipient == BROADCAST

    @property
    def is_signed(self) -> bool:
        """The packet carries a signature."""
        return bool(self.flags & FLAG_SIGNATURE)

    @property
    def is_rsr(self) -> bool:
        """A sync response (flag 0x10)."""
        return bool(self.flags & FLAG_RSR)


def parse(data: bytes, max_payload: int = DEFAULT_MAX_PAYLOAD) -> PacketView:
    """Read a packet as bitchat does (as it is, then unpadded); raises MalformedPacket or
    PacketTooLarge. Trailing bytes after the packet proper (padding) are allowed."""
    try:
        return _parse(data, max_payload)
    except MalformedPacket:
        stripped = unpad(data)
        if len(stripped) == len(data):
            raise
        return _parse(stripped, max_payload)


def _parse(data: bytes, max_payload: int) -> PacketView:
    size = len(data)
    if size < V1_HEADER_SIZE + ID_SIZE:
        raise MalformedPacket("packet shorter than a header and sender id")
    version = data[0]
    if version == V1:
        _, kind, ttl, timestamp, flags, length = _V1_FIXED.unpack_from(data)
        offset = V1_HEADER_SIZE
        size_field = 2
    elif version == V2:
        if size < V2_HEADER_SIZE + ID_SIZE:
            raise MalformedPacket("v2 packet shorter than a header and sender id")
        _, kind, ttl, timestamp, flags, length = _V2_FIXED.unpack_from(data)
        offset = V2_HEADER_SIZE
        size_field = 4
    else:
        raise MalformedPacket("packet version is not 1 or 2")
    if length > max_payload:
        raise PacketTooLarge("declared payload length over the cap")
    sender = data[offset : offset + ID_SIZE]
    offset += ID_SIZE
    recipient = None
    if flags & FLAG_RECIPIENT:
        recipient = data[offset : offset + ID_SIZE]
        offset += ID_SIZE
    route: tuple[bytes, ...] = ()
    if version == V2 and flags & FLAG_ROUTE:
        if offset >= size:
            raise MalformedPacket("route count past the end")
        count = data[offset]
        offset += 1
        route = tuple(data[offset + i * ID_SIZE : offset + (i + 1) * ID_SIZE] for i in range(count))
        offset += count * ID_SIZE
    if flags & FLAG_COMPRESSED and length <= size_field:
        raise MalformedPacket("compressed payload without its size prefix and data")
    payload_start = offset
    offset += length
    if flags & FLAG_SIGNATURE:
        offset += SIGNATURE_SIZE
    if offset > size:
        raise MalformedPacket("fields run past the end of the packet")
    return PacketView(
        version, kind, ttl, timestamp, flags, sender, recipient, route, payload_start,
        payload_start + length, offset,
    )  # fmt: skip


def with_ttl(data: bytes, ttl: int) -> bytes:
    """`data` (a packet's bytes as received) with only its TTL byte replaced by `ttl`."""
    if not 0 <= ttl <= 0xFF:
        raise ValueError("TTL must fit in one byte")
    return b"".join((data[:TTL_OFFSET], bytes((ttl,)), data[TTL_OFFSET + 1 :]))


def payload_of(data: bytes, view: PacketView) -> bytes:
    """The payload bytes as on the wire (compressed ones keep their size prefix)."""
    return data[view.payload_start : view.payload_end]


def signature_of(data: bytes, view: PacketView) -> bytes | None:
    """The 64-byte signature, or None for an unsigned packet."""
    if not view.is_signed:
        return None
    return data[view.end - SIGNATURE_SIZE : view.end]


def signed_bytes(data: bytes, view: PacketView) -> bytes:
    """What the sender signed: the packet with TTL 0, no signature, no RSR flag, padded."""
    body_end = view.end - (SIGNATURE_SIZE if view.is_signed else 0)
    flags = view.flags & ~(FLAG_SIGNATURE | FLAG_RSR)
    body = b"".join(
        (data[:TTL_OFFSET], b"\x00", data[TTL_OFFSET + 1 : FLAGS_OFFSET], bytes((flags,)),
         data[FLAGS_OFFSET + 1 : body_end])
    )  # fmt: skip
    return pad(body)


@dataclass(frozen=True, slots=True)
class OutPacket:
    """A packet this node originates (uncompressed: see `identity.compress_like_bitchat`)."""

    type: int
    ttl: int
    timestamp_ms: int
    sender: bytes
    payload: bytes
    recipient: bytes | None = None
    version: int = V1
    compressed_from: int | None = None  # set when `payload` is compressed: the original size


def encode(packet: OutPacket, signature: bytes | None = None, padded: bool = True) -> bytes:
    """The packet's bytes; raises ValueError for fields out of range (our fault)."""
    if packet.version not in (V1, V2) or len(packet.sender) != ID_SIZE:
        raise ValueError("need version 1 or 2 and an 8-byte sender id")
    if packet.recipient is not None and len(packet.recipient) != ID_SIZE:
        raise ValueError("recipient id must be 8 bytes")
    flags = 0
    prefix = b""
    size_format = ">H" if packet.version == V1 else ">I"
    if packet.recipient is not None:
        flags |= FLAG_RECIPIENT
    if signature is not None:
        if len(signature) != SIGNATURE_SIZE:
            raise ValueError("signature must be 64 bytes")
        flags |= FLAG_SIGNATURE
    if packet.compressed_from is not None:
        flags |= FLAG_COMPRESSED
        prefix = struct.pack(size_format, packet.compressed_from)
    body = b"".join(
        (
            struct.pack(
                ">BBBQB", packet.version, packet.type, packet.ttl, packet.timestamp_ms, flags
            ),
            struct.pack(size_format, len(prefix) + len(packet.payload)),
            packet.sender,
            packet.recipient or b"",
            prefix,
            packet.payload,
            signature or b"",
        )
    )
    return pad(body) if padded else body
