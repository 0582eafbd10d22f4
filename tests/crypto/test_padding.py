"""Padding: ISO/IEC 7816-4 to 512-byte blocks; every other shape is refused."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.crypto.errors import MalformedInput
from pigeon.crypto.padding import BLOCK_LEN, pad, padded_len, unpad


@given(st.binary(max_size=3 * BLOCK_LEN))
def test_round_trip_to_whole_blocks(plaintext: bytes) -> None:
    padded = pad(plaintext)
    assert len(padded) % BLOCK_LEN == 0
    assert len(padded) == padded_len(len(plaintext))
    assert len(plaintext) < len(padded) <= len(plaintext) + BLOCK_LEN
    assert unpad(padded) == plaintext


@pytest.mark.parametrize(
    ("length", "padded"),
    [(0, 512), (1, 512), (511, 512), (512, 1024), (513, 1024), (1023, 1024), (1024, 1536)],
)
def test_block_boundaries(length: int, padded: int) -> None:
    assert len(pad(bytes(length))) == padded


def test_exact_bytes() -> None:
    assert pad(b"hi") == b"hi\x80" + bytes(509)
    assert pad(b"") == b"\x80" + bytes(511)


@pytest.mark.parametrize(
    "padded",
    [
        b"",
        bytes(510) + b"\x80",
        b"\x80" + bytes(512),
        bytes(BLOCK_LEN),
        bytes(BLOCK_LEN - 1) + b"\x01",
        bytes(BLOCK_LEN - 2) + b"\x81\x00",
        b"\x80" + bytes(2 * BLOCK_LEN - 1),  # padding longer than a block
        b"x" * BLOCK_LEN,
    ],
    ids=["empty", "511", "513", "zeros", "no-marker", "wrong-marker", "overlong", "no-padding"],
)
def test_malformed_padding_is_refused(padded: bytes) -> None:
    with pytest.raises(MalformedInput):
        unpad(padded)


@given(st.binary(max_size=2 * BLOCK_LEN + 3))
def test_unpad_accepts_only_what_pad_makes(data: bytes) -> None:
    try:
        plaintext = unpad(data)
    except MalformedInput:
        return
    assert pad(plaintext) == data


@given(st.binary(max_size=BLOCK_LEN - 1))
def test_a_corrupted_marker_is_refused(prefix: bytes) -> None:
    body = prefix + b"\x80" + bytes(BLOCK_LEN - len(prefix) - 1)
    assert unpad(body) == prefix
    corrupted = body[: len(prefix)] + b"\x7f" + body[len(prefix) + 1 :]
    with pytest.raises(MalformedInput):
        unpad(corrupted)
