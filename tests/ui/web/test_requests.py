"""Parsers of browser input: typed errors only, limits enforced; and the QR round trip."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import segno
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from pigeon.ui.web.errors import BadRequest, QrNotFound
from pigeon.ui.web.qr import card_svg, decode_photo
from pigeon.ui.web.requests import (
    MAX_JSON_BYTES,
    parse_form,
    parse_json_object,
    parse_minutes,
    require_str,
)

CARD = "PIGEON:" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" * 9


def test_json_object_and_fields() -> None:
    document = parse_json_object(b'{"text": "hi", "n": 1}')
    assert require_str(document, "text", max_len=2) == "hi"
    with pytest.raises(BadRequest):
        require_str(document, "text", max_len=1)
    with pytest.raises(BadRequest):
        require_str(document, "n", max_len=10)
    with pytest.raises(BadRequest):
        parse_json_object(json.dumps({"text": "x" * MAX_JSON_BYTES}).encode())
    with pytest.raises(BadRequest):
        parse_json_object(b"[" * 5000 + b"]" * 5000)


def test_form_takes_first_value_and_refuses_bad_encoding() -> None:
    assert parse_form(b"code=123456&code=654321&x=") == {"code": "123456", "x": ""}
    assert parse_form(b"name=B%C3%B6b") == {"name": "B\u00f6b"}
    with pytest.raises(BadRequest):
        parse_form(b"name=%FF")
    with pytest.raises(BadRequest):
        parse_form("name=\u00e9".encode())
    with pytest.raises(BadRequest):
        parse_form(b"&".join(b"a%d=1" % i for i in range(40)))


def test_json_with_a_lone_surrogate_is_refused() -> None:
    assert parse_json_object(b'{"t": "\\ud83d\\ude00"}') == {"t": "\U0001f600"}  # a pair
    for body in (
        b'{"text": "a\\ud800b"}',
        b'{"\\udc00": "key"}',
        b'{"deep": [1, {"x": ["\\udbff"]}]}',
    ):
        with pytest.raises(BadRequest, match="not valid Unicode"):
            parse_json_object(body)


# st.text() leaves surrogates out of any alphabet; a list of characters keeps them.
@given(st.lists(st.one_of(st.characters(), st.characters(categories=["Cs"]))).map("".join))
def test_json_text_comes_back_whole_or_is_a_bad_request(text: str) -> None:
    body = json.dumps({"text": text}).encode()  # ASCII-escaped, so surrogates survive to parsing
    try:
        document = parse_json_object(body)
    except BadRequest:
        assert any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)
    else:
        assert document == {"text": text}
        text.encode("utf-8")


@pytest.mark.parametrize(("text", "minutes"), [("5", 5), (" 15 ", 15), ("1440", 1440), ("2.4", 2)])
def test_minutes(text: str, minutes: int) -> None:
    assert parse_minutes(text) == minutes


@pytest.mark.parametrize("text", ["", "0", "0.5", "1441", "nan", "inf", "-3", "1e3x", "9" * 20])
def test_bad_minutes(text: str) -> None:
    with pytest.raises(BadRequest):
        parse_minutes(text)


@given(st.binary(max_size=2000))
def test_parsers_raise_only_bad_request(body: bytes) -> None:
    for parse in (parse_json_object, parse_form):
        with contextlib.suppress(BadRequest):
            parse(body)


def _photo(fmt: str, *, angle: float = 0) -> bytes:
    buffer = io.BytesIO()
    segno.make(CARD, error="m").save(buffer, kind="png", scale=4, border=5)
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    image = image.rotate(angle, expand=True, fillcolor=(180, 170, 160)).resize((1400, 1300))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize(("fmt", "angle"), [("JPEG", 0), ("JPEG", 12), ("PNG", 90), ("WEBP", 3)])
def test_photo_of_a_card_decodes(fmt: str, angle: float) -> None:
    assert decode_photo(_photo(fmt, angle=angle)) == CARD


def test_pictures_without_a_code_and_non_pictures_are_typed_errors() -> None:
    blank = io.BytesIO()
    Image.new("RGB", (300, 200), (255, 255, 255)).save(blank, "PNG")
    for data in (blank.getvalue(), b"", b"GIF89a\x00", b"%PDF-1.4 nope"):
        with pytest.raises(QrNotFound):
            decode_photo(data)


def test_decompression_bombs_are_refused() -> None:
    huge = io.BytesIO()
    Image.new("1", (12_000, 6_000), 0).save(huge, "PNG")
    with pytest.raises(QrNotFound):
        decode_photo(huge.getvalue())


def test_card_svg_scales_and_reads_back() -> None:
    svg = card_svg(CARD)
    assert svg.startswith("<svg")
    assert "viewBox" in svg
    assert "width=" not in svg.split(">")[0]
    assert "style" not in svg
