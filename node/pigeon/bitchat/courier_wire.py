"""bitchat's courier wire formats: the envelope a 0x04 packet carries, its rotating recipient
tag, and the 16-byte envelope identity a spray receipt (0x2A ack, 0x2B decline) carries.

Envelope TLVs (type u8 | length u16 big-endian | value), lengths checked exactly, unknown types
skipped: 0x01 recipient tag (16), 0x02 expiry (u64 ms since the epoch), 0x03 ciphertext (1 to
16 KiB), 0x04 copies (u8, omitted when 1), 0x05 prekey id (u32, omitted for static seals). A
decoded copy budget is clamped into 1..8, never refused (bitchat's CourierEnvelope.swift). The
ciphertext is a one-way Noise seal to the recipient: a courier can neither read nor check it.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, field, replace
from typing import Final

from pigeon.bitchat.errors import LocalError, MalformedEnvelope

TAG_SIZE: Final = 16
MAX_CIPHERTEXT_BYTES: Final = 16 * 1024
MAX_LIFETIME_S: Final = 24 * 60 * 60
MAX_COPIES: Final = 8
TAG_CONTEXT: Final = b"bitchat-courier-tag-v1"
RECEIPT_SIZE: Final = 16  # a spray receipt's payload: the envelope's ciphertext hash

T_TAG: Final = 0x01
T_EXPIRY: Final = 0x02
T_CIPHERTEXT: Final = 0x03
T_COPIES: Final = 0x04
T_PREKEY: Final = 0x05
_HEAD: Final = struct.Struct(">BH")


def clamp_copies(copies: int) -> int:
    """bitchat's copy budget bounds: 1 (carry only) to 8."""
    return min(max(copies, 1), MAX_COPIES)


@dataclass(frozen=True, slots=True)
class CourierEnvelope:
    """One courier envelope; `copies` is always within 1..8."""

    recipient_tag: bytes
    expiry_ms: int
    ciphertext: bytes = field(repr=False)
    copies: int = 1
    prekey_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "copies", clamp_copies(self.copies))

    def with_copies(self, copies: int) -> CourierEnvelope:
        """The same envelope with another (clamped) copy budget."""
        return replace(self, copies=copies)

    def expired_at(self, now_ms: int) -> bool:
        """True once `now_ms` reaches the expiry (bitchat: now >= expiry)."""
        return now_ms >= self.expiry_ms

    @property
    def identity(self) -> bytes:
        """The envelope's identity (what spray receipts name): its ciphertext hash."""
        return ciphertext_hash(self.ciphertext)


def encode_envelope(envelope: CourierEnvelope) -> bytes:
    """The envelope's TLVs; raises LocalError for a tag or ciphertext bitchat refuses."""
    if len(envelope.recipient_tag) != TAG_SIZE:
        raise LocalError("a courier recipient tag is 16 bytes")
    if not 0 < len(envelope.ciphertext) <= MAX_CIPHERTEXT_BYTES:
        raise LocalError("a courier ciphertext is 1 to 16 KiB")
    parts = [
        _HEAD.pack(T_TAG, TAG_SIZE), envelope.recipient_tag,
        _HEAD.pack(T_EXPIRY, 8), struct.pack(">Q", envelope.expiry_ms),
        _HEAD.pack(T_CIPHERTEXT, len(envelope.ciphertext)), envelope.ciphertext,
    ]  # fmt: skip
    if envelope.copies > 1:  # omitted at 1: byte-identical to the pre-spray format
        parts += [_HEAD.pack(T_COPIES, 1), bytes((envelope.copies,))]
    if envelope.prekey_id is not None:
        parts += [_HEAD.pack(T_PREKEY, 4), struct.pack(">I", envelope.prekey_id)]
    return b"".join(parts)


_EXACT: Final = {T_TAG: TAG_SIZE, T_EXPIRY: 8, T_COPIES: 1, T_PREKEY: 4}


def decode_envelope(data: bytes) -> CourierEnvelope:
    """An envelope from its TLVs; raises MalformedEnvelope (cut short, a wrong length, a
    missing tag, expiry or ciphertext)."""
    fields: dict[int, bytes] = {}
    offset = 0
    while offset < len(data):
        if offset + _HEAD.size > len(data):
            raise MalformedEnvelope("a courier TLV head is cut short")
        kind, length = _HEAD.unpack_from(data, offset)
        offset += _HEAD.size
        if offset + length > len(data):
            raise MalformedEnvelope("a courier TLV runs past the end")
        value = data[offset : offset + length]
        offset += length
        if kind in _EXACT and length != _EXACT[kind]:
            raise MalformedEnvelope("a courier TLV has the wrong length")
        if kind == T_CIPHERTEXT and not 0 < length <= MAX_CIPHERTEXT_BYTES:
            raise MalformedEnvelope("a courier ciphertext is empty or over 16 KiB")
        if T_TAG <= kind <= T_PREKEY:
            fields[kind] = value  # a repeated field: the last wins, as in bitchat's decoder
    try:
        tag, expiry, ciphertext = fields[T_TAG], fields[T_EXPIRY], fields[T_CIPHERTEXT]
    except KeyError as exc:
        raise MalformedEnvelope("a courier envelope lacks its tag, expiry or ciphertext") from exc
    copies = fields[T_COPIES][0] if T_COPIES in fields else 1
    prekey = int.from_bytes(fields[T_PREKEY], "big") if T_PREKEY in fields else None
    return CourierEnvelope(tag, int.from_bytes(expiry, "big"), ciphertext, copies, prekey)


def epoch_day(unix_s: float) -> int:
    """The UTC day number tags rotate on."""
    return int(max(0.0, unix_s) // 86_400)


def recipient_tag(noise_static_key: bytes, day: int) -> bytes:
    """bitchat's tag for a recipient on `day`: HMAC-SHA256(key, context | day u32), 16 bytes."""
    message = TAG_CONTEXT + struct.pack(">I", day)
    return hmac.new(noise_static_key, message, hashlib.sha256).digest()[:TAG_SIZE]


def candidate_tags(noise_static_key: bytes, unix_s: float) -> frozenset[bytes]:
    """The tags that address a recipient around `unix_s`: yesterday, today and tomorrow."""
    day = epoch_day(unix_s)
    days = {max(day - 1, 0), day, day + 1}
    return frozenset(recipient_tag(noise_static_key, d) for d in days)


def ciphertext_hash(ciphertext: bytes) -> bytes:
    """SHA-256 of the ciphertext, first 16 bytes: the identity a spray receipt carries."""
    return hashlib.sha256(ciphertext).digest()[:RECEIPT_SIZE]


def decode_receipt(payload: bytes) -> bytes:
    """A spray ack's or decline's payload, the ciphertext hash; raises MalformedEnvelope."""
    if len(payload) != RECEIPT_SIZE:
        raise MalformedEnvelope("a spray receipt is not 16 bytes")
    return payload
