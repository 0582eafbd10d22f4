"""The end-to-end envelope: what a mesh ENVELOPE packet's payload carries between two owners.

Outer form (the mesh payload; docs/protocol.md "End-to-end envelope" is the reference):

    version u8 (2, or 3 for kind 5) | kind u8 | body
    kind 1 PREKEY          Initiation (protobuf, `pigeon.crypto.olm_wire`): the sender's signed
                           Olm identity bundle and an Olm pre-key message; intro tag only
    kind 5 SHORT_PREKEY    (version 3) sender Ed25519 key 32 | prekey id 8 | base key 32 | the
                           pre-key message's inner Olm message: a pre-key message on the
                           recipient's fallback key without what the recipient holds already
                           (our Olm identity, bound in our card); intro tag only
    kind 2 MESSAGE         an Olm normal message (Olm's own bytes); session tags only
    kind 3 PREKEY_REQUEST  requester key 32 | sent_at_ms u64 | Ed25519 signature 64 by the
                           requester over REQUEST_LABEL | recipient key | requester key |
                           sent_at_ms; intro tag only
    kind 4 PREKEY_ANSWER   the answerer's PrekeyBundle (protobuf, `app_bundle`); intro tag only

Inner form (an Olm plaintext, padded to whole 512-byte blocks before encryption):

    kind u8 | receipt_secret 16 | sender_tag_key 32 | ad_digest 32 | body
    ad_digest: SHA-256 of the mesh header fields no hop may change (Olm has no associated
    data, so the binding rides inside); sender_tag_key: the key the sender serves this
    contact's session tags under (every plaintext carries it, so whichever arrives first
    lets the recipient answer on the sender's session tag at once)
    kind 1 TEXT     message_id 16 | sent_at_ms u64 | UTF-8 text (at most MAX_TEXT_BYTES)
    kind 2 CHUNK    file_id 16 | size u32 | chunk_count u32 | index u32 | name_len u8 | name
                    | data (CHUNK_BYTES, the last chunk shorter, never empty)
    kind 3 OPENED   nothing: the session is up at the sender (an answer to a new session)

Every parser raises MalformedEnvelope naming the fault, nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from pigeon.crypto.errors import MalformedInput
from pigeon.crypto.olm_wire import OLM_VERSION, PREKEY_ID_LEN
from pigeon.crypto.padding import pad, unpad
from pigeon.mesh.receipt import RECEIPT_SECRET_LEN
from pigeon.messenger.errors import MalformedEnvelope

ENVELOPE_VERSION: Final = 2  # kinds 1 to 4, which the previous release reads too
SHORT_PREKEY_VERSION: Final = 3  # the version that added kind 5
TAG_KEY_LEN: Final = 32
KEY_LEN: Final = 32
SIGNATURE_LEN: Final = 64
AD_DIGEST_LEN: Final = 32
REQUEST_LABEL: Final = b"Pigeon.PrekeyRequest.v1"
ID_LEN: Final = 16
MAX_TEXT_BYTES: Final = 4096
CHUNK_BYTES: Final = 7 * 1024
MAX_FILE_NAME_BYTES: Final = 255
MAX_FILE_BYTES: Final = 25 * 1000 * 1000
MAX_CHUNKS: Final = -(-MAX_FILE_BYTES // CHUNK_BYTES)

_HEAD: Final = struct.Struct(">BB")
_REQUEST: Final = struct.Struct(f">{KEY_LEN}sQ{SIGNATURE_LEN}s")
_SHORT: Final = struct.Struct(f">{KEY_LEN}s{PREKEY_ID_LEN}s{KEY_LEN}s")
# What a SHORT_PREKEY envelope adds to a MESSAGE envelope of the same plaintext.
SHORT_PREKEY_EXTRA_BYTES: Final = _SHORT.size
_TEXT: Final = struct.Struct(f">{ID_LEN}sQ")
_CHUNK: Final = struct.Struct(f">{ID_LEN}sIIIB")
_INNER_HEAD_LEN: Final = 1 + RECEIPT_SECRET_LEN + TAG_KEY_LEN + AD_DIGEST_LEN


class EnvelopeKind(IntEnum):
    """What an outer envelope carries."""

    PREKEY = 1
    MESSAGE = 2
    PREKEY_REQUEST = 3
    PREKEY_ANSWER = 4
    SHORT_PREKEY = 5


class InnerKind(IntEnum):
    """What a decrypted Olm plaintext carries."""

    TEXT = 1
    CHUNK = 2
    OPENED = 3


@dataclass(frozen=True, slots=True, repr=False)
class PrekeyEnvelope:
    """A first-contact Olm pre-key message with the sender's identity (`Initiation` bytes)."""

    initiation: bytes


@dataclass(frozen=True, slots=True, repr=False)
class ShortPrekeyEnvelope:
    """An Olm pre-key message on the recipient's fallback key, less what the recipient holds:
    the sender's Curve25519 key (bound in the sender's card) and the prekey (named by id)."""

    sender_key: bytes
    prekey_id: bytes
    base_key: bytes
    message: bytes  # the pre-key message's inner Olm message (Olm's own bytes)


@dataclass(frozen=True, slots=True, repr=False)
class MessageEnvelope:
    """An Olm normal message of an established session."""

    ciphertext: bytes


@dataclass(frozen=True, slots=True, repr=False)
class PrekeyRequest:
    """A signed request for the recipient's current prekey bundle."""

    requester_key: bytes
    sent_at_ms: int
    signature: bytes


@dataclass(frozen=True, slots=True, repr=False)
class PrekeyAnswer:
    """The answerer's signed prekey bundle (`AppPrekeyBundle` bytes)."""

    bundle: bytes


Envelope = PrekeyEnvelope | ShortPrekeyEnvelope | MessageEnvelope | PrekeyRequest | PrekeyAnswer


def request_message(recipient_key: bytes, requester_key: bytes, sent_at_ms: int) -> bytes:
    """What a prekey request's signature covers."""
    return REQUEST_LABEL + recipient_key + requester_key + sent_at_ms.to_bytes(8, "big")


def encode_envelope(envelope: Envelope) -> bytes:
    """The outer wire form of `envelope`; raises ValueError on out-of-range fields (our bug)."""
    if isinstance(envelope, ShortPrekeyEnvelope):
        if not envelope.message or envelope.message[0] != OLM_VERSION:
            raise ValueError("a short pre-key envelope carries an Olm message")
        body = _SHORT.pack(envelope.sender_key, envelope.prekey_id, envelope.base_key)
        if len(body) != _SHORT.size:
            raise ValueError("a short pre-key envelope's key or prekey id has the wrong length")
        head = _HEAD.pack(SHORT_PREKEY_VERSION, EnvelopeKind.SHORT_PREKEY)
        return head + body + envelope.message
    if isinstance(envelope, PrekeyEnvelope):
        kind, body = EnvelopeKind.PREKEY, envelope.initiation
    elif isinstance(envelope, MessageEnvelope):
        kind, body = EnvelopeKind.MESSAGE, envelope.ciphertext
    elif isinstance(envelope, PrekeyRequest):
        kind = EnvelopeKind.PREKEY_REQUEST
        body = _REQUEST.pack(envelope.requester_key, envelope.sent_at_ms, envelope.signature)
    else:
        kind, body = EnvelopeKind.PREKEY_ANSWER, envelope.bundle
    return _HEAD.pack(ENVELOPE_VERSION, kind) + body


def decode_envelope(data: bytes) -> Envelope:
    """Parse an outer envelope (its contents stay unverified); raises MalformedEnvelope."""
    data = bytes(data)
    if len(data) < _HEAD.size:
        raise MalformedEnvelope("envelope is shorter than its header")
    version, kind_value = _HEAD.unpack_from(data)
    if version not in (ENVELOPE_VERSION, SHORT_PREKEY_VERSION):
        raise MalformedEnvelope(f"envelope version {version} unsupported")
    try:
        kind = EnvelopeKind(kind_value)
    except ValueError:
        raise MalformedEnvelope(f"envelope kind {kind_value} unknown") from None
    if (kind is EnvelopeKind.SHORT_PREKEY) != (version == SHORT_PREKEY_VERSION):
        raise MalformedEnvelope(f"{kind.name} envelope is not of version {version}")
    body = data[_HEAD.size :]
    if not body:
        raise MalformedEnvelope(f"{kind.name} envelope is empty")
    if kind is EnvelopeKind.SHORT_PREKEY:
        return _decode_short(body)
    if kind is EnvelopeKind.PREKEY:
        return PrekeyEnvelope(body)
    if kind is EnvelopeKind.MESSAGE:
        return MessageEnvelope(body)
    if kind is EnvelopeKind.PREKEY_ANSWER:
        return PrekeyAnswer(body)
    if len(body) != _REQUEST.size:
        raise MalformedEnvelope(f"PREKEY_REQUEST envelope is {len(body)} bytes")
    return PrekeyRequest(*_REQUEST.unpack(body))


def _decode_short(body: bytes) -> ShortPrekeyEnvelope:
    message = body[_SHORT.size :]
    if not message or message[0] != OLM_VERSION:
        raise MalformedEnvelope("SHORT_PREKEY envelope lacks its Olm message")
    sender_key, prekey_id, base_key = _SHORT.unpack_from(body)
    return ShortPrekeyEnvelope(sender_key, prekey_id, base_key, message)


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
class OpenedBody:
    """Nothing but the header: the sender's session is up (it answers a new session)."""


Body = TextBody | ChunkBody | OpenedBody


@dataclass(frozen=True, slots=True, repr=False)
class Inner:
    """A decrypted plaintext: the receipt secret, the sender's tag key and what it carries."""

    receipt_secret: bytes
    tag_key: bytes
    body: Body


def chunk_count(size: int) -> int:
    """How many chunks a file of `size` bytes (1 to MAX_FILE_BYTES) is sent in."""
    return max(1, -(-size // CHUNK_BYTES))


def ad_digest(associated_data: bytes) -> bytes:
    """The digest of an envelope's associated data that its plaintext carries."""
    return hashlib.sha256(associated_data).digest()


def encode_inner(inner: Inner, associated_data: bytes) -> bytes:
    """The padded plaintext Olm encrypts; raises ValueError on out-of-range fields (our bug)."""
    if len(inner.receipt_secret) != RECEIPT_SECRET_LEN or len(inner.tag_key) != TAG_KEY_LEN:
        raise ValueError("receipt secret or tag key has the wrong length")
    body = inner.body
    if isinstance(body, TextBody):
        kind, encoded = InnerKind.TEXT, _encode_text(body)
    elif isinstance(body, ChunkBody):
        kind, encoded = InnerKind.CHUNK, _encode_chunk(body)
    else:
        kind, encoded = InnerKind.OPENED, b""
    head = bytes((kind,)) + inner.receipt_secret + inner.tag_key + ad_digest(associated_data)
    return pad(head + encoded)


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


def decode_inner(padded: bytes, associated_data: bytes) -> Inner:
    """Parse a decrypted plaintext received with `associated_data`; raises MalformedEnvelope
    (also when the plaintext was written for other header fields)."""
    try:
        data = unpad(bytes(padded))
    except MalformedInput as exc:
        raise MalformedEnvelope("inner message padding is malformed") from exc
    if len(data) < _INNER_HEAD_LEN:
        raise MalformedEnvelope("inner message is shorter than its header")
    kind_value, at = data[0], 1
    secret, at = data[at : at + RECEIPT_SECRET_LEN], at + RECEIPT_SECRET_LEN
    tag_key, at = data[at : at + TAG_KEY_LEN], at + TAG_KEY_LEN
    digest, rest = data[at : at + AD_DIGEST_LEN], data[_INNER_HEAD_LEN:]
    if not hmac.compare_digest(digest, ad_digest(associated_data)):
        raise MalformedEnvelope("inner message was written for another envelope header")
    if kind_value == InnerKind.TEXT:
        return Inner(secret, tag_key, _decode_text(rest))
    if kind_value == InnerKind.CHUNK:
        return Inner(secret, tag_key, _decode_chunk(rest))
    if kind_value == InnerKind.OPENED:
        if rest:
            raise MalformedEnvelope("opened message has a body")
        return Inner(secret, tag_key, OpenedBody())
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
