"""The end-to-end envelope: what a mesh ENVELOPE packet's payload carries between two owners.

Outer form (the mesh payload; docs/protocol.md "End-to-end envelope" is the reference):

    version u8 (1) | kind u8 | body
    kind 1 HELLO    handshake_id 16 | reply_tag_key 32 | Noise XX message 1 (32)
                    [| reply_to 80: optional, the initiator's mailbox key sealed to the
                    responder's Noise static key (see `Hello`)]
    kind 2 REPLY    handshake_id 16 | Noise XX message 2 (281)
    kind 3 CONFIRM  handshake_id 16 | Noise XX message 3 (249)
    kind 4 MESSAGE  Double Ratchet message (40-byte header, ciphertext of whole 512-byte blocks,
                    16-byte tag); associated data = the mesh packet's fixed header fields

Inner form (the ratchet plaintext of a MESSAGE, before padding):

    kind u8 | receipt_secret 16 | body
    kind 1 TEXT     message_id 16 | sent_at_ms u64 | UTF-8 text (at most MAX_TEXT_BYTES)
    kind 2 CHUNK    file_id 16 | size u32 | chunk_count u32 | index u32 | name_len u8 | name
                    | data (CHUNK_BYTES, the last chunk shorter, never empty)
    kind 3 TAG_KEY  tag_key 32 (the key the sender serves this contact's tags under)

Every parser raises MalformedEnvelope naming the fault, nothing else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from pigeon.crypto.noise import MESSAGE_OVERHEAD
from pigeon.crypto.ratchet import HEADER_LEN, TAG_LEN
from pigeon.crypto.sealed import SEAL_OVERHEAD
from pigeon.crypto.session import MESSAGE1_LEN, MESSAGE3_LEN
from pigeon.crypto.session_payload import PAYLOAD_LEN
from pigeon.mesh.receipt import RECEIPT_SECRET_LEN
from pigeon.messenger.errors import MalformedEnvelope

ENVELOPE_VERSION: Final = 1
HANDSHAKE_ID_LEN: Final = 16
TAG_KEY_LEN: Final = 32
MAILBOX_KEY_LEN: Final = 32
REPLY_TO_LEN: Final = SEAL_OVERHEAD + MAILBOX_KEY_LEN
MESSAGE2_LEN: Final = MESSAGE_OVERHEAD[1] + PAYLOAD_LEN
MIN_RATCHET_LEN: Final = HEADER_LEN + 512 + TAG_LEN
ID_LEN: Final = 16
MAX_TEXT_BYTES: Final = 4096
CHUNK_BYTES: Final = 7 * 1024
MAX_FILE_NAME_BYTES: Final = 255
MAX_FILE_BYTES: Final = 25 * 1000 * 1000
MAX_CHUNKS: Final = -(-MAX_FILE_BYTES // CHUNK_BYTES)

_HEAD: Final = struct.Struct(">BB")
_TEXT: Final = struct.Struct(f">{ID_LEN}sQ")
_CHUNK: Final = struct.Struct(f">{ID_LEN}sIIIB")


class EnvelopeKind(IntEnum):
    """What an outer envelope carries."""

    HELLO = 1
    REPLY = 2
    CONFIRM = 3
    MESSAGE = 4


class InnerKind(IntEnum):
    """What a decrypted ratchet message carries."""

    TEXT = 1
    CHUNK = 2
    TAG_KEY = 3


@dataclass(frozen=True, slots=True, repr=False)
class Hello:
    """Handshake message 1 with where to send message 2 (the initiator is not known yet).

    `reply_to` (optional, b"" when absent) is the initiator's mailbox key sealed to the
    responder's Noise static key: a hint, unauthenticated until message 3, of whose relay
    mailbox may take message 2.
    """

    handshake_id: bytes
    reply_tag_key: bytes
    noise: bytes
    reply_to: bytes = b""


@dataclass(frozen=True, slots=True, repr=False)
class Reply:
    """Handshake message 2 for the initiation `handshake_id`."""

    handshake_id: bytes
    noise: bytes


@dataclass(frozen=True, slots=True, repr=False)
class Confirm:
    """Handshake message 3 for the initiation `handshake_id`."""

    handshake_id: bytes
    noise: bytes


@dataclass(frozen=True, slots=True, repr=False)
class RatchetEnvelope:
    """A Double Ratchet message of an established session."""

    message: bytes


Envelope = Hello | Reply | Confirm | RatchetEnvelope

_NOISE_LEN: Final = {
    EnvelopeKind.HELLO: HANDSHAKE_ID_LEN + TAG_KEY_LEN + MESSAGE1_LEN,
    EnvelopeKind.REPLY: HANDSHAKE_ID_LEN + MESSAGE2_LEN,
    EnvelopeKind.CONFIRM: HANDSHAKE_ID_LEN + MESSAGE3_LEN,
}


def encode_envelope(envelope: Envelope) -> bytes:
    """The outer wire form of `envelope`; raises ValueError on wrong field lengths (our bug)."""
    if isinstance(envelope, RatchetEnvelope):
        body, kind = envelope.message, EnvelopeKind.MESSAGE
    elif isinstance(envelope, Hello):
        body = envelope.handshake_id + envelope.reply_tag_key + envelope.noise
        kind = EnvelopeKind.HELLO
        if len(envelope.reply_to) not in (0, REPLY_TO_LEN):
            raise ValueError("HELLO reply-to hint has the wrong length")
    else:
        body = envelope.handshake_id + envelope.noise
        kind = EnvelopeKind.REPLY if isinstance(envelope, Reply) else EnvelopeKind.CONFIRM
    if kind is not EnvelopeKind.MESSAGE and len(body) != _NOISE_LEN[kind]:
        raise ValueError(f"{kind.name} envelope fields have the wrong length")
    if isinstance(envelope, Hello):
        body += envelope.reply_to
    return _HEAD.pack(ENVELOPE_VERSION, kind) + body


def decode_envelope(data: bytes) -> Envelope:
    """Parse an outer envelope; raises MalformedEnvelope."""
    data = bytes(data)
    if len(data) < _HEAD.size:
        raise MalformedEnvelope("envelope is shorter than its header")
    version, kind_value = _HEAD.unpack_from(data)
    if version != ENVELOPE_VERSION:
        raise MalformedEnvelope(f"envelope version {version} unsupported")
    try:
        kind = EnvelopeKind(kind_value)
    except ValueError:
        raise MalformedEnvelope(f"envelope kind {kind_value} unknown") from None
    body = data[_HEAD.size :]
    if kind is EnvelopeKind.MESSAGE:
        if len(body) < MIN_RATCHET_LEN or (len(body) - HEADER_LEN - TAG_LEN) % 512:
            raise MalformedEnvelope("ratchet message length is not whole padded blocks")
        return RatchetEnvelope(body)
    reply_to = b""
    if kind is EnvelopeKind.HELLO and len(body) == _NOISE_LEN[kind] + REPLY_TO_LEN:
        body, reply_to = body[: _NOISE_LEN[kind]], body[_NOISE_LEN[kind] :]
    if len(body) != _NOISE_LEN[kind]:
        raise MalformedEnvelope(
            f"{kind.name} envelope is {len(body)} bytes, not {_NOISE_LEN[kind]}"
        )
    handshake_id, rest = body[:HANDSHAKE_ID_LEN], body[HANDSHAKE_ID_LEN:]
    if kind is EnvelopeKind.HELLO:
        return Hello(handshake_id, rest[:TAG_KEY_LEN], rest[TAG_KEY_LEN:], reply_to)
    if kind is EnvelopeKind.REPLY:
        return Reply(handshake_id, rest)
    return Confirm(handshake_id, rest)


@dataclass(frozen=True, slots=True, repr=False)
class TextBody:
    """A text message (`text` is at most MAX_TEXT_BYTES of UTF-8)."""

    message_id: bytes
    sent_at_ms: int
    text: str


@dataclass(frozen=True, slots=True, repr=False)
class ChunkBody:
    """One chunk of a file; every chunk repeats the file's size, count and name."""

    file_id: bytes
    size: int
    chunk_count: int
    index: int
    name: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, repr=False)
class TagKeyBody:
    """The tag key the sender serves this contact's envelopes under from now on."""

    tag_key: bytes


Body = TextBody | ChunkBody | TagKeyBody


@dataclass(frozen=True, slots=True, repr=False)
class Inner:
    """A decrypted ratchet plaintext: the receipt secret and what it carries."""

    receipt_secret: bytes
    body: Body


def chunk_count(size: int) -> int:
    """How many chunks a file of `size` bytes (1 to MAX_FILE_BYTES) is sent in."""
    return max(1, -(-size // CHUNK_BYTES))


def encode_inner(inner: Inner) -> bytes:
    """The plaintext the ratchet encrypts; raises ValueError on out-of-range fields (our bug)."""
    if len(inner.receipt_secret) != RECEIPT_SECRET_LEN:
        raise ValueError("receipt secret has the wrong length")
    body = inner.body
    if isinstance(body, TextBody):
        kind, encoded = InnerKind.TEXT, _encode_text(body)
    elif isinstance(body, ChunkBody):
        kind, encoded = InnerKind.CHUNK, _encode_chunk(body)
    else:
        if len(body.tag_key) != TAG_KEY_LEN:
            raise ValueError("tag key has the wrong length")
        kind, encoded = InnerKind.TAG_KEY, body.tag_key
    return bytes((kind,)) + inner.receipt_secret + encoded


def _encode_text(body: TextBody) -> bytes:
    text = body.text.encode("utf-8")
    if len(text) > MAX_TEXT_BYTES:
        raise ValueError("text is too long")
    return _TEXT.pack(body.message_id, body.sent_at_ms) + text


def _encode_chunk(body: ChunkBody) -> bytes:
    name = body.name.encode("utf-8")
    if len(name) > MAX_FILE_NAME_BYTES:
        raise ValueError("file name is too long")
    head = _CHUNK.pack(body.file_id, body.size, body.chunk_count, body.index, len(name))
    return head + name + body.data


def decode_inner(data: bytes) -> Inner:
    """Parse a decrypted ratchet plaintext; raises MalformedEnvelope."""
    data = bytes(data)
    if len(data) < 1 + RECEIPT_SECRET_LEN:
        raise MalformedEnvelope("inner message is shorter than its header")
    kind_value, secret = data[0], data[1 : 1 + RECEIPT_SECRET_LEN]
    rest = data[1 + RECEIPT_SECRET_LEN :]
    if kind_value == InnerKind.TEXT:
        return Inner(secret, _decode_text(rest))
    if kind_value == InnerKind.CHUNK:
        return Inner(secret, _decode_chunk(rest))
    if kind_value == InnerKind.TAG_KEY:
        if len(rest) != TAG_KEY_LEN:
            raise MalformedEnvelope("tag key message has the wrong length")
        return Inner(secret, TagKeyBody(rest))
    raise MalformedEnvelope(f"inner kind {kind_value} unknown")


def _decode_text(rest: bytes) -> TextBody:
    if len(rest) < _TEXT.size:
        raise MalformedEnvelope("text message header is truncated")
    message_id, sent_at_ms = _TEXT.unpack_from(rest)
    raw = rest[_TEXT.size :]
    if len(raw) > MAX_TEXT_BYTES:
        raise MalformedEnvelope("text is over the size limit")
    return TextBody(message_id, sent_at_ms, _utf8(raw, "text"))


def _decode_chunk(rest: bytes) -> ChunkBody:
    if len(rest) < _CHUNK.size:
        raise MalformedEnvelope("chunk header is truncated")
    file_id, size, count, index, name_len = _CHUNK.unpack_from(rest)
    name_end = _CHUNK.size + name_len
    if len(rest) < name_end:
        raise MalformedEnvelope("chunk file name is truncated")
    name = _utf8(rest[_CHUNK.size : name_end], "file name")
    data = rest[name_end:]
    if not 1 <= size <= MAX_FILE_BYTES or count != chunk_count(size):
        raise MalformedEnvelope("chunk file size or chunk count is out of range")
    if not 0 <= index < count:
        raise MalformedEnvelope("chunk index is out of range")
    expected = CHUNK_BYTES if index < count - 1 else size - CHUNK_BYTES * (count - 1)
    if len(data) != expected:
        raise MalformedEnvelope("chunk data has the wrong length")
    return ChunkBody(file_id, size, count, index, name, data)


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedEnvelope(f"{what} is not UTF-8") from None
