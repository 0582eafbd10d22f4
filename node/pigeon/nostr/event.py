"""NIP-01 events: the id's serialisation, parsing with shape checks, verification, signing.

The id is SHA-256 of the UTF-8 JSON array `[0, pubkey, created_at, kind, tags, content]` with no
whitespace and no escapes beyond JSON's own (as JavaScript's `JSON.stringify` and bitchat's
`JSONSerialization` with unescaped slashes write it). A parsed event is only shape-checked;
`verify` checks its id and BIP-340 signature. Limits follow bitchat's inbound tag bounds
(TransportConfig.swift: 64 tags, 16 values each, 1 KiB per value).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from pigeon.nostr import schnorr
from pigeon.nostr.errors import BadEventId, BadEventSignature, MalformedEvent

MAX_EVENT_JSON_BYTES: Final = 64 * 1024
MAX_TAGS: Final = 64
MAX_TAG_VALUES: Final = 16
MAX_TAG_VALUE_BYTES: Final = 1024
MAX_KIND: Final = 65_535
MAX_CREATED_AT: Final = 2**32 - 1
_HEX32: Final = re.compile(r"[0-9a-f]{64}")
_HEX64: Final = re.compile(r"[0-9a-f]{128}")

Tags = tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Event:
    """A NIP-01 event as received or signed: hex strings as on the wire."""

    id: str
    pubkey: str
    created_at: int
    kind: int
    tags: Tags
    content: str = field(repr=False)
    sig: str = field(repr=False)

    def tag_values(self, name: str) -> list[str]:
        """The first value of every tag called `name`."""
        return [t[1] for t in self.tags if len(t) >= 2 and t[0] == name]

    def to_json(self) -> dict[str, Any]:
        """The event as NIP-01's JSON object."""
        return {
            "id": self.id, "pubkey": self.pubkey, "created_at": self.created_at,
            "kind": self.kind, "tags": [list(t) for t in self.tags], "content": self.content,
            "sig": self.sig,
        }  # fmt: skip


def serialise(pubkey: str, created_at: int, kind: int, tags: Tags, content: str) -> bytes:
    """NIP-01's serialisation, the bytes the event id hashes."""
    body = [0, pubkey, created_at, kind, [list(t) for t in tags], content]
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError as exc:  # a lone surrogate: no UTF-8 for it
        raise MalformedEvent("an event string is not valid Unicode") from exc


def event_id(pubkey: str, created_at: int, kind: int, tags: Tags, content: str) -> str:
    """The hex id of an event with these fields."""
    return hashlib.sha256(serialise(pubkey, created_at, kind, tags, content)).hexdigest()


def parse_json(data: bytes | str, max_bytes: int = MAX_EVENT_JSON_BYTES) -> Event:
    """An event from its JSON text; raises MalformedEvent."""
    if len(data) > max_bytes:
        raise MalformedEvent("an event's JSON is over the size cap")
    return from_json(loads(data))


def loads(data: bytes | str) -> object:
    """Strict JSON: no NaN or Infinity, no nesting deep enough to exhaust the stack."""
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise MalformedEvent("not JSON") from exc


def _refuse_constant(name: str) -> object:
    raise ValueError("NaN and Infinity are not JSON")


def from_json(obj: object) -> Event:
    """An event from a decoded JSON value; raises MalformedEvent (shape only: see `verify`)."""
    if not isinstance(obj, dict):
        raise MalformedEvent("an event is not a JSON object")
    event = Event(
        _hex(obj, "id", _HEX32),
        _hex(obj, "pubkey", _HEX32),
        _int(obj, "created_at", MAX_CREATED_AT),
        _int(obj, "kind", MAX_KIND),
        _tags(obj.get("tags")),
        _str(obj.get("content"), "content"),
        _hex(obj, "sig", _HEX64),
    )
    serialise(event.pubkey, event.created_at, event.kind, event.tags, event.content)
    return event


def _hex(obj: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise MalformedEvent(f"an event's {name} is not lowercase hex of its size")
    return value


def _int(obj: dict[str, Any], name: str, top: int) -> int:
    value = obj.get(name)
    if type(value) is not int or not 0 <= value <= top:
        raise MalformedEvent(f"an event's {name} is not an integer in range")
    return value


def _str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise MalformedEvent(f"an event's {name} is not a string")
    return value


def _tags(value: object) -> Tags:
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise MalformedEvent("an event's tags are not a list of at most 64")
    tags: list[tuple[str, ...]] = []
    for tag in value:
        if not isinstance(tag, list) or len(tag) > MAX_TAG_VALUES:
            raise MalformedEvent("an event tag is not a list of at most 16 values")
        values = tuple(_str(v, "tag value") for v in tag)
        if any(len(v.encode("utf-8", "surrogatepass")) > MAX_TAG_VALUE_BYTES for v in values):
            raise MalformedEvent("an event tag value is over 1 KiB")
        tags.append(values)
    return tuple(tags)


def verify(event: Event) -> None:
    """Check the event's id and signature; raises BadEventId or BadEventSignature."""
    expected = event_id(event.pubkey, event.created_at, event.kind, event.tags, event.content)
    if expected != event.id:
        raise BadEventId("an event's id is not the hash of its fields")
    if not schnorr.verify(
        bytes.fromhex(event.pubkey), bytes.fromhex(event.id), bytes.fromhex(event.sig)
    ):
        raise BadEventSignature("an event's signature does not verify")


def sign(
    secret: bytes,
    created_at: int,
    kind: int,
    tags: Tags,
    content: str,
    random_bytes: Callable[[int], bytes],
) -> Event:
    """A new event signed by `secret` (BIP-340 aux randomness from `random_bytes`); raises
    LocalError for a bad secret and MalformedEvent for strings with no UTF-8."""
    pubkey = schnorr.public_key(secret).hex()
    ident = event_id(pubkey, created_at, kind, tags, content)
    sig = schnorr.sign(secret, bytes.fromhex(ident), random_bytes(32))
    return Event(ident, pubkey, created_at, kind, tags, content, sig.hex())
