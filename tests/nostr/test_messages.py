"""NIP-01 relay messages: the client's encodings and the relay's answers, decoded by type."""

from __future__ import annotations

import contextlib
import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.nostr.errors import MalformedMessage
from pigeon.nostr.event import sign
from pigeon.nostr.messages import (
    Closed,
    Eose,
    Notice,
    Ok,
    RelayEvent,
    Unknown,
    decode,
    encode_close,
    encode_event,
    encode_req,
)

SECRET = b"\x07" * 32
EVENT = sign(SECRET, 1_800_000_000, 1401, (("x", "ab"),), "body", lambda n: random.randbytes(n))


def test_client_messages() -> None:
    assert json.loads(encode_event(EVENT)) == ["EVENT", EVENT.to_json()]
    assert json.loads(encode_req("s", {"kinds": [1401]}, {"#x": ["ab"]})) == [
        "REQ", "s", {"kinds": [1401]}, {"#x": ["ab"]},
    ]  # fmt: skip
    assert encode_close("s") == '["CLOSE","s"]'
    with pytest.raises(ValueError):
        encode_req("")
    with pytest.raises(ValueError):
        encode_close("s" * 65)


def test_relay_messages() -> None:
    assert decode(json.dumps(["EVENT", "s", EVENT.to_json()])) == RelayEvent("s", EVENT)
    assert decode(json.dumps(["OK", EVENT.id, True, ""])) == Ok(EVENT.id, True, "")
    assert decode(json.dumps(["OK", EVENT.id, False, "blocked: no"])) == Ok(
        EVENT.id, False, "blocked: no"
    )
    assert decode('["EOSE","s"]') == Eose("s")
    assert decode('["NOTICE","hi"]') == Notice("hi")
    assert decode('["CLOSED","s","error: x"]') == Closed("s", "error: x")
    assert decode('["AUTH","challenge"]') == Unknown("AUTH")


@pytest.mark.parametrize(
    "text",
    [
        "", "{}", "[]", "[1]", '["OK"]', '["OK","id","yes",""]', '["EOSE",1]',
        '["EVENT","s",{}]', '["EVENT","s"]', '["NOTICE"]', "[", '["CLOSED"]',
    ],
)  # fmt: skip
def test_malformed_relay_messages(text: str) -> None:
    with pytest.raises(MalformedMessage):
        decode(text)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.lists(c)))
def test_any_json_decodes_or_is_malformed(value: object) -> None:
    with contextlib.suppress(MalformedMessage):
        decode(json.dumps(value))
