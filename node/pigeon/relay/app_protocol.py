"""The Pigeon app's relay protocol: JSON text frames on `/ws` (sans-IO, stdlib only).

Facts from `isaiah-harville/Pigeon` at ef7dc11 (`pigeon-relay/src/protocol.rs`,
`connection.rs`, `mailbox.rs`, `state.rs`); `docs/protocol.md` ("The Pigeon app's relay protocol
on `pigeon relay`") is the normative text. Every frame is one JSON object whose `type` names it;
relay frames are written compactly, `type` first and then the fields in the order below, as the
app's relay writes them. Mailboxes are hex Ed25519 keys, ciphertexts and nonces standard base64.

Raises (decoder): `AppFrameError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import string
from dataclasses import dataclass
from typing import Any, Final

from pigeon.relay.protocol import ErrorCode

KEY_LEN: Final = 32
NONCE_LEN: Final = 32
SIGNATURE_LEN: Final = 64
# The app relay's caps (state.rs:22, main.rs:64-65), applied where they are stricter than ours.
MAX_CIPHERTEXT_CHARS: Final = 256 * 1024
APP_MAILBOX_MAX_ENVELOPES: Final = 1_000
APP_MAX_AGE_S: Final = 30 * 24 * 3600
# App mailboxes live in the store under this prefix, apart from our protocol's 32-byte keys.
APP_MAILBOX_PREFIX: Final = b"pigeon-app/"

# Error texts and details, as the app's relay sends them.
MALFORMED: Final = "malformed message"  # connection.rs:64
INVALID_MAILBOX: Final = "invalid mailbox"  # connection.rs:79
SUBSCRIBE_FIRST: Final = "subscribe first"  # connection.rs:93
AUTHENTICATED: Final = "authenticated"  # connection.rs:112 (ok detail)
AUTH_FAILED: Final = "authentication failed"  # connection.rs:117
NOT_AUTHENTICATED: Final = "not authenticated"  # connection.rs:126, 141; mailbox.rs:103
PUSH_UNREGISTERED: Final = "push unregistered"  # connection.rs:137 (ok detail)
INVALID_RECIPIENT: Final = "invalid recipient"  # mailbox.rs:33
INVALID_CIPHERTEXT: Final = "invalid ciphertext"  # mailbox.rs:39
AT_CAPACITY: Final = "relay at capacity"  # mailbox.rs:61
PUSH_NOT_SUPPORTED: Final = "push not supported"  # mailbox.rs:109
# Ours, for limits the app's relay does not have.
CHALLENGE_EXPIRED: Final = "challenge expired"
MAILBOX_FULL: Final = "mailbox full"
RATE_LIMITED: Final = "rate limited"
RELAY_BUSY: Final = "relay busy"
STORAGE_FAILED: Final = "storage failed"
TOO_MANY_CONNECTIONS: Final = "too many connections"
SHUTTING_DOWN: Final = "shutting down"

_TEXT_OF_CODE: Final[dict[ErrorCode, str]] = {
    ErrorCode.BAD_KEY: INVALID_RECIPIENT,
    ErrorCode.ENVELOPE_TOO_LARGE: INVALID_CIPHERTEXT,
    ErrorCode.MAILBOX_FULL: MAILBOX_FULL,
    ErrorCode.MAILBOX_BYTES_FULL: MAILBOX_FULL,
    ErrorCode.RELAY_FULL: AT_CAPACITY,
    ErrorCode.RATE_LIMITED: RATE_LIMITED,
    ErrorCode.IP_RATE_LIMITED: RATE_LIMITED,
    ErrorCode.CONNECT_RATE_LIMITED: RATE_LIMITED,
    ErrorCode.RELAY_BUSY: RELAY_BUSY,
    ErrorCode.STORAGE_FAILED: STORAGE_FAILED,
    ErrorCode.TOO_MANY_CONNECTIONS: TOO_MANY_CONNECTIONS,
    ErrorCode.TOO_MANY_IP_CONNECTIONS: TOO_MANY_CONNECTIONS,
    ErrorCode.SHUTTING_DOWN: SHUTTING_DOWN,
}


class AppFrameError(ValueError):
    """A text frame is not one of the app's client frames (answered `malformed message`)."""


@dataclass(frozen=True, slots=True)
class Publish:
    """Client: deposit `ciphertext` (base64) for `recipient` (hex Ed25519 key)."""

    recipient: str
    ciphertext: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Client: I want to read `mailbox` (hex Ed25519 key); send me a challenge."""

    mailbox: str


@dataclass(frozen=True, slots=True)
class AuthAnswer:
    """Client: `signature` (base64) over the raw nonce of the last challenge."""

    signature: str


@dataclass(frozen=True, slots=True)
class AckId:
    """Client: delete envelope `id` from the authenticated mailbox."""

    id: str


@dataclass(frozen=True, slots=True)
class RegisterPush:
    """Client: bind an APNs token to the authenticated mailbox."""

    token: str


@dataclass(frozen=True, slots=True)
class UnregisterPush:
    """Client: forget an APNs token."""

    token: str


@dataclass(frozen=True, slots=True)
class ChallengeNonce:
    """Relay: sign this base64 nonce to read the subscribed mailbox."""

    nonce: str


@dataclass(frozen=True, slots=True)
class Published:
    """Relay: the publish is stored durably under `id`."""

    id: str


@dataclass(frozen=True, slots=True)
class OkDetail:
    """Relay: success."""

    detail: str


@dataclass(frozen=True, slots=True)
class AppEnvelope:
    """Relay: a stored envelope; `ts` is its deposit time in Unix seconds."""

    id: str
    ciphertext: str
    ts: int


@dataclass(frozen=True, slots=True)
class AppError:
    """Relay: failure; never carries an address or content."""

    message: str


AppClientFrame = Publish | Subscribe | AuthAnswer | AckId | RegisterPush | UnregisterPush
AppServerFrame = ChallengeNonce | Published | OkDetail | AppEnvelope | AppError

_CLIENT_TYPES: Final[dict[str, tuple[type[AppClientFrame], str]]] = {
    "publish": (Publish, ""),
    "subscribe": (Subscribe, "mailbox"),
    "auth": (AuthAnswer, "signature"),
    "ack": (AckId, "id"),
    "register_push": (RegisterPush, "token"),
    "unregister_push": (UnregisterPush, "token"),
}
_SERVER_TYPES: Final[dict[type, str]] = {
    ChallengeNonce: "challenge",
    Published: "published",
    OkDetail: "ok",
    AppEnvelope: "envelope",
    AppError: "error",
}
_HEX: Final = frozenset(string.hexdigits)


def decode_client_frame(text: str) -> AppClientFrame:
    """Parse one client text frame; raises AppFrameError.

    Accepted: a JSON object with a known `type` and its fields as strings; other keys are
    ignored (as serde does). Refused: duplicate keys, NaN/Infinity, lone surrogates, nesting
    deeper than Python can parse.
    """
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise AppFrameError(MALFORMED) from exc
    if not isinstance(value, dict):
        raise AppFrameError(MALFORMED)
    kind = _string(value, "type")
    if kind not in _CLIENT_TYPES:
        raise AppFrameError(MALFORMED)
    if kind == "publish":
        return Publish(_string(value, "recipient"), _string(value, "ciphertext"))
    frame_type, field = _CLIENT_TYPES[kind]
    return frame_type(_string(value, field))  # type: ignore[call-arg]


def decode_server_frame(text: str) -> AppServerFrame:
    """Parse one relay text frame (for clients and tests); raises AppFrameError."""
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise AppFrameError(MALFORMED) from exc
    if not isinstance(value, dict):
        raise AppFrameError(MALFORMED)
    kind = _string(value, "type")
    if kind == "challenge":
        return ChallengeNonce(_string(value, "nonce"))
    if kind == "published":
        return Published(_string(value, "id"))
    if kind == "ok":
        return OkDetail(_string(value, "detail"))
    if kind == "error":
        return AppError(_string(value, "message"))
    if kind == "envelope":
        ts = value.get("ts")
        if isinstance(ts, bool) or not isinstance(ts, int) or not 0 <= ts < 1 << 64:
            raise AppFrameError(MALFORMED)
        return AppEnvelope(_string(value, "id"), _string(value, "ciphertext"), ts)
    raise AppFrameError(MALFORMED)


def encode(frame: AppServerFrame | AppClientFrame) -> str:
    """The compact JSON text of `frame`: `type` first, then its fields in declared order."""
    fields: dict[str, Any] = {"type": _type_name(frame)}
    for name in frame.__dataclass_fields__:
        fields[name] = getattr(frame, name)
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def parse_key_hex(text: str) -> bytes | None:
    """The 32 bytes of a hex Ed25519 key (either case), or None (hex::decode to 32 bytes)."""
    if len(text) != 2 * KEY_LEN or not _HEX.issuperset(text):
        return None
    return bytes.fromhex(text)


def strict_b64decode(text: str) -> bytes | None:
    """Decode standard, padded, canonical base64 (what Swift and Rust's STANDARD write), or
    None: whitespace, URL-safe letters and non-zero trailing bits are refused."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return None
    return data if base64.b64encode(data).decode("ascii") == text else None


def b64encode(data: bytes) -> str:
    """Standard, padded base64 text."""
    return base64.b64encode(data).decode("ascii")


def app_mailbox(key: bytes) -> bytes:
    """The store's mailbox key for the app's mailbox `key`: namespaced apart from ours."""
    return APP_MAILBOX_PREFIX + key


def envelope_id_text(envelope_id: bytes) -> str:
    """An envelope's `id` on the app endpoint: its 16-byte id in lower-case hex."""
    return envelope_id.hex()


def parse_envelope_id(text: str) -> bytes | None:
    """The 16-byte envelope id an `ack` names, or None (no envelope has that id)."""
    if len(text) != 32 or not _HEX.issuperset(text):
        return None
    return bytes.fromhex(text)


def error_text(code: ErrorCode) -> str:
    """The `error.message` for one of our refusals."""
    return _TEXT_OF_CODE.get(code, code.name.lower().replace("_", " "))


def max_frame_bytes(max_ciphertext_bytes: int) -> int:
    """The largest text frame read: twice the largest publish, plus slack (larger: close 1009)."""
    chars = min(MAX_CIPHERTEXT_CHARS, 4 * ((max_ciphertext_bytes + 2) // 3))
    return 2 * chars + 1024


def _type_name(frame: AppServerFrame | AppClientFrame) -> str:
    if type(frame) in _SERVER_TYPES:
        return _SERVER_TYPES[type(frame)]
    for name, (frame_type, _) in _CLIENT_TYPES.items():
        if type(frame) is frame_type:
            return name
    raise TypeError(f"not an app relay frame: {frame!r}")


def _string(value: dict[str, Any], name: str) -> str:
    field = value.get(name)
    if not isinstance(field, str):
        raise AppFrameError(MALFORMED)
    try:
        field.encode("utf-8")  # a lone surrogate escape is not a string serde accepts
    except UnicodeEncodeError as exc:
        raise AppFrameError(MALFORMED) from exc
    return field


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise AppFrameError(MALFORMED)
    return result


def _no_constant(name: str) -> Any:
    raise AppFrameError(MALFORMED)
