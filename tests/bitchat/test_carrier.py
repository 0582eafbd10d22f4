"""bitchat's Nostr carrier (0x28) TLVs, with the cases of bitchat's own tests transcribed
(bitchatTests/Protocols/NostrCarrierPacketTests.swift, permissionlesstech/bitchat 9b84b36)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.bitchat.carrier import (
    MAX_EVENT_JSON_BYTES,
    Direction,
    NostrCarrier,
    decode_carrier,
    encode_carrier,
)
from pigeon.bitchat.errors import LocalError, MalformedCarrier

EVENT = b'{"id":"..."}'


def test_layout_and_round_trip_both_directions() -> None:
    for direction in Direction:
        carrier = NostrCarrier(direction, "u4pruy", EVENT)
        data = encode_carrier(carrier)
        assert data == (
            bytes((0x01, 0x00, 0x01, direction)) + b"\x02\x00\x06u4pruy" + b"\x03\x00\x0c" + EVENT
        )
        assert decode_carrier(data) == carrier


def test_unknown_tlvs_are_skipped() -> None:  # "skips unknown TLVs for forward compatibility"
    carrier = NostrCarrier(Direction.FROM_GATEWAY, "u4pruy", EVENT)
    assert decode_carrier(encode_carrier(carrier) + b"\x7f\x00\x02\xde\xad") == carrier


def test_oversized_event_is_refused_both_ways() -> None:  # "rejects an oversized event ..."
    oversized = b"{" * (MAX_EVENT_JSON_BYTES + 1)
    with pytest.raises(LocalError):
        encode_carrier(NostrCarrier(Direction.TO_GATEWAY, "u4pruy", oversized))
    data = (
        b"\x01\x00\x01\x01" + b"\x02\x00\x06u4pruy"
        + bytes((0x03, len(oversized) >> 8, len(oversized) & 0xFF)) + oversized
    )  # fmt: skip
    with pytest.raises(MalformedCarrier):
        decode_carrier(data)


@pytest.mark.parametrize("geohash", ["", "u" * 13])
def test_geohash_bounds(geohash: str) -> None:  # "rejects an over-length or empty geohash"
    with pytest.raises(LocalError):
        encode_carrier(NostrCarrier(Direction.TO_GATEWAY, geohash, EVENT))
    assert encode_carrier(NostrCarrier(Direction.TO_GATEWAY, "u" * 12, EVENT))


def test_truncated_and_missing_fields_are_refused() -> None:  # "rejects truncated and ..."
    data = encode_carrier(NostrCarrier(Direction.TO_GATEWAY, "u4pruy", EVENT))
    for bad in (data[:-1], data[:4], b"", b"\x01\x00\x01\x01", b"\x01\x00\x01\x77"):
        with pytest.raises(MalformedCarrier):
            decode_carrier(bad)
    with pytest.raises(MalformedCarrier):
        decode_carrier(data + b"\x7f\x00")  # ends inside a TLV head
    with pytest.raises(MalformedCarrier):
        decode_carrier(b"\x01\x00\x01\x09" + data)  # a bad direction refuses, even if repeated


@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_malformed(data: bytes) -> None:
    try:
        carrier = decode_carrier(data)
    except MalformedCarrier:
        return
    assert decode_carrier(encode_carrier(carrier)) == carrier
