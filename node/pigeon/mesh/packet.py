"""Mesh packet codec (version 2): the hop-to-hop unit the router relays, spools and dedups.

Layout (big-endian; docs/protocol.md "Mesh packet" is the byte-by-byte reference):

    version u8 | type u8 | ttl u8 | flags u8 | expires_at_s u32 | tag_len u8
    | recipient_tag (tag_len) | receipt_hash 16 (envelopes only) | payload_len u16 | payload
    [ | hint_len u16 | mailbox_hint (hint_len) ]   (envelopes flagged MAILBOX_HINT only)

The packet id is not sent: it is SHA-256 of a domain, the header without TTL (the associated
data) and the payload, cut to 16 bytes, computed by whoever holds the packet. So an id names
one content: nobody can send other bytes under a genuine packet's id to have the genuine packet
dropped as a duplicate. Hops may change only the TTL. The mailbox hint is opaque here (the
crypto room's `MailboxHint`: the recipient's signed mailbox key and relays, for a node with an
uplink to deposit the envelope); it is outside the associated data and the id, but its flag is
inside. A `Packet` validates itself on construction (ValueError naming the field, our fault);
`decode_packet` turns every fault in outside bytes into MalformedPacket.
"""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from collections.abc import Sequence
from enum import IntEnum, IntFlag
from typing import Final

from pigeon.mesh.errors import MalformedPacket
from pigeon.mesh.receipt import NOTICE_LEN, RECEIPT_HASH_LEN, RECEIPT_SECRET_LEN
from pigeon.mesh.routecodec import (
    ROUTE_MAX_DISTANCE,
    RoutesUpdate,
    encode_routes_update,
    routes_update_fault,
)
from pigeon.mesh.tags import MAX_TAG_LEN, MIN_TAG_LEN

PACKET_VERSION: Final = 2
DEFAULT_TTL: Final = 7
MAX_TTL: Final = 15
PACKET_ID_LEN: Final = 16
MAX_EXPIRES_AT_S: Final = 0xFFFF_FFFF
# 15 padded 512-byte blocks of ratchet ciphertext (40 + 7680 + 16) fit, with room for the
# session's own framing: enough for a long text or a 7 KiB file chunk, and it bounds what a
# neighbour can make us reassemble for one packet.
MAX_PAYLOAD_LEN: Final = 8192
# Up to three padded blocks (40 + 1536 + 16 = 1592 bytes): texts and handshakes, not files.
INTERACTIVE_MAX_PAYLOAD_LEN: Final = 1600
# A MailboxHint with four relay URLs of the longest kind is 742 bytes.
MAX_MAILBOX_HINT_LEN: Final = 768
MAX_ANNOUNCE_TAGS: Final = 255
RECEIPT_PAYLOAD_LEN: Final = RECEIPT_SECRET_LEN
# An ack names packets by the first 8 bytes of their id: a collision costs one retransmission
# skipped on one link, and 24 of them fit one frame of the smallest BLE MTU we support.
ACK_ID_LEN: Final = 8
MAX_ACK_IDS: Final = 24
MAX_HOLDS_IDS: Final = 96  # a holds packet names the newest this many carried packets
MAX_ROUTES: Final = 255
NOTICE_PAYLOAD_LEN: Final = NOTICE_LEN
# Receipt version 1 (secret || envelope id, in clear: it linked the envelope's tag to the
# sender's); refused by name so a node still running it shows up in the logs.
RETIRED_RECEIPT_V1: Final = 3

_FIXED: Final = struct.Struct(">BBBBIB")
_PAYLOAD_LEN: Final = struct.Struct(">H")
_AD_HEAD: Final = struct.Struct(">BBBIB")
PACKET_ID_DOMAIN: Final = b"Pigeon.PacketId.v2"
FIXED_HEADER_LEN: Final = _FIXED.size
_HINT_LEN: Final = _PAYLOAD_LEN
MAX_PACKET_LEN: Final = (
    FIXED_HEADER_LEN
    + MAX_TAG_LEN
    + RECEIPT_HASH_LEN
    + _PAYLOAD_LEN.size
    + MAX_PAYLOAD_LEN
    + _HINT_LEN.size
    + MAX_MAILBOX_HINT_LEN
)


class PacketType(IntEnum):
    """What a packet carries."""

    ENVELOPE = 1  # opaque end-to-end ciphertext for a recipient tag
    ANNOUNCE = 2  # the recipient tags the sending neighbour serves now
    RECEIPT = 4  # a receipt secret (version 2): clears the envelopes with its hash from spools
    NOTICE = 5  # a sealed receipt for the sender's endpoint; hops carry it like a receipt
    ACK = 6  # link-local: the packets (by id prefix) this neighbour just received from us
    ROUTES = 7  # link-local, version 1: the tags this neighbour reaches, each with a hop count
    ROUTES2 = 8  # link-local, version 2: its whole routes table or a delta, with a sequence
    HOLDS = 9  # link-local: packets (by id prefix) this neighbour carries, said as a link comes up


class Flag(IntFlag):
    """Envelope flags; every other bit, and any flag on other types, is invalid."""

    HANDSHAKE = 0x01  # payload is a Noise handshake message: rate-limited as a handshake
    BULK = 0x02  # payload is a bulk-transfer chunk (a file): lowest priority class
    MAILBOX_HINT = 0x04  # a mailbox hint follows the payload: a node with an uplink may deposit


class Priority(IntEnum):
    """Service classes; lower values are sent and kept first."""

    CONTROL = 0
    INTERACTIVE = 1
    BULK = 2


_TYPE_BY_VALUE: Final = {int(t): t for t in PacketType}
# Types a neighbour sends for us alone: no recipient tag, never carried or relayed.
LINK_LOCAL: Final = frozenset(
    (PacketType.ANNOUNCE, PacketType.ACK, PacketType.ROUTES, PacketType.ROUTES2, PacketType.HOLDS)
)
_ENVELOPE_FLAGS: Final = int(Flag.HANDSHAKE | Flag.BULK | Flag.MAILBOX_HINT)
_KIND_FLAGS: Final = int(Flag.HANDSHAKE | Flag.BULK)
_BULK_FLAG: Final = int(Flag.BULK)
_HINT_FLAG: Final = int(Flag.MAILBOX_HINT)


def _field_fault(
    ptype: object,
    ttl: int,
    flags: int,
    recipient_tag: bytes,
    expires_at_s: int,
    payload: bytes,
    receipt_hash: bytes,
    mailbox_hint: bytes,
) -> str | None:
    """The first invalid field as a short sentence, or None when every field is valid."""
    if not isinstance(ptype, PacketType):
        return f"type {ptype!r} unknown"
    fault = _ttl_flags_fault(ptype, ttl, flags)
    if fault is not None:
        return fault
    if not 0 <= expires_at_s <= MAX_EXPIRES_AT_S:
        return "expires_at_s outside the u32 range"
    if ptype in LINK_LOCAL:
        if recipient_tag:
            return f"recipient_tag must be empty for {ptype.name}"
    elif not MIN_TAG_LEN <= len(recipient_tag) <= MAX_TAG_LEN:
        return f"recipient_tag length {len(recipient_tag)} outside {MIN_TAG_LEN}..{MAX_TAG_LEN}"
    want_hash = RECEIPT_HASH_LEN if ptype is PacketType.ENVELOPE else 0
    if len(receipt_hash) != want_hash:
        return f"receipt_hash length {len(receipt_hash)}, expected {want_hash}"
    return _payload_fault(ptype, payload) or _hint_fault(flags, mailbox_hint)


def _ttl_flags_fault(ptype: PacketType, ttl: int, flags: int) -> str | None:
    if not 0 <= ttl <= MAX_TTL:
        return f"ttl {ttl} outside 0..{MAX_TTL}"
    if ptype is _T_ENVELOPE:
        if flags & ~_ENVELOPE_FLAGS or flags & _KIND_FLAGS == _KIND_FLAGS:
            return f"flags 0x{flags:02x} invalid for an envelope"
    elif flags:
        return f"flags 0x{flags:02x} must be 0 for {ptype.name}"
    return None


def _hint_fault(flags: int, mailbox_hint: bytes) -> str | None:
    if not flags & _HINT_FLAG:
        return "mailbox_hint present without the MAILBOX_HINT flag" if mailbox_hint else None
    if not 1 <= len(mailbox_hint) <= MAX_MAILBOX_HINT_LEN:
        return f"mailbox_hint length {len(mailbox_hint)} outside 1..{MAX_MAILBOX_HINT_LEN}"
    return None


def _payload_fault(ptype: object, payload: bytes) -> str | None:
    if len(payload) > MAX_PAYLOAD_LEN:
        return f"payload length {len(payload)} exceeds {MAX_PAYLOAD_LEN}"
    if ptype is _T_ENVELOPE:  # the common case first
        return None if payload else "payload empty for an envelope"
    if ptype is _T_RECEIPT and len(payload) != RECEIPT_PAYLOAD_LEN:
        return f"receipt payload length {len(payload)}, expected {RECEIPT_PAYLOAD_LEN}"
    if ptype is _T_NOTICE and len(payload) != NOTICE_PAYLOAD_LEN:
        return f"notice payload length {len(payload)}, expected {NOTICE_PAYLOAD_LEN}"
    if ptype is _T_ANNOUNCE:
        return _announce_fault(payload)
    if ptype is _T_ACK:
        return _ack_fault(payload)
    if ptype is _T_HOLDS:
        return _holds_fault(payload)
    if ptype is _T_ROUTES:
        return _routes_fault(payload)
    if ptype is _T_ROUTES2:
        return routes_update_fault(payload)
    return None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Packet:
    """One mesh packet; valid by construction (raises ValueError naming the bad field).

    `packet_id` is derived from the content (see the module docstring), never given.
    """

    type: PacketType
    recipient_tag: bytes
    expires_at_s: int
    payload: bytes
    ttl: int = DEFAULT_TTL
    flags: int = 0
    receipt_hash: bytes = b""
    mailbox_hint: bytes = b""
    packet_id: bytes = dataclasses.field(init=False, compare=False)

    def __post_init__(self) -> None:
        fault = _field_fault(
            self.type,
            self.ttl,
            self.flags,
            self.recipient_tag,
            self.expires_at_s,
            self.payload,
            self.receipt_hash,
            self.mailbox_hint,
        )
        if fault is not None:
            raise ValueError(fault)
        ad = associated_data(
            packet_type=self.type,
            flags=self.flags,
            recipient_tag=self.recipient_tag,
            expires_at_s=self.expires_at_s,
            receipt_hash=self.receipt_hash,
        )
        _set_field(self, "packet_id", _content_id(ad, self.payload))

    def __repr__(self) -> str:
        # Ids and tags shortened, payload by length only: reprs end up in logs.
        return (
            f"Packet({self.type.name}, id={self.packet_id[:4].hex()}…, "
            f"tag={self.recipient_tag[:2].hex()}…, ttl={self.ttl}, flags=0x{self.flags:02x}, "
            f"expires_at_s={self.expires_at_s}, payload={len(self.payload)} bytes)"
        )


def encode_packet(packet: Packet) -> bytes:
    """The wire bytes of `packet`."""
    head = _FIXED.pack(
        PACKET_VERSION,
        packet.type,
        packet.ttl,
        packet.flags,
        packet.expires_at_s,
        len(packet.recipient_tag),
    )
    return b"".join(
        (
            head,
            packet.recipient_tag,
            packet.receipt_hash,
            _PAYLOAD_LEN.pack(len(packet.payload)),
            packet.payload,
            _HINT_LEN.pack(len(packet.mailbox_hint)) if packet.mailbox_hint else b"",
            packet.mailbox_hint,
        )
    )


def encoded_len(packet: Packet) -> int:
    """len(encode_packet(packet)), without encoding."""
    return (
        FIXED_HEADER_LEN
        + len(packet.recipient_tag)
        + len(packet.receipt_hash)
        + _PAYLOAD_LEN.size
        + len(packet.payload)
        + (_HINT_LEN.size + len(packet.mailbox_hint) if packet.mailbox_hint else 0)
    )


# decode_packet checks every field itself, then fills a Packet without validating it twice.
_new_object: Final = object.__new__
_set_field: Final = object.__setattr__
_PACKET_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Packet))


def decode_packet(data: bytes) -> Packet:
    """Parse one packet; raises MalformedPacket naming the first fault (version checked first)."""
    size = len(data)
    if not size:
        raise MalformedPacket("packet empty: version byte missing")
    if data[0] != PACKET_VERSION:
        raise MalformedPacket(f"version {data[0]} unsupported, expected {PACKET_VERSION}")
    if size < FIXED_HEADER_LEN:
        raise MalformedPacket(f"header truncated: {size} bytes, need {FIXED_HEADER_LEN}")
    _, type_value, ttl, flags, expires_at_s, tag_len = _FIXED.unpack_from(data)
    ptype = _TYPE_BY_VALUE.get(type_value)
    if ptype is None:
        if type_value == RETIRED_RECEIPT_V1:
            raise MalformedPacket("type 3 (receipt version 1) retired: receipts are type 4")
        raise MalformedPacket(f"type {type_value} unknown")
    if ptype in LINK_LOCAL:
        if tag_len:
            raise MalformedPacket(f"recipient_tag must be empty for {ptype.name}")
    elif not MIN_TAG_LEN <= tag_len <= MAX_TAG_LEN:
        raise MalformedPacket(f"recipient_tag length {tag_len} outside {MIN_TAG_LEN}..16")
    tag_end = FIXED_HEADER_LEN + tag_len
    hash_end = tag_end + (RECEIPT_HASH_LEN if ptype is _ENVELOPE else 0)
    payload_start = hash_end + _PAYLOAD_LEN.size
    if size < payload_start:
        raise MalformedPacket(
            f"header truncated: {size} bytes, need {payload_start} for tag_len {tag_len}"
        )
    (payload_len,) = _PAYLOAD_LEN.unpack_from(data, hash_end)
    payload_end = payload_start + payload_len
    if ptype is _ENVELOPE and flags & _HINT_FLAG:
        hint_start = _hint_start(data, payload_end)
    elif payload_end != size:
        raise MalformedPacket(
            f"payload_len {payload_len} does not match the {size - payload_start} bytes present"
        )
    else:
        hint_start = size
    payload = data[payload_start:payload_end]
    mailbox_hint = data[hint_start:]
    # The layout already fixed the expiry, tag and hash lengths; these are the rest. A valid
    # envelope (the common case) is recognised in one test; anything else is looked at field
    # by field, and the first fault named.
    if not (
        ptype is _ENVELOPE
        and ttl <= MAX_TTL
        and not flags & ~_ENVELOPE_FLAGS
        and flags & _KIND_FLAGS != _KIND_FLAGS
        and 0 < len(payload) <= MAX_PAYLOAD_LEN
        and (not flags & _HINT_FLAG or 0 < len(mailbox_hint) <= MAX_MAILBOX_HINT_LEN)
    ):
        fault = (
            _ttl_flags_fault(ptype, ttl, flags)
            or _payload_fault(ptype, payload)
            or _hint_fault(flags, mailbox_hint)
        )
        if fault is not None:
            raise MalformedPacket(fault)
    packet = _new_object(Packet)
    _set_field(packet, "type", ptype)
    # The associated data is the header without TTL: bytes 0-1 and 3 up to the payload length
    # (`_content_id`, inline).
    digest = _ID_HASH.copy()
    digest.update(data[:2])
    digest.update(data[3:hash_end])
    digest.update(payload)
    _set_field(packet, "packet_id", digest.digest()[:PACKET_ID_LEN])
    _set_field(packet, "recipient_tag", data[FIXED_HEADER_LEN:tag_end])
    _set_field(packet, "expires_at_s", expires_at_s)
    _set_field(packet, "payload", payload)
    _set_field(packet, "ttl", ttl)
    _set_field(packet, "flags", flags)
    _set_field(packet, "receipt_hash", data[tag_end:hash_end])
    _set_field(packet, "mailbox_hint", mailbox_hint)
    return packet


def _hint_start(data: bytes, payload_end: int) -> int:
    """Where the mailbox hint begins, after checking that hint_len matches the bytes present."""
    hint_start = payload_end + _HINT_LEN.size
    if hint_start > len(data):
        raise MalformedPacket("payload_len leaves no room for the hint_len of a MAILBOX_HINT")
    (hint_len,) = _HINT_LEN.unpack_from(data, payload_end)
    if hint_len != len(data) - hint_start:
        raise MalformedPacket(
            f"hint_len {hint_len} does not match the {len(data) - hint_start} bytes present"
        )
    return hint_start


def with_ttl(packet: Packet, ttl: int) -> Packet:
    """`packet` with another TTL (the one field hops may change); ValueError if out of range."""
    if not 0 <= ttl <= MAX_TTL:
        raise ValueError(f"ttl {ttl} outside 0..{MAX_TTL}")
    copy = _new_object(Packet)
    for name in _PACKET_FIELDS:
        _set_field(copy, name, getattr(packet, name))
    _set_field(copy, "ttl", ttl)  # the id stays: it does not cover the TTL
    return copy


def decremented(packet: Packet) -> Packet:
    """`packet` one hop further; raises ValueError if its TTL is already 0 (do not relay it)."""
    if packet.ttl == 0:
        raise ValueError("ttl is 0: the packet must not be relayed")
    return with_ttl(packet, packet.ttl - 1)


def encoded_with_ttl(data: bytes, ttl: int) -> bytes:
    """Encoded packet `data` with its TTL byte replaced, without a decode/encode round trip."""
    if not 0 <= ttl <= MAX_TTL:
        raise ValueError(f"ttl {ttl} outside 0..{MAX_TTL}")
    if len(data) < FIXED_HEADER_LEN or data[0] != PACKET_VERSION:
        raise ValueError("not an encoded version-1 packet")
    return b"".join((data[:2], bytes((ttl,)), data[3:]))


def priority(packet: Packet) -> Priority:
    """CONTROL for receipts and announces, INTERACTIVE for small envelopes, else BULK."""
    if packet.type is not _ENVELOPE:
        return _CONTROL
    if packet.flags & _BULK_FLAG or len(packet.payload) > INTERACTIVE_MAX_PAYLOAD_LEN:
        return _BULK
    return _INTERACTIVE


def associated_data(
    *,
    packet_type: PacketType,
    flags: int,
    recipient_tag: bytes,
    expires_at_s: int,
    receipt_hash: bytes,
) -> bytes:
    """The header fields no hop may change, for the end-to-end layer to bind as associated data.

    version | type | flags | expires_at_s u32 | tag_len | recipient_tag | receipt_hash (the
    packet header without TTL and payload length). Raises ValueError on out-of-range fields.
    """
    try:
        head = _AD_HEAD.pack(PACKET_VERSION, packet_type, flags, expires_at_s, len(recipient_tag))
    except struct.error as exc:
        raise ValueError(f"field out of range: {exc}") from None
    return b"".join((head, recipient_tag, receipt_hash))


_ID_HASH: Final = hashlib.sha256(PACKET_ID_DOMAIN)  # copied, never updated


def _content_id(*parts: bytes | memoryview) -> bytes:
    digest = _ID_HASH.copy()
    for part in parts:
        digest.update(part)
    return digest.digest()[:PACKET_ID_LEN]


# Announce payload: count u8, then count times (tag_len u8, tag).


def encode_announce(tags: Sequence[bytes]) -> bytes:
    """Announce payload listing `tags`; raises ValueError on a bad tag length or too many tags."""
    if len(tags) > MAX_ANNOUNCE_TAGS:
        raise ValueError(f"at most {MAX_ANNOUNCE_TAGS} tags per announce")
    parts = [bytes((len(tags),))]
    for tag in tags:
        if not MIN_TAG_LEN <= len(tag) <= MAX_TAG_LEN:
            raise ValueError(f"announced tag length {len(tag)} outside {MIN_TAG_LEN}..16")
        parts.append(bytes((len(tag),)))
        parts.append(tag)
    return b"".join(parts)


def _announce_fault(payload: bytes) -> str | None:
    if not payload:
        return "announce payload empty: tag count missing"
    offset = 1
    for index in range(payload[0]):
        if offset >= len(payload):
            return f"announce truncated at tag {index}"
        tag_len = payload[offset]
        if not MIN_TAG_LEN <= tag_len <= MAX_TAG_LEN:
            return f"announce tag {index} length {tag_len} outside {MIN_TAG_LEN}..{MAX_TAG_LEN}"
        offset += 1 + tag_len
        if offset > len(payload):
            return f"announce truncated at tag {index}"
    if offset != len(payload):
        return f"announce has {len(payload) - offset} trailing bytes"
    return None


def decode_announce(payload: bytes) -> tuple[bytes, ...]:
    """The tags an announce payload lists; raises MalformedPacket naming the fault."""
    fault = _announce_fault(payload)
    if fault is not None:
        raise MalformedPacket(fault)
    tags = []
    offset = 1
    for _ in range(payload[0]):
        tag_len = payload[offset]
        tags.append(payload[offset + 1 : offset + 1 + tag_len])
        offset += 1 + tag_len
    return tuple(tags)


# Ack and holds payloads: packet id prefixes of ACK_ID_LEN bytes, back to back; an ack names
# 1..MAX_ACK_IDS of them, a holds 0..MAX_HOLDS_IDS.


def encode_ack(packet_ids: Sequence[bytes]) -> bytes:
    """Ack payload naming `packet_ids` (full ids or prefixes); ValueError if none or too many."""
    return _encode_prefixes(packet_ids, 1, MAX_ACK_IDS, "ack")


def _ack_fault(payload: bytes) -> str | None:
    return _prefixes_fault(payload, 1, MAX_ACK_IDS, "ack")


def decode_ack(payload: bytes) -> list[bytes]:
    """The id prefixes an ack payload names; raises MalformedPacket naming the fault."""
    return _decode_prefixes(payload, _ack_fault(payload))


def encode_holds(packet_ids: Sequence[bytes]) -> bytes:
    """Holds payload naming `packet_ids` (full ids or prefixes); ValueError if too many."""
    return _encode_prefixes(packet_ids, 0, MAX_HOLDS_IDS, "holds")


def _holds_fault(payload: bytes) -> str | None:
    return _prefixes_fault(payload, 0, MAX_HOLDS_IDS, "holds")


def decode_holds(payload: bytes) -> list[bytes]:
    """The id prefixes a holds payload names; raises MalformedPacket naming the fault."""
    return _decode_prefixes(payload, _holds_fault(payload))


def _encode_prefixes(packet_ids: Sequence[bytes], least: int, most: int, kind: str) -> bytes:
    if not least <= len(packet_ids) <= most:
        raise ValueError(f"{kind} payload names {least}..{most} packets")
    if packet_ids and min(map(len, packet_ids)) < ACK_ID_LEN:
        raise ValueError(f"{kind} ids must be at least {ACK_ID_LEN} bytes")
    return b"".join([packet_id[:ACK_ID_LEN] for packet_id in packet_ids])


def _prefixes_fault(payload: bytes, least: int, most: int, kind: str) -> str | None:
    count, rest = divmod(len(payload), ACK_ID_LEN)
    if rest or not least <= count <= most:
        return f"{kind} payload length {len(payload)} is not {least}..{most} ids of {ACK_ID_LEN}"
    return None


def _decode_prefixes(payload: bytes, fault: str | None) -> list[bytes]:
    if fault is not None:
        raise MalformedPacket(fault)
    return [payload[i : i + ACK_ID_LEN] for i in range(0, len(payload), ACK_ID_LEN)]


# Routes payload: count u8, then count times (distance u8, tag_len u8, tag).


def encode_routes(routes: Sequence[tuple[int, bytes]]) -> bytes:
    """Routes payload of (distance in hops, tag) pairs; ValueError on a bad entry."""
    if len(routes) > MAX_ROUTES:
        raise ValueError(f"at most {MAX_ROUTES} routes per packet")
    parts = [bytes((len(routes),))]
    for distance, tag in routes:
        if not 1 <= distance <= ROUTE_MAX_DISTANCE:
            raise ValueError(f"route distance {distance} outside 1..{ROUTE_MAX_DISTANCE}")
        if not MIN_TAG_LEN <= len(tag) <= MAX_TAG_LEN:
            raise ValueError(f"route tag length {len(tag)} outside {MIN_TAG_LEN}..16")
        parts.append(bytes((distance, len(tag))))
        parts.append(tag)
    return b"".join(parts)


def _routes_fault(payload: bytes) -> str | None:
    if not payload:
        return "routes payload empty: count missing"
    offset = 1
    for index in range(payload[0]):
        if offset + 2 > len(payload):
            return f"routes truncated at entry {index}"
        distance, tag_len = payload[offset], payload[offset + 1]
        if not 1 <= distance <= ROUTE_MAX_DISTANCE:
            return f"route {index} distance {distance} outside 1..{ROUTE_MAX_DISTANCE}"
        if not MIN_TAG_LEN <= tag_len <= MAX_TAG_LEN:
            return f"route {index} tag length {tag_len} outside {MIN_TAG_LEN}..{MAX_TAG_LEN}"
        offset += 2 + tag_len
        if offset > len(payload):
            return f"routes truncated at entry {index}"
    if offset != len(payload):
        return f"routes have {len(payload) - offset} trailing bytes"
    return None


def decode_routes(payload: bytes) -> list[tuple[int, bytes]]:
    """The (distance, tag) pairs of a routes payload; raises MalformedPacket naming the fault."""
    fault = _routes_fault(payload)
    if fault is not None:
        raise MalformedPacket(fault)
    routes = []
    offset = 1
    for _ in range(payload[0]):
        distance, tag_len = payload[offset], payload[offset + 1]
        routes.append((distance, payload[offset + 2 : offset + 2 + tag_len]))
        offset += 2 + tag_len
    return routes


def make_ack(packet_ids: Sequence[bytes], expires_at_s: int) -> Packet:
    """A link-local ack (TTL 0) of `packet_ids`."""
    return Packet(
        type=PacketType.ACK,
        recipient_tag=b"",
        expires_at_s=expires_at_s,
        payload=encode_ack(packet_ids),
        ttl=0,
    )


def make_holds(packet_ids: Sequence[bytes], expires_at_s: int) -> Packet:
    """A link-local holds packet (TTL 0): packets we carry, by id prefix."""
    return Packet(
        type=PacketType.HOLDS,
        recipient_tag=b"",
        expires_at_s=expires_at_s,
        payload=encode_holds(packet_ids),
        ttl=0,
    )


def make_routes(routes: Sequence[tuple[int, bytes]], expires_at_s: int) -> Packet:
    """A link-local routes packet (TTL 0): tags we reach, each with its distance in hops."""
    return Packet(
        type=PacketType.ROUTES,
        recipient_tag=b"",
        expires_at_s=expires_at_s,
        payload=encode_routes(routes),
        ttl=0,
    )


def make_routes_update(update: RoutesUpdate, expires_at_s: int) -> Packet:
    """A link-local routes version 2 packet (TTL 0): a whole table or a delta."""
    return Packet(
        type=PacketType.ROUTES2,
        recipient_tag=b"",
        expires_at_s=expires_at_s,
        payload=encode_routes_update(update),
        ttl=0,
    )


def encode_receipt(secret: bytes) -> bytes:
    """Receipt payload (version 2): the secret alone; raises ValueError on a bad length."""
    if len(secret) != RECEIPT_SECRET_LEN:
        raise ValueError(f"receipt secret must be {RECEIPT_SECRET_LEN} bytes")
    return secret


def decode_receipt(payload: bytes) -> bytes:
    """The secret a receipt payload reveals; raises MalformedPacket on a bad length."""
    if len(payload) != RECEIPT_PAYLOAD_LEN:
        raise MalformedPacket(
            f"receipt payload length {len(payload)}, expected {RECEIPT_PAYLOAD_LEN}"
        )
    return payload


def make_announce(tags: Sequence[bytes], expires_at_s: int, ttl: int = 0) -> Packet:
    """An announce of `tags` (empty recipient tag; TTL 0 by default: neighbours only)."""
    return Packet(
        type=PacketType.ANNOUNCE,
        recipient_tag=b"",
        expires_at_s=expires_at_s,
        payload=encode_announce(tags),
        ttl=ttl,
    )


def make_receipt(
    secret: bytes, recipient_tag: bytes, expires_at_s: int, ttl: int = DEFAULT_TTL
) -> Packet:
    """A receipt revealing `secret`, addressed to `recipient_tag` (the cleared envelope's)."""
    return Packet(
        type=PacketType.RECEIPT,
        recipient_tag=recipient_tag,
        expires_at_s=expires_at_s,
        payload=encode_receipt(secret),
        ttl=ttl,
    )


def make_notice(
    sealed: bytes, recipient_tag: bytes, expires_at_s: int, ttl: int = DEFAULT_TTL
) -> Packet:
    """A notice carrying `sealed` (`receipt.seal_notice`) to the sender's `recipient_tag`."""
    return Packet(
        type=PacketType.NOTICE,
        recipient_tag=recipient_tag,
        expires_at_s=expires_at_s,
        payload=sealed,
        ttl=ttl,
    )


# Looked up once for decode_packet and priority: Enum attribute access is slow on the hot path.
_ENVELOPE: Final = PacketType.ENVELOPE
# Enum members looked up once: attribute access on an Enum class is slow on the hot path.
_T_ENVELOPE: Final = _ENVELOPE
_T_RECEIPT: Final = PacketType.RECEIPT
_T_NOTICE: Final = PacketType.NOTICE
_T_ANNOUNCE: Final = PacketType.ANNOUNCE
_T_ACK: Final = PacketType.ACK
_T_ROUTES: Final = PacketType.ROUTES
_T_ROUTES2: Final = PacketType.ROUTES2
_T_HOLDS: Final = PacketType.HOLDS
_CONTROL: Final = Priority.CONTROL
_BULK: Final = Priority.BULK
_INTERACTIVE: Final = Priority.INTERACTIVE
