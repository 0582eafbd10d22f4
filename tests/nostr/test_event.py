"""NIP-01 events: published events verify, tampering fails, shapes are refused by type."""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.nostr.errors import BadEventId, BadEventSignature, MalformedEvent, RemoteError
from pigeon.nostr.event import Event, event_id, parse_json, serialise, sign, verify

VECTORS = Path(__file__).parent / "vectors"
PUBLISHED = [
    "bitchat-LegacyPrivateEnvelope733098bb.json",
    "bitchat-AndroidLegacyPrivateEnvelopeB7f0b33d.json",
    "nostr-note-unicode.json",
]
SECRET = bytes.fromhex("b7e151628aed2a6abf7158809cf4f3c762e7160f38b4da56a784d9045190cfef")


def random_bytes(n: int) -> bytes:
    return random.Random(n).randbytes(n)


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_events_verify(name: str) -> None:
    event = parse_json((VECTORS / name).read_bytes())
    verify(event)
    assert event_id(event.pubkey, event.created_at, event.kind, event.tags, event.content) == (
        event.id
    )


def test_serialisation_is_nip01s() -> None:
    text = serialise("ab" * 32, 1, 20000, (("g", "u4pruy"),), 'say "hi"/\n\u00e9')
    assert (
        text
        == ('[0,"' + "ab" * 32 + '",1,20000,[["g","u4pruy"]],"say \\"hi\\"/\\n\u00e9"]').encode()
    )


@pytest.mark.parametrize("name", PUBLISHED)
@pytest.mark.parametrize("field", ["content", "created_at", "tags", "kind"])
def test_a_changed_field_breaks_the_id(name: str, field: str) -> None:
    obj = json.loads((VECTORS / name).read_bytes())
    obj[field] = {"content": "x", "created_at": 1, "tags": [], "kind": 2}[field]
    with pytest.raises(BadEventId):
        verify(parse_json(json.dumps(obj)))


@pytest.mark.parametrize("name", PUBLISHED)
def test_another_signature_fails(name: str) -> None:
    obj = json.loads((VECTORS / name).read_bytes())
    obj["sig"] = obj["sig"][:-2] + ("00" if obj["sig"][-2:] != "00" else "01")
    with pytest.raises(BadEventSignature):
        verify(parse_json(json.dumps(obj)))


def _valid() -> dict[str, object]:
    return sign(SECRET, 1_800_000_000, 1, (("t", "x"),), "hello", random_bytes).to_json()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "AB" * 32),  # upper case
        ("id", "ab" * 31),
        ("pubkey", 7),
        ("sig", "ab" * 63),
        ("created_at", 1.5),
        ("created_at", True),
        ("created_at", -1),
        ("kind", 65_536),
        ("tags", [["e", 3]]),
        ("tags", "e"),
        ("tags", [["x"] * 17]),
        ("tags", [["x"]] * 65),
        ("tags", [["x", "a" * 1025]]),
        ("content", None),
        ("content", "\ud800"),  # a lone surrogate has no UTF-8
    ],
)
def test_malformed_shapes_are_refused(field: str, value: object) -> None:
    obj = _valid()
    obj[field] = value
    with pytest.raises(MalformedEvent):
        parse_json(json.dumps(obj))


@pytest.mark.parametrize(
    "text", [b"", b"[]", b"{", b"\xff", b'{"kind": NaN}', b"[" * 100_000, b"{}" + b" " * 70_000]
)
def test_non_events_are_malformed(text: bytes) -> None:
    with pytest.raises(MalformedEvent):
        parse_json(text)


@given(
    created_at=st.integers(0, 2**32 - 1),
    kind=st.integers(0, 65_535),
    tags=st.lists(st.lists(st.text(max_size=20), min_size=1, max_size=4), max_size=5),
    content=st.text(max_size=200),
)
def test_signed_events_round_trip_and_verify(
    created_at: int, kind: int, tags: list[list[str]], content: str
) -> None:
    try:
        event = sign(SECRET, created_at, kind, tuple(map(tuple, tags)), content, random_bytes)
    except MalformedEvent:
        return  # hypothesis's text may hold lone surrogates: no UTF-8, no event
    again = parse_json(json.dumps(event.to_json(), ensure_ascii=False).encode())
    assert again == event
    verify(again)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_typed_errors(data: bytes) -> None:
    with contextlib.suppress(RemoteError):
        verify(parse_json(data))


def test_tag_values() -> None:
    event = Event("0" * 64, "0" * 64, 0, 0, (("g", "u4"), ("g",), ("x", "1"), ("g", "v")), "", "")
    assert event.tag_values("g") == ["u4", "v"]
