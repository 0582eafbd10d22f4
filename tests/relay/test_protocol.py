"""The relay frame codec: round trips, canonical form, and typed errors for every bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.relay.protocol import (
    MAX_ACK_IDS,
    READ_PURPOSE,
    Ack,
    Acked,
    Auth,
    AuthOk,
    BacklogSent,
    Challenge,
    Deposit,
    Envelope,
    Error,
    ErrorCode,
    FrameError,
    MalformedFrame,
    Stored,
    UnknownFrameType,
    UnsupportedVersion,
    decode_client_frame,
    decode_server_frame,
    encode,
    envelope_id_of,
    is_fatal,
    max_frame_bytes,
    read_signed_message,
)

request_ids = st.integers(1, 2**32 - 1)
ids = st.binary(min_size=16, max_size=16)
keys = st.binary(min_size=32, max_size=32)
payloads = st.binary(min_size=1, max_size=2048)
u32s = st.integers(0, 2**32 - 1)

client_frames = st.one_of(
    st.builds(Deposit, request_ids, keys, payloads),
    st.builds(Auth, keys, st.integers(0, 2**64 - 1), st.binary(min_size=64, max_size=64)),
    st.builds(Ack, request_ids, st.lists(ids, min_size=1, max_size=MAX_ACK_IDS).map(tuple)),
)
server_frames = st.one_of(
    st.builds(Challenge, st.binary(min_size=32, max_size=32)),
    st.builds(Stored, request_ids),
    st.just(AuthOk()),
    st.just(BacklogSent()),
    st.builds(Envelope, ids, payloads),
    st.builds(Acked, request_ids),
    st.builds(
        Error, st.integers(0, 2**32 - 1), st.sampled_from(ErrorCode), st.integers(0, 2**32 - 1)
    ),
)


@given(client_frames)
def test_client_frames_round_trip(frame: Deposit | Auth | Ack) -> None:
    assert decode_client_frame(encode(frame)) == frame


@given(server_frames)
def test_server_frames_round_trip(frame: object) -> None:
    assert decode_server_frame(encode(frame)) == frame  # type: ignore[arg-type]


@given(st.binary(max_size=600))
def test_any_bytes_decode_or_raise_typed_and_decoded_frames_are_canonical(data: bytes) -> None:
    for decode in (decode_client_frame, decode_server_frame):
        try:
            frame = decode(data)
        except FrameError:
            continue
        assert encode(frame) == data


def test_deposit_layout_is_as_documented() -> None:
    frame = Deposit(0x01020304, b"K" * 32, b"ct")
    assert encode(frame) == b"\x02\x01\x01\x02\x03\x04" + b"K" * 32 + b"ct"


def test_an_envelope_is_named_by_a_hash_of_its_ciphertext() -> None:
    # The first 16 bytes of SHA-256(b"ct").
    assert envelope_id_of(b"ct") == bytes.fromhex("f8dcb34308e5c69f46a33cafa62bd922")


def test_error_layout_is_as_documented() -> None:
    data = encode(Error(5, ErrorCode.RATE_LIMITED, 1500))
    assert data == b"\x02\x86" + b"\x00\x00\x00\x05" + b"\x00\x1e" + b"\x00\x00\x05\xdc"


def test_backlog_sent_layout() -> None:
    assert encode(BacklogSent()) == b"\x02\x87"


def test_signed_message_layout() -> None:
    message = read_signed_message(b"C" * 32, "ws://r/v1", 258, b"K" * 32)
    assert message == (
        b"Pigeon.RelayRead.v2"
        + b"C" * 32
        + b"\x00\x09ws://r/v1"
        + (258).to_bytes(8, "big")
        + b"K" * 32
    )
    assert message.startswith(READ_PURPOSE)  # no relay-chosen byte comes first


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", MalformedFrame),
        (b"\x02", MalformedFrame),
        (b"\x00\x01", UnsupportedVersion),
        (b"\x01\x01" + bytes(4) + b"\x00\x00\x00\x01" + bytes(49), UnsupportedVersion),  # v1
        (b"\x03\x01", UnsupportedVersion),
        (b"\x02\x00", UnknownFrameType),
        (b"\x02\x81" + bytes(32), UnknownFrameType),  # a relay frame sent by a client
        (b"\x02\x01" + b"\x00\x00\x00\x01" + bytes(32), MalformedFrame),  # no ciphertext
        (b"\x02\x01" + bytes(4) + bytes(33), MalformedFrame),  # request id 0
        (b"\x02\x02" + bytes(103), MalformedFrame),
        (b"\x02\x03\x00\x00\x00\x01", MalformedFrame),  # no ids
        (b"\x02\x03\x00\x00\x00\x01" + bytes(17), MalformedFrame),
        (b"\x02\x03\x00\x00\x00\x01" + bytes(16 * 257), MalformedFrame),
    ],
)
def test_bad_client_frames(data: bytes, error: type[FrameError]) -> None:
    with pytest.raises(error):
        decode_client_frame(data)


@pytest.mark.parametrize(
    "data",
    [
        b"\x02\x81" + bytes(31),
        b"\x02\x82\x00\x00\x00\x00",  # request id 0
        b"\x02\x83\x00",
        b"\x02\x87\x00",  # BACKLOG_SENT has no body
        b"\x02\x84" + bytes(16),
        b"\x02\x86" + bytes(9),
        b"\x02\x86" + bytes(4) + b"\x03\xe7" + bytes(4),  # unknown code 999
        b"\x02\x01" + bytes(60),
        b"\x01\x81" + bytes(32),  # a version 1 CHALLENGE
    ],
)
def test_bad_server_frames(data: bytes) -> None:
    with pytest.raises(FrameError):
        decode_server_frame(data)


@pytest.mark.parametrize(
    "frame",
    [
        Deposit(0, bytes(32), b"x"),
        Deposit(1, bytes(31), b"x"),
        Deposit(1, bytes(32), b""),
        Auth(bytes(32), -1, bytes(64)),
        Auth(bytes(32), 0, bytes(63)),
        Ack(1, ()),
        Ack(1, (bytes(15),)),
        Challenge(bytes(31)),
        Error(2**32, ErrorCode.BAD_KEY),
    ],
)
def test_encode_refuses_out_of_range_fields(frame: object) -> None:
    with pytest.raises(MalformedFrame):
        encode(frame)  # type: ignore[arg-type]


def test_signed_message_refuses_bad_lengths() -> None:
    with pytest.raises(MalformedFrame):
        read_signed_message(bytes(31), "ws://r/v1", 0, bytes(32))
    with pytest.raises(MalformedFrame):
        read_signed_message(bytes(32), "ws://r/" + "x" * 3000, 0, bytes(32))


def test_an_error_is_fatal_exactly_when_it_names_no_request() -> None:
    assert is_fatal(Error(0, ErrorCode.BAD_KEY))
    assert not is_fatal(Error(3, ErrorCode.BAD_KEY))
    assert is_fatal(Error(0, ErrorCode.STORAGE_FAILED))  # a read that cannot go on
    assert not is_fatal(Error(3, ErrorCode.MAILBOX_FULL))


def test_the_frame_limit_fits_a_full_ack_and_twice_the_envelope_limit() -> None:
    assert max_frame_bytes(65_536) == 2 * 65_536 + 1024
    assert max_frame_bytes(100) == 2 + 4 + 256 * 16
