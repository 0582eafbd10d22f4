"""The Pigeon app's plaintexts inside Olm messages (its `SessionManager*.swift`).

Message envelope: JSON `{"id", "text", "replySnippet"?, "sentAt"?}` as Swift's default
JSONEncoder writes it: the id an uppercase UUID string, `sentAt` a number of seconds since
2001-01-01T00:00:00Z (Foundation's reference date), absent optionals left out, "/" escaped.
Ack envelope: the acknowledged message id as an uppercase UUID string, or the single byte
0x00 that confirms a new session. The first plaintext of a session is empty.
Control envelope: 0x01 v (ephemeral on if v = 1), 0x02 v (Bluetooth if v = 1, else relay),
0x03 || 36-character UUID || emoji UTF-8 (empty: the reaction is removed).
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Final

from pigeon.crypto.errors import MalformedInput

REFERENCE_DATE_UNIX_S: Final = 978_307_200  # 2001-01-01T00:00:00Z, Swift's Date(0)
ESTABLISHMENT_ACK: Final = b"\x00"
CONTROL_EPHEMERAL: Final = 0x01
CONTROL_TRANSPORT: Final = 0x02
CONTROL_REACTION: Final = 0x03
MAX_REPLY_SNIPPET: Final = 80  # the app clamps a received snippet (we count code points)
MAX_REACTION_CHARS: Final = 8
MAX_APP_MESSAGE_LEN: Final = 256 * 1024
_UUID_TEXT_LEN: Final = 36


@dataclass(frozen=True, slots=True)
class AppMessage:
    """One chat message: its id, text, optional reply preview and send time (Unix seconds)."""

    id: uuid.UUID
    text: str
    reply_snippet: str | None = None
    sent_at_unix_s: float | None = None


def _swift_number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError("a JSON number is finite")
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def _json_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False).replace("/", "\\/")


def encode_app_message(message: AppMessage) -> bytes:
    """The JSON bytes the app's encoder would write for `message`."""
    parts = [f'"id":"{str(message.id).upper()}"', f'"text":{_json_string(message.text)}']
    if message.reply_snippet is not None:
        parts.append(f'"replySnippet":{_json_string(message.reply_snippet)}')
    if message.sent_at_unix_s is not None:
        since_reference = message.sent_at_unix_s - REFERENCE_DATE_UNIX_S
        parts.append(f'"sentAt":{_swift_number(since_reference)}')
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def _no_constants(name: str) -> float:
    raise MalformedInput(f"JSON constant {name} is not a number")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise MalformedInput("an app message repeats a key")
    return result


def parse_uuid(text: str) -> uuid.UUID:
    """A UUID in the 8-4-4-4-12 hex form (either case), as Foundation's UUID(uuidString:)."""
    if len(text) != _UUID_TEXT_LEN or [len(p) for p in text.split("-")] != [8, 4, 4, 4, 12]:
        raise MalformedInput("not a UUID string")
    try:
        return uuid.UUID(text)
    except ValueError as exc:
        raise MalformedInput("not a UUID string") from exc


def decode_app_message(data: bytes, arrived_at_unix_s: float) -> AppMessage:
    """Parse a received app message, clamped as the app clamps it; raises MalformedInput.

    The snippet loses newlines and is cut to 80 characters; a send time after arrival becomes
    the arrival time. Unknown keys are ignored.
    """
    if len(data) > MAX_APP_MESSAGE_LEN:
        raise MalformedInput("an app message is too long")
    try:
        value = json.loads(
            data.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constants
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MalformedInput("an app message is not JSON") from exc
    if not isinstance(value, dict):
        raise MalformedInput("an app message is a JSON object")
    message_id, text = value.get("id"), value.get("text")
    snippet, sent_at = value.get("replySnippet"), value.get("sentAt")
    if not isinstance(message_id, str) or not isinstance(text, str):
        raise MalformedInput("an app message has a string id and text")
    if snippet is not None and not isinstance(snippet, str):
        raise MalformedInput("a reply snippet is a string")
    if sent_at is not None and (isinstance(sent_at, bool) or not isinstance(sent_at, int | float)):
        raise MalformedInput("a send time is a number")
    sent_unix = (
        None
        if sent_at is None
        else min(_finite(sent_at) + REFERENCE_DATE_UNIX_S, arrived_at_unix_s)
    )
    clamped = None if snippet is None else snippet.replace("\n", " ")[:MAX_REPLY_SNIPPET]
    return AppMessage(parse_uuid(message_id), text, clamped, sent_unix)


def _finite(value: float) -> float:
    try:
        number = float(value)
    except OverflowError as exc:
        raise MalformedInput("a send time is out of range") from exc
    if not math.isfinite(number):
        raise MalformedInput("a send time is out of range")
    return number


def encode_ack(message_id: uuid.UUID) -> bytes:
    """The ack plaintext of a received message: its id as an uppercase UUID string."""
    return str(message_id).upper().encode("ascii")


@dataclass(frozen=True, slots=True)
class Ack:
    """A decoded ack: the message it confirms, or None for the session-established ack."""

    message_id: uuid.UUID | None


def decode_ack(data: bytes) -> Ack:
    """Parse an ack plaintext; raises MalformedInput for anything else."""
    if data == ESTABLISHMENT_ACK:
        return Ack(None)
    try:
        return Ack(parse_uuid(data.decode("ascii")))
    except UnicodeDecodeError as exc:
        raise MalformedInput("an ack is a UUID string or 0x00") from exc


@dataclass(frozen=True, slots=True)
class EphemeralControl:
    """The peer turned the chat's ephemeral mode on or off."""

    on: bool


@dataclass(frozen=True, slots=True)
class TransportControl:
    """The peer chose Bluetooth (True) or the relay (False) for the chat."""

    bluetooth: bool


@dataclass(frozen=True, slots=True)
class ReactionControl:
    """A reaction to a message, or its removal (emoji None)."""

    message_id: uuid.UUID
    emoji: str | None


Control = EphemeralControl | TransportControl | ReactionControl


def encode_control(control: Control) -> bytes:
    """The control plaintext."""
    if isinstance(control, EphemeralControl):
        return bytes([CONTROL_EPHEMERAL, int(control.on)])
    if isinstance(control, TransportControl):
        return bytes([CONTROL_TRANSPORT, int(control.bluetooth)])
    emoji = (control.emoji or "").encode("utf-8")
    return bytes([CONTROL_REACTION]) + str(control.message_id).upper().encode("ascii") + emoji


def decode_control(data: bytes) -> Control | None:
    """Parse a control plaintext; None for a command we do not know (the app ignores those).

    Raises MalformedInput for an empty or malformed known command.
    """
    if not data:
        raise MalformedInput("a control plaintext is empty")
    command = data[0]
    if command in (CONTROL_EPHEMERAL, CONTROL_TRANSPORT):
        if len(data) != 2:
            raise MalformedInput("an ephemeral or transport command is two bytes")
        on = data[1] == 1
        return EphemeralControl(on) if command == CONTROL_EPHEMERAL else TransportControl(on)
    if command != CONTROL_REACTION:
        return None
    if len(data) < 1 + _UUID_TEXT_LEN:
        raise MalformedInput("a reaction is too short")
    try:
        message_id = parse_uuid(data[1 : 1 + _UUID_TEXT_LEN].decode("ascii"))
        emoji = data[1 + _UUID_TEXT_LEN :].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInput("a reaction is not text") from exc
    return ReactionControl(message_id, emoji[:MAX_REACTION_CHARS] or None)
