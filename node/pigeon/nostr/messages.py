"""NIP-01's relay protocol messages: what a client sends (EVENT, REQ, CLOSE) and what a relay
answers (EVENT, OK, EOSE, NOTICE, CLOSED), each a JSON array over a WebSocket text frame.

`decode` refuses anything of the wrong shape with MalformedMessage and returns `Unknown` for
labels NIP-01 does not define for relays (AUTH, COUNT, ...), which a client may ignore.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from pigeon.nostr.errors import MalformedEvent, MalformedMessage
from pigeon.nostr.event import Event, from_json, loads

MAX_MESSAGE_BYTES: Final = 128 * 1024
MAX_SUBSCRIPTION_ID: Final = 64  # NIP-01: at most 64 characters


@dataclass(frozen=True, slots=True)
class RelayEvent:
    """An event matching subscription `subscription` (shape-checked only, not verified)."""

    subscription: str
    event: Event


@dataclass(frozen=True, slots=True)
class Ok:
    """The relay's verdict on an event we published."""

    event_id: str
    accepted: bool
    message: str


@dataclass(frozen=True, slots=True)
class Eose:
    """The stored events of `subscription` are all sent; live ones follow."""

    subscription: str


@dataclass(frozen=True, slots=True)
class Notice:
    """A human-readable message from the relay."""

    message: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The relay ended subscription `subscription`."""

    subscription: str
    message: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """A message label NIP-01 does not give relays."""

    label: str


RelayMessage = RelayEvent | Ok | Eose | Notice | Closed | Unknown


def encode_event(event: Event) -> str:
    """`["EVENT", event]`: publish."""
    return _dumps(["EVENT", event.to_json()])


def encode_req(subscription: str, *filters: dict[str, Any]) -> str:
    """`["REQ", subscription, filter...]`: subscribe; raises ValueError for a bad id."""
    _check_subscription(subscription)
    return _dumps(["REQ", subscription, *filters])


def encode_close(subscription: str) -> str:
    """`["CLOSE", subscription]`: unsubscribe."""
    _check_subscription(subscription)
    return _dumps(["CLOSE", subscription])


def _check_subscription(subscription: str) -> None:
    if not 0 < len(subscription) <= MAX_SUBSCRIPTION_ID:
        raise ValueError("a subscription id is 1 to 64 characters")


def _dumps(message: list[Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def decode(text: str | bytes) -> RelayMessage:
    """A relay's message; raises MalformedMessage (with the event's fault as its cause)."""
    if len(text) > MAX_MESSAGE_BYTES:
        raise MalformedMessage("a relay message is over the size cap")
    try:
        message = loads(text)
    except MalformedEvent as exc:
        raise MalformedMessage("a relay message is not JSON") from exc
    if not isinstance(message, list) or not message or not isinstance(message[0], str):
        raise MalformedMessage("a relay message is not a labelled JSON array")
    label, args = message[0], message[1:]
    if label == "EVENT" and _shape(args, str, dict):
        try:
            return RelayEvent(args[0], from_json(args[1]))
        except MalformedEvent as exc:
            raise MalformedMessage("a relay sent a malformed event") from exc
    if label == "OK" and (_shape(args, str, bool, str) or _shape(args, str, bool)):
        return Ok(args[0], args[1], args[2] if len(args) > 2 else "")
    if label == "EOSE" and _shape(args, str):
        return Eose(args[0])
    if label == "NOTICE" and _shape(args, str):
        return Notice(args[0])
    if label == "CLOSED" and (_shape(args, str, str) or _shape(args, str)):
        return Closed(args[0], args[1] if len(args) > 1 else "")
    if label in {"EVENT", "OK", "EOSE", "NOTICE", "CLOSED"}:
        raise MalformedMessage(f"a relay's {label} message has the wrong fields")
    return Unknown(label)


def _shape(args: list[Any], *types: type) -> bool:
    return len(args) == len(types) and all(type(a) is t for a, t in zip(args, types, strict=True))
