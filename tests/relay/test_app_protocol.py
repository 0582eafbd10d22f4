"""The app relay codec (sans-IO): frames, the compact serde layout, and the field checks."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.relay import app_protocol as app

TEXT = st.text(max_size=80)
CLIENT_FRAMES = st.one_of(
    st.builds(app.Publish, TEXT, TEXT),
    st.builds(app.Subscribe, TEXT),
    st.builds(app.AuthAnswer, TEXT),
    st.builds(app.AckId, TEXT),
    st.builds(app.RegisterPush, TEXT),
    st.builds(app.UnregisterPush, TEXT),
)
SERVER_FRAMES = st.one_of(
    st.builds(app.ChallengeNonce, TEXT),
    st.builds(app.Published, TEXT),
    st.builds(app.OkDetail, TEXT),
    st.builds(app.AppEnvelope, TEXT, TEXT, st.integers(0, 2**64 - 1)),
    st.builds(app.AppError, TEXT),
)


def utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@given(CLIENT_FRAMES)
def test_client_frames_round_trip(frame: app.AppClientFrame) -> None:
    fields = [getattr(frame, name) for name in frame.__dataclass_fields__]
    if all(utf8(f) for f in fields):
        assert app.decode_client_frame(app.encode(frame)) == frame
    else:  # a lone surrogate is no string serde accepts
        with pytest.raises(app.AppFrameError):
            app.decode_client_frame(app.encode(frame))


@given(SERVER_FRAMES)
def test_server_frames_round_trip(frame: app.AppServerFrame) -> None:
    fields = [getattr(frame, name) for name in frame.__dataclass_fields__]
    if all(utf8(f) for f in fields if isinstance(f, str)):
        assert app.decode_server_frame(app.encode(frame)) == frame


def test_relay_frames_are_written_as_serde_writes_them() -> None:
    # protocol.rs:38-40: internally tagged, `type` first, snake_case, compact.
    frame = app.AppEnvelope("00ff", "Y2lwaGVy", 17)
    assert app.encode(frame) == '{"type":"envelope","id":"00ff","ciphertext":"Y2lwaGVy","ts":17}'
    assert app.encode(app.OkDetail("authenticated")) == '{"type":"ok","detail":"authenticated"}'
    assert app.encode(app.UnregisterPush("aa")) == '{"type":"unregister_push","token":"aa"}'


@given(st.binary(max_size=300))
def test_strict_base64_takes_what_swift_and_rust_write(data: bytes) -> None:
    text = base64.b64encode(data).decode()
    assert app.strict_b64decode(text) == data
    assert app.strict_b64decode(text + "\n") is None
    assert app.strict_b64decode(base64.urlsafe_b64encode(data).decode()) in (data, None)


def test_strict_base64_refuses_non_canonical_forms() -> None:
    assert app.strict_b64decode("YQ==") == b"a"
    for bad in ("YR==", "YQ", "YQ=", "Y Q==", "YQ==YQ==", "é"):
        assert app.strict_b64decode(bad) is None


@given(st.binary(min_size=32, max_size=32), st.booleans())
def test_keys_are_hex_of_either_case(key: bytes, upper: bool) -> None:
    text = key.hex().upper() if upper else key.hex()
    assert app.parse_key_hex(text) == key
    assert app.parse_key_hex(text[:-2]) is None
    assert app.parse_key_hex(" " + text[1:]) is None


def test_json_that_serde_refuses_is_malformed() -> None:
    for text in ('{"type":"ack","id":"a","id":"b"}', '{"type":"ack","id":1}', "[1]", "{"):
        with pytest.raises(app.AppFrameError):
            app.decode_client_frame(text)
    extra = json.dumps({"type": "ack", "id": "a", "more": [1, {"x": None}]})
    assert app.decode_client_frame(extra) == app.AckId("a")


def test_the_frame_limit_covers_the_largest_publish() -> None:
    largest = json.dumps({"type": "publish", "recipient": "ab" * 32, "ciphertext": "A" * 87_384})
    assert len(largest) < app.max_frame_bytes(65_536)
    assert app.max_frame_bytes(10**9) == 2 * app.MAX_CIPHERTEXT_CHARS + 1024
