"""The link frame codec: round trips, every malformed shape, and the frame limit formula."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.transport.ble.errors import MalformedLinkFrame
from pigeon.transport.ble.gatt import (
    CHANNEL_FRAME_LIMIT,
    IDENTIFIER_LEN,
    LINK_HEADER_LEN,
    LINK_TAG_LEN,
    MAX_FRAME_LIMIT,
    MIN_LINK_FRAME_LIMIT,
    RX_UUID,
    SERVICE_UUID,
    TX_UUID,
    Bye,
    Data,
    Intro,
    LinkFrame,
    LinkKind,
    channel_frame_limit,
    decode_link_frame,
    encode_link_frame,
    frame_limit_for,
    gatt_frame_limit,
)

tags = st.binary(min_size=LINK_TAG_LEN, max_size=LINK_TAG_LEN)
link_frames: st.SearchStrategy[LinkFrame] = st.one_of(
    st.builds(
        Intro,
        st.sampled_from([LinkKind.HELLO, LinkKind.WELCOME]),
        tags,
        st.binary(min_size=IDENTIFIER_LEN, max_size=IDENTIFIER_LEN),
        st.integers(MIN_LINK_FRAME_LIMIT, CHANNEL_FRAME_LIMIT),
    ),
    st.builds(Data, tags, st.binary(min_size=1, max_size=CHANNEL_FRAME_LIMIT)),
    st.builds(Bye, tags, st.integers(0, 255)),
)


@given(link_frames)
def test_round_trip(frame: LinkFrame) -> None:
    wire = encode_link_frame(frame)
    assert decode_link_frame(wire) == frame
    assert wire[1 : 1 + LINK_TAG_LEN] == frame.link_tag


@given(st.binary(max_size=300))
def test_decode_raises_only_malformed(data: bytes) -> None:
    try:
        frame = decode_link_frame(data)
    except MalformedLinkFrame:
        return
    assert encode_link_frame(frame) == data


def test_layout_is_fixed() -> None:
    hello = Intro(LinkKind.HELLO, b"\xaa\xbb\xcc", b"\x01\x02\x03\x04", 244)
    assert encode_link_frame(hello) == bytes.fromhex("10aabbcc0102030400f4")
    assert encode_link_frame(Data(b"\xaa\xbb\xcc", b"hi")) == bytes.fromhex("12aabbcc") + b"hi"
    assert encode_link_frame(Bye(b"\xaa\xbb\xcc", 2)) == bytes.fromhex("13aabbcc02")
    assert len({SERVICE_UUID, RX_UUID, TX_UUID}) == 3


@pytest.mark.parametrize(
    ("wire", "fault"),
    [
        (b"\x12\x00\x00", "shorter than its header"),
        (b"\x22\x00\x00\x00x", "version 2"),
        (b"\x12\x00\x00\x00", "data frame length 0"),
        (b"\x12\x00\x00\x00" + bytes(CHANNEL_FRAME_LIMIT + 1), "data frame length 1021"),
        (b"\x13\x00\x00\x00", "bye body of 0 bytes"),
        (b"\x10\x00\x00\x00\x01\x02\x03\x04\x00", "HELLO body of 5 bytes"),
        (b"\x11\x00\x00\x00\x01\x02\x03\x04\x00\x13", "WELCOME frame limit 19"),
        (b"\x10\x00\x00\x00\x01\x02\x03\x04\x03\xfd", "HELLO frame limit 1021"),
        (b"\x17\x00\x00\x00", "unknown link frame kind 7"),
    ],
)
def test_malformed(wire: bytes, fault: str) -> None:
    with pytest.raises(MalformedLinkFrame, match=fault):
        decode_link_frame(wire)


def test_encode_refuses_out_of_range_fields() -> None:
    with pytest.raises(ValueError, match="link tag"):
        encode_link_frame(Data(b"\x00", b"x"))
    with pytest.raises(ValueError, match="data frame length"):
        encode_link_frame(Data(b"\x00\x00\x00", bytes(CHANNEL_FRAME_LIMIT + 1)))
    with pytest.raises(ValueError, match="identifier"):
        encode_link_frame(Intro(LinkKind.HELLO, b"\x00\x00\x00", b"\x00", 100))
    with pytest.raises(ValueError, match="frame limit"):
        encode_link_frame(Intro(LinkKind.HELLO, b"\x00\x00\x00", bytes(4), 19))
    with pytest.raises(ValueError, match="HELLO or a WELCOME"):
        encode_link_frame(Intro(LinkKind.DATA, b"\x00\x00\x00", bytes(4), 100))
    with pytest.raises(ValueError, match="u8"):
        encode_link_frame(Bye(b"\x00\x00\x00", 256))


@pytest.mark.parametrize(
    ("max_write", "limit"),
    [
        (514, 244),  # MTU 517: capped at one LE data-length PDU, far from the lost 511-514
        (510, 244),
        (248, 244),
        (247, 243),
        (182, 178),  # MTU 185 (many phones)
        (24, 20),  # the smallest MTU that still carries a minimum frame
        (20, 16),  # MTU 23: too small for a link (refused with TOO_SMALL)
    ],
)
def test_frame_limit_for(max_write: int, limit: int) -> None:
    assert frame_limit_for(max_write) == limit
    assert limit + LINK_HEADER_LEN <= max_write


@pytest.mark.parametrize(
    ("offered", "mtu", "limit"),
    [
        (CHANNEL_FRAME_LIMIT, None, MAX_FRAME_LIMIT),  # a channel's offer over GATT: capped
        (CHANNEL_FRAME_LIMIT, 517, MAX_FRAME_LIMIT),
        (200, 517, 200),
        (244, 185, 176),  # notifications to a BlueZ central: MTU - 5, minus the link header
        (244, 23, 14),  # too small: refused as TOO_SMALL
    ],
)
def test_gatt_frame_limit(offered: int, mtu: int | None, limit: int) -> None:
    assert gatt_frame_limit(offered, mtu) == limit


@pytest.mark.parametrize(
    ("offered", "send_mtu", "limit"),
    [
        (CHANNEL_FRAME_LIMIT, None, CHANNEL_FRAME_LIMIT),  # the socket cannot say: the offer
        (CHANNEL_FRAME_LIMIT, 8192, CHANNEL_FRAME_LIMIT),
        (CHANNEL_FRAME_LIMIT, 672, 668),  # a peer kernel's default receive MTU
        (244, 8192, 244),
        (65535, None, CHANNEL_FRAME_LIMIT),
        (CHANNEL_FRAME_LIMIT, 23, 19),  # too small: refused as TOO_SMALL
    ],
)
def test_channel_frame_limit(offered: int, send_mtu: int | None, limit: int) -> None:
    assert channel_frame_limit(offered, send_mtu) == limit
