"""The end-to-end envelope and inner message codecs: round trips and rejection of bad bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.crypto.ratchet import HEADER_LEN, TAG_LEN
from pigeon.crypto.session import MESSAGE1_LEN, MESSAGE3_LEN
from pigeon.messenger.envelope import (
    CHUNK_BYTES,
    MAX_FILE_BYTES,
    MAX_TEXT_BYTES,
    MESSAGE2_LEN,
    MIN_RATCHET_LEN,
    REPLY_TO_LEN,
    ChunkBody,
    Confirm,
    Hello,
    Inner,
    RatchetEnvelope,
    Reply,
    TagKeyBody,
    TextBody,
    chunk_count,
    decode_envelope,
    decode_inner,
    encode_envelope,
    encode_inner,
)
from pigeon.messenger.errors import MalformedEnvelope

ENVELOPE_HEAD_LEN = 2  # version, kind

ids = st.binary(min_size=16, max_size=16)
keys = st.binary(min_size=32, max_size=32)
envelopes = st.one_of(
    st.builds(
        Hello,
        ids,
        keys,
        st.binary(min_size=MESSAGE1_LEN, max_size=MESSAGE1_LEN),
        st.one_of(st.just(b""), st.binary(min_size=REPLY_TO_LEN, max_size=REPLY_TO_LEN)),
    ),
    st.builds(Reply, ids, st.binary(min_size=MESSAGE2_LEN, max_size=MESSAGE2_LEN)),
    st.builds(Confirm, ids, st.binary(min_size=MESSAGE3_LEN, max_size=MESSAGE3_LEN)),
    st.integers(1, 15).flatmap(
        lambda blocks: st.builds(
            RatchetEnvelope, st.binary(min_size=56 + 512 * blocks, max_size=56 + 512 * blocks)
        )
    ),
)


@st.composite
def chunks(draw: st.DrawFn) -> ChunkBody:
    size = draw(st.one_of(st.integers(1, 3 * CHUNK_BYTES), st.just(MAX_FILE_BYTES)))
    count = chunk_count(size)
    index = draw(st.integers(0, count - 1))
    length = CHUNK_BYTES if index < count - 1 else size - CHUNK_BYTES * (count - 1)
    name = draw(st.text(max_size=40).filter(lambda n: len(n.encode()) <= 255))
    return ChunkBody(
        draw(ids), size, count, index, name, draw(st.binary(min_size=length, max_size=length))
    )


bodies = st.one_of(
    st.builds(
        TextBody,
        ids,
        st.integers(0, 2**64 - 1),
        st.text(max_size=200).filter(lambda t: len(t.encode()) <= MAX_TEXT_BYTES),
    ),
    chunks(),
    st.builds(TagKeyBody, keys),
)


def _fields(value: object) -> tuple[object, ...]:
    return tuple(getattr(value, name) for name in value.__slots__)  # type: ignore[attr-defined]


@given(envelopes)
def test_envelope_round_trip(envelope: Hello | Reply | Confirm | RatchetEnvelope) -> None:
    decoded = decode_envelope(encode_envelope(envelope))
    assert type(decoded) is type(envelope)
    assert _fields(decoded) == _fields(envelope)


@given(st.binary(min_size=16, max_size=16), bodies)
def test_inner_round_trip(secret: bytes, body: TextBody | ChunkBody | TagKeyBody) -> None:
    decoded = decode_inner(encode_inner(Inner(secret, body)))
    assert decoded.receipt_secret == secret
    assert type(decoded.body) is type(body)
    assert _fields(decoded.body) == _fields(body)


@given(envelopes, st.data())
def test_truncated_or_extended_envelope_is_refused(
    envelope: Hello | Reply | Confirm | RatchetEnvelope, data: st.DataObject
) -> None:
    encoded = encode_envelope(envelope)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    if isinstance(envelope, Hello) and envelope.reply_to and cut == len(encoded) - REPLY_TO_LEN:
        # Without its optional reply-to hint a Hello is still whole.
        assert decode_envelope(encoded[:cut]) == Hello(
            envelope.handshake_id, envelope.reply_tag_key, envelope.noise
        )
        return
    body = encoded[ENVELOPE_HEAD_LEN:cut]
    whole_blocks = (len(body) - HEADER_LEN - TAG_LEN) % 512 == 0
    if isinstance(envelope, RatchetEnvelope) and len(body) >= MIN_RATCHET_LEN and whole_blocks:
        # Cut at a block boundary it still has the shape of a shorter message: only the
        # ratchet's authentication can refuse it, which it does (tests/crypto).
        assert decode_envelope(encoded[:cut]) == RatchetEnvelope(body)
        return
    with pytest.raises(MalformedEnvelope):
        decode_envelope(encoded[:cut])
    with pytest.raises(MalformedEnvelope):
        decode_envelope(encoded + b"\x00")


@given(st.binary(max_size=400))
def test_any_bytes_parse_or_raise_the_typed_error(data: bytes) -> None:
    for parse in (decode_envelope, decode_inner):
        with contextlib.suppress(MalformedEnvelope):
            parse(data)


@pytest.mark.parametrize(
    ("data", "fault"),
    [
        (b"", "shorter"),
        (b"\x02\x01" + bytes(80), "version"),
        (b"\x01\x09" + bytes(80), "kind"),
        (b"\x01\x04" + bytes(600), "blocks"),
    ],
)
def test_envelope_faults_are_named(data: bytes, fault: str) -> None:
    with pytest.raises(MalformedEnvelope, match=fault):
        decode_envelope(data)


def _chunk(**changes: object) -> bytes:
    base = {
        "file_id": bytes(16),
        "size": CHUNK_BYTES + 1,
        "chunk_count": 2,
        "index": 1,
        "name": "a",
        "data": b"x",
    }
    base.update(changes)
    return encode_inner(Inner(bytes(16), ChunkBody(**base)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"chunk_count": 3},
        {"index": 2},
        {"data": b"xy"},
        {"size": 0, "chunk_count": 1, "index": 0},
        {"size": MAX_FILE_BYTES + 1, "chunk_count": chunk_count(MAX_FILE_BYTES + 1)},
    ],
)
def test_inconsistent_chunks_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(MalformedEnvelope):
        decode_inner(_chunk(**changes))


def test_inner_faults() -> None:
    secret = bytes(16)
    with pytest.raises(MalformedEnvelope, match="unknown"):
        decode_inner(b"\x07" + secret)
    with pytest.raises(MalformedEnvelope, match="UTF-8"):
        decode_inner(b"\x01" + secret + bytes(24) + b"\xff")
    with pytest.raises(MalformedEnvelope, match="limit"):
        decode_inner(b"\x01" + secret + bytes(24) + b"a" * (MAX_TEXT_BYTES + 1))
    with pytest.raises(MalformedEnvelope):
        decode_inner(b"\x03" + secret + bytes(31))
    assert decode_inner(_chunk()).body == ChunkBody(bytes(16), CHUNK_BYTES + 1, 2, 1, "a", b"x")
    with pytest.raises(ValueError, match="length"):
        encode_envelope(Hello(bytes(16), bytes(31), bytes(MESSAGE1_LEN)))


def test_a_hello_without_reply_to_hint_still_parses() -> None:
    old = b"\x01\x01" + b"\x11" * 16 + b"\x22" * 32 + b"\x33" * MESSAGE1_LEN
    hello = decode_envelope(old)
    assert hello == Hello(b"\x11" * 16, b"\x22" * 32, b"\x33" * MESSAGE1_LEN, b"")
    assert encode_envelope(hello) == old
    hinted = decode_envelope(old + b"\x44" * REPLY_TO_LEN)
    assert isinstance(hinted, Hello)
    assert hinted.reply_to == b"\x44" * REPLY_TO_LEN
    assert encode_envelope(hinted) == old + b"\x44" * REPLY_TO_LEN


@pytest.mark.parametrize("extra", [1, 47, REPLY_TO_LEN - 1, REPLY_TO_LEN + 1, 2 * REPLY_TO_LEN])
def test_a_hello_with_a_partial_reply_to_hint_is_refused(extra: int) -> None:
    base = b"\x01\x01" + bytes(16 + 32 + MESSAGE1_LEN)
    with pytest.raises(MalformedEnvelope, match="HELLO"):
        decode_envelope(base + bytes(extra))
    with pytest.raises(ValueError, match="reply-to"):
        encode_envelope(Hello(bytes(16), bytes(32), bytes(MESSAGE1_LEN), bytes(extra)))
