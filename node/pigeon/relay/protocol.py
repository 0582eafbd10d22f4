"""The relay wire protocol: binary WebSocket frames between a client and a mailbox relay (sans-IO).

Every frame is one binary WebSocket message: `version (u8) | type (u8) | body`, big-endian
integers, fixed-size fields first and the variable tail (ciphertext, id list) last, so a frame
parses without length prefixes. `docs/protocol.md` ("Relay protocol") is the normative text.
Version 2 names an envelope by a hash of its ciphertext (`envelope_id_of`), so nobody can take a
genuine envelope's name first, and puts the purpose label first in the signed read message.
Stdlib only: the client (`pigeon.transport.relay_client`) and the server share this codec.

Raises (decoders): `MalformedFrame`, `UnsupportedVersion`, `UnknownFrameType`, all `FrameError`.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass
from typing import Final

VERSION: Final = 2
KEY_LEN: Final = 32
ENVELOPE_ID_LEN: Final = 16
CHALLENGE_LEN: Final = 32
SIGNATURE_LEN: Final = 64
MAX_ACK_IDS: Final = 256
READ_PURPOSE: Final = b"Pigeon.RelayRead.v2"
MAX_URL_BYTES: Final = 2048
# WebSocket close codes 4000-4999 are private; a fatal error closes with 4000 + its code.
CLOSE_CODE_BASE: Final = 4000
DEPOSIT_HEADER_BYTES: Final = 2 + 4 + KEY_LEN
MAX_ACK_FRAME_BYTES: Final = 2 + 4 + MAX_ACK_IDS * ENVELOPE_ID_LEN
# Frames up to twice the envelope limit (plus slack) are read and get a typed error.
_FRAME_SLACK_BYTES: Final = 1024

_HEADER = struct.Struct(">BB")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")
_ERROR_BODY = struct.Struct(">IHI")
_MAX_U32: Final = 0xFFFFFFFF


class FrameError(ValueError):
    """Root of every codec error: the bytes are not a valid relay frame."""


class MalformedFrame(FrameError):
    """A frame has the wrong length or an invalid field."""


class UnsupportedVersion(FrameError):
    """A frame carries a protocol version this codec does not speak."""


class UnknownFrameType(FrameError):
    """A frame carries a type byte not defined for its direction."""


class FrameType(enum.IntEnum):
    """The type byte; client-to-relay types are below 0x80, relay-to-client types above."""

    DEPOSIT = 0x01
    AUTH = 0x02
    ACK = 0x03
    CHALLENGE = 0x81
    STORED = 0x82
    AUTH_OK = 0x83
    ENVELOPE = 0x84
    ACKED = 0x85
    ERROR = 0x86
    BACKLOG_SENT = 0x87


class ErrorCode(enum.IntEnum):
    """Every error the relay sends; `docs/protocol.md` says which ones close the connection."""

    MALFORMED_FRAME = 1
    UNSUPPORTED_VERSION = 2
    UNEXPECTED_FRAME = 3
    CHALLENGE_USED = 4
    BAD_KEY = 10
    BAD_SIGNATURE = 11
    CHALLENGE_EXPIRED = 12
    CLOCK_SKEW = 13
    READER_REPLACED = 14
    ENVELOPE_TOO_LARGE = 20
    MAILBOX_FULL = 21
    MAILBOX_BYTES_FULL = 22
    RELAY_FULL = 23
    RATE_LIMITED = 30
    IP_RATE_LIMITED = 31
    TOO_MANY_CONNECTIONS = 32
    TOO_MANY_IP_CONNECTIONS = 33
    RELAY_BUSY = 34
    CONNECT_RATE_LIMITED = 35
    STORAGE_FAILED = 40
    SHUTTING_DOWN = 41


# BAD_KEY is fatal in answer to AUTH and not in answer to a DEPOSIT. Every fatal error carries
# request id 0 (it ends the connection, not one request); every other error names its request.


@dataclass(frozen=True, slots=True)
class Deposit:
    """Client: store `ciphertext` in the mailbox of `mailbox_key` (named `envelope_id_of` it)."""

    request_id: int
    mailbox_key: bytes
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class Auth:
    """Client: prove ownership of `mailbox_key` to read it, signing `read_signed_message`."""

    mailbox_key: bytes
    timestamp_ms: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    """Client: the envelopes `envelope_ids` are safe with me; delete them."""

    request_id: int
    envelope_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Challenge:
    """Relay: the fresh, single-use challenge of this connection."""

    challenge: bytes


@dataclass(frozen=True, slots=True)
class Stored:
    """Relay: the deposit `request_id` is durable."""

    request_id: int


@dataclass(frozen=True, slots=True)
class AuthOk:
    """Relay: authenticated; the mailbox's envelopes follow, stored ones first."""


@dataclass(frozen=True, slots=True)
class BacklogSent:
    """Relay: every envelope the mailbox held at AUTH_OK was sent; later ones arrive live."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """Relay: an envelope from the authenticated mailbox."""

    envelope_id: bytes
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class Acked:
    """Relay: the envelopes of ack `request_id` are deleted durably."""

    request_id: int


@dataclass(frozen=True, slots=True)
class Error:
    """Relay: `code` for request `request_id` (0: the connection); retry after `retry_after_ms`."""

    request_id: int
    code: ErrorCode
    retry_after_ms: int = 0


ClientFrame = Deposit | Auth | Ack
ServerFrame = Challenge | Stored | AuthOk | Envelope | Acked | Error | BacklogSent


def envelope_id_of(ciphertext: bytes) -> bytes:
    """The name of an envelope in its mailbox: the first 16 bytes of SHA-256(ciphertext)."""
    return hashlib.sha256(ciphertext).digest()[:ENVELOPE_ID_LEN]


def max_frame_bytes(max_envelope_bytes: int) -> int:
    """The largest client frame a relay with this envelope limit reads (larger: close 1009)."""
    return max(2 * max_envelope_bytes + _FRAME_SLACK_BYTES, MAX_ACK_FRAME_BYTES)


def read_signed_message(
    challenge: bytes, relay_url: str, timestamp_ms: int, mailbox_key: bytes
) -> bytes:
    """The bytes a reader signs: purpose || challenge || u16 len || URL || u64 time || key."""
    url = relay_url.encode("utf-8")
    if len(challenge) != CHALLENGE_LEN or len(mailbox_key) != KEY_LEN:
        raise MalformedFrame("challenge or mailbox key has the wrong length")
    if len(url) > MAX_URL_BYTES:
        raise MalformedFrame("relay URL is too long")
    _check_u64(timestamp_ms)
    # The fixed label comes first so that no relay-chosen bytes can start the message.
    return b"".join(
        (READ_PURPOSE, challenge, _U16.pack(len(url)), url, _U64.pack(timestamp_ms), mailbox_key)
    )


def encode(frame: ClientFrame | ServerFrame) -> bytes:
    """The wire bytes of `frame`; raises MalformedFrame if a field is out of range."""
    match frame:
        case Deposit():
            _check_request_id(frame.request_id)
            _check_len(frame.mailbox_key, KEY_LEN, "mailbox key")
            if not frame.ciphertext:
                raise MalformedFrame("ciphertext is empty")
            body = _U32.pack(frame.request_id) + frame.mailbox_key + frame.ciphertext
        case Auth():
            _check_len(frame.mailbox_key, KEY_LEN, "mailbox key")
            _check_len(frame.signature, SIGNATURE_LEN, "signature")
            _check_u64(frame.timestamp_ms)
            body = frame.mailbox_key + _U64.pack(frame.timestamp_ms) + frame.signature
        case Ack():
            _check_request_id(frame.request_id)
            _check_ack_ids(frame.envelope_ids)
            body = _U32.pack(frame.request_id) + b"".join(frame.envelope_ids)
        case Challenge():
            _check_len(frame.challenge, CHALLENGE_LEN, "challenge")
            body = frame.challenge
        case Stored() | Acked():
            _check_request_id(frame.request_id)
            body = _U32.pack(frame.request_id)
        case AuthOk() | BacklogSent():
            body = b""
        case Envelope():
            _check_len(frame.envelope_id, ENVELOPE_ID_LEN, "envelope id")
            if not frame.ciphertext:
                raise MalformedFrame("ciphertext is empty")
            body = frame.envelope_id + frame.ciphertext
        case Error():
            _check_u32(frame.request_id)
            _check_u32(frame.retry_after_ms)
            body = _ERROR_BODY.pack(frame.request_id, ErrorCode(frame.code), frame.retry_after_ms)
    return _HEADER.pack(VERSION, _TYPE_OF[type(frame)]) + body


def decode_client_frame(data: bytes) -> ClientFrame:
    """Parse a frame a client sent; raises FrameError."""
    frame_type, body = _split(data, _CLIENT_TYPES)
    if frame_type is FrameType.DEPOSIT:
        if len(body) <= 4 + KEY_LEN:
            raise MalformedFrame("DEPOSIT is too short")
        request_id = _request_id(body)
        return Deposit(request_id, body[4 : 4 + KEY_LEN], body[4 + KEY_LEN :])
    if frame_type is FrameType.AUTH:
        if len(body) != KEY_LEN + 8 + SIGNATURE_LEN:
            raise MalformedFrame("AUTH has the wrong length")
        (timestamp_ms,) = _U64.unpack_from(body, KEY_LEN)
        return Auth(body[:KEY_LEN], timestamp_ms, body[KEY_LEN + 8 :])
    ids = body[4:]
    if len(body) < 4 or not ids or len(ids) % ENVELOPE_ID_LEN or len(ids) > _MAX_ACK_BYTES:
        raise MalformedFrame("ACK must carry 1 to 256 envelope ids")
    id_list = tuple(ids[i : i + ENVELOPE_ID_LEN] for i in range(0, len(ids), ENVELOPE_ID_LEN))
    return Ack(_request_id(body), id_list)


def decode_server_frame(data: bytes) -> ServerFrame:
    """Parse a frame a relay sent; raises FrameError."""
    frame_type, body = _split(data, _SERVER_TYPES)
    if frame_type is FrameType.CHALLENGE:
        if len(body) != CHALLENGE_LEN:
            raise MalformedFrame("CHALLENGE has the wrong length")
        return Challenge(body)
    if frame_type is FrameType.ENVELOPE:
        if len(body) <= ENVELOPE_ID_LEN:
            raise MalformedFrame("ENVELOPE is too short")
        return Envelope(body[:ENVELOPE_ID_LEN], body[ENVELOPE_ID_LEN:])
    if frame_type is FrameType.ERROR:
        if len(body) != _ERROR_BODY.size:
            raise MalformedFrame("ERROR has the wrong length")
        request_id, code, retry_after_ms = _ERROR_BODY.unpack(body)
        try:
            return Error(request_id, ErrorCode(code), retry_after_ms)
        except ValueError as exc:
            raise MalformedFrame("ERROR carries an unknown code") from exc
    if frame_type in (FrameType.AUTH_OK, FrameType.BACKLOG_SENT):
        if body:
            raise MalformedFrame(f"{frame_type.name} has a body")
        return AuthOk() if frame_type is FrameType.AUTH_OK else BacklogSent()
    if len(body) != 4:
        raise MalformedFrame("frame has the wrong length")
    request_id = _request_id(body)
    return Stored(request_id) if frame_type is FrameType.STORED else Acked(request_id)


def is_fatal(error: Error) -> bool:
    """True if the relay closes the connection after sending `error` (request id 0)."""
    return error.request_id == 0


_TYPE_OF: Final[dict[type, FrameType]] = {
    Deposit: FrameType.DEPOSIT,
    Auth: FrameType.AUTH,
    Ack: FrameType.ACK,
    Challenge: FrameType.CHALLENGE,
    Stored: FrameType.STORED,
    AuthOk: FrameType.AUTH_OK,
    Envelope: FrameType.ENVELOPE,
    Acked: FrameType.ACKED,
    Error: FrameType.ERROR,
    BacklogSent: FrameType.BACKLOG_SENT,
}
_CLIENT_TYPES: Final = frozenset({FrameType.DEPOSIT, FrameType.AUTH, FrameType.ACK})
_SERVER_TYPES: Final = frozenset(FrameType) - _CLIENT_TYPES
_MAX_ACK_BYTES: Final = MAX_ACK_IDS * ENVELOPE_ID_LEN


def _split(data: bytes, allowed: frozenset[FrameType]) -> tuple[FrameType, bytes]:
    if len(data) < _HEADER.size:
        raise MalformedFrame("frame is shorter than its header")
    version, type_byte = _HEADER.unpack_from(data)
    if version != VERSION:
        raise UnsupportedVersion(f"protocol version {version} is not supported")
    try:
        frame_type = FrameType(type_byte)
    except ValueError as exc:
        raise UnknownFrameType(f"frame type 0x{type_byte:02x} is unknown") from exc
    if frame_type not in allowed:
        raise UnknownFrameType(f"frame type 0x{type_byte:02x} is not valid in this direction")
    return frame_type, bytes(data[_HEADER.size :])


def _request_id(body: bytes) -> int:
    (request_id,) = _U32.unpack_from(body)
    if request_id == 0:
        raise MalformedFrame("request id 0 is reserved")
    return int(request_id)


def _check_len(value: bytes, length: int, what: str) -> None:
    if len(value) != length:
        raise MalformedFrame(f"{what} must be {length} bytes")


def _check_u32(value: int) -> None:
    if not 0 <= value <= _MAX_U32:
        raise MalformedFrame("value does not fit in 32 bits")


def _check_u64(value: int) -> None:
    if not 0 <= value < 1 << 64:
        raise MalformedFrame("value does not fit in 64 bits")


def _check_request_id(request_id: int) -> None:
    if not 1 <= request_id <= _MAX_U32:
        raise MalformedFrame("request id must be 1 to 2**32-1")


def _check_ack_ids(envelope_ids: tuple[bytes, ...]) -> None:
    if not 1 <= len(envelope_ids) <= MAX_ACK_IDS:
        raise MalformedFrame("ACK must carry 1 to 256 envelope ids")
    for envelope_id in envelope_ids:
        _check_len(envelope_id, ENVELOPE_ID_LEN, "envelope id")
