"""The end-to-end envelope and inner message codecs: round trips and rejection of bad bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.crypto.padding import pad
from pigeon.messenger.envelope import (
    CHUNK_BYTES,
    MAX_FILE_BYTES,
    MAX_TEXT_BYTES,
    ChunkBody,
    Inner,
    MessageEnvelope,
    OpenedBody,
    PrekeyAnswer,
    PrekeyEnvelope,
    PrekeyRequest,
    ShortPrekeyEnvelope,
    TextBody,
    ad_digest,
    chunk_count,
    decode_envelope,
    decode_inner,
    encode_envelope,
    encode_inner,
)
from pigeon.messenger.errors import MalformedEnvelope

ENVELOPE_HEAD_LEN = 2  # version, kind
AD = b"associated data"

ids = st.binary(min_size=16, max_size=16)
keys = st.binary(min_size=32, max_size=32)
blobs = st.binary(min_size=1, max_size=600)
olm_messages = st.binary(max_size=600).map(lambda rest: b"\x03" + rest)
envelopes = st.one_of(
    st.builds(PrekeyEnvelope, blobs),
    st.builds(ShortPrekeyEnvelope, keys, st.binary(min_size=8, max_size=8), keys, olm_messages),
    st.builds(MessageEnvelope, blobs),
    st.builds(PrekeyAnswer, blobs),
    st.builds(PrekeyRequest, keys, st.integers(0, 2**64 - 1), st.binary(min_size=64, max_size=64)),
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
    st.just(OpenedBody()),
)


def _fields(value: object) -> tuple[object, ...]:
    return tuple(getattr(value, name) for name in value.__slots__)  # type: ignore[attr-defined]


Env = PrekeyEnvelope | ShortPrekeyEnvelope | MessageEnvelope | PrekeyRequest | PrekeyAnswer


@given(envelopes)
def test_envelope_round_trip(envelope: Env) -> None:
    decoded = decode_envelope(encode_envelope(envelope))
    assert type(decoded) is type(envelope)
    assert _fields(decoded) == _fields(envelope)


@given(ids, keys, bodies)
def test_inner_round_trip(secret: bytes, tag_key: bytes, body: TextBody | ChunkBody) -> None:
    padded = encode_inner(Inner(secret, tag_key, body), AD)
    assert len(padded) % 512 == 0
    decoded = decode_inner(padded, AD)
    assert (decoded.receipt_secret, decoded.tag_key) == (secret, tag_key)
    assert type(decoded.body) is type(body)
    assert _fields(decoded.body) == _fields(body)


@given(ids, keys, bodies)
def test_inner_written_for_another_header_is_refused(
    secret: bytes, tag_key: bytes, body: TextBody | ChunkBody
) -> None:
    padded = encode_inner(Inner(secret, tag_key, body), AD)
    with pytest.raises(MalformedEnvelope, match="header"):
        decode_inner(padded, AD + b"!")


@given(st.binary(max_size=100), st.integers(1, 64))
def test_a_prekey_request_of_the_wrong_length_is_refused(extra: bytes, cut: int) -> None:
    request = encode_envelope(PrekeyRequest(bytes(32), 1, bytes(64)))
    with pytest.raises(MalformedEnvelope, match="PREKEY_REQUEST"):
        decode_envelope(request[:-cut])
    if extra:
        with pytest.raises(MalformedEnvelope, match="PREKEY_REQUEST"):
            decode_envelope(request + extra)


@given(st.binary(max_size=1200))
def test_any_bytes_parse_or_raise_the_typed_error(data: bytes) -> None:
    with contextlib.suppress(MalformedEnvelope):
        decode_envelope(data)
    with contextlib.suppress(MalformedEnvelope):
        decode_inner(data, AD)


@pytest.mark.parametrize(
    ("data", "fault"),
    [
        (b"", "shorter"),
        (b"\x01\x01" + bytes(80), "version"),  # a Noise-era envelope
        (b"\x02\x09" + bytes(80), "kind"),
        (b"\x02\x02", "empty"),
        (b"\x03\x02" + bytes(80), "not of version 3"),  # version 3 is kind 5 only
        (b"\x02\x05" + bytes(72) + b"\x03", "not of version 2"),
        (b"\x03\x05" + bytes(72), "lacks its Olm message"),
        (b"\x03\x05" + bytes(72) + b"\x04", "lacks its Olm message"),
        (b"\x03\x05" + bytes(40), "lacks its Olm message"),
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
    return encode_inner(Inner(bytes(16), bytes(32), ChunkBody(**base)), AD)  # type: ignore[arg-type]


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
        decode_inner(_chunk(**changes), AD)


def test_inner_faults() -> None:
    head = bytes(16) + bytes(32) + ad_digest(AD)
    with pytest.raises(MalformedEnvelope, match="unknown"):
        decode_inner(pad(b"\x07" + head), AD)
    with pytest.raises(MalformedEnvelope, match="UTF-8"):
        decode_inner(pad(b"\x01" + head + bytes(24) + b"\xff"), AD)
    with pytest.raises(MalformedEnvelope, match="limit"):
        decode_inner(pad(b"\x01" + head + bytes(24) + b"a" * (MAX_TEXT_BYTES + 1)), AD)
    with pytest.raises(MalformedEnvelope, match="body"):
        decode_inner(pad(b"\x03" + head + b"x"), AD)
    with pytest.raises(MalformedEnvelope, match="padding"):
        decode_inner(b"\x03" + head, AD)
    with pytest.raises(MalformedEnvelope, match="shorter"):
        decode_inner(pad(b"\x03" + head[:-1]), AD)
    decoded = decode_inner(_chunk(), AD).body
    assert decoded == ChunkBody(bytes(16), CHUNK_BYTES + 1, 2, 1, "a", b"x")
