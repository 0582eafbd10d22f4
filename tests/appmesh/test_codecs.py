"""Fragment, packet and envelope codecs: every malformed form, and our own misuse."""

import pytest

from pigeon.appmesh.envelope import Envelope, EnvelopeType, encode_envelope, route_of
from pigeon.appmesh.errors import (
    AppMeshError,
    MalformedEnvelope,
    MalformedFragment,
    MalformedPacket,
    MessageTooLarge,
)
from pigeon.appmesh.fragment import Fragment, decode_fragment, encode_fragment, split
from pigeon.appmesh.packet import AppPacket, decode_packet, encode_packet, with_ttl

from .helpers import ALICE, BOB, app_packet


@pytest.mark.parametrize(
    "error", [MalformedFragment, MalformedPacket, MalformedEnvelope, MessageTooLarge]
)
def test_every_error_has_one_root_and_is_a_value_error(error: type[Exception]) -> None:
    assert issubclass(error, AppMeshError)
    assert issubclass(error, ValueError)


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        (b"", "header"),
        (b"\x01\x00\x00\x00\x00\x00", "header"),
        (b"\x02\x00\x00\x00\x00\x00\x01", "version"),
        (b"\x01\x00\x00\x00\x00\x00\x00", "count"),
        (b"\x01\x00\x00\x00\x02\x00\x02", "count"),
        (b"\x01\xff\xff\xff\xff\xff\xff", "count"),
    ],
)
def test_malformed_fragments_name_the_field(frame: bytes, field: str) -> None:
    with pytest.raises(MalformedFragment, match=field):
        decode_fragment(frame)


def test_fragment_encoder_refuses_our_bad_fields() -> None:
    for index, count in [(1, 1), (0, 0), (0, 0x10000), (-1, 2)]:
        with pytest.raises(ValueError, match="index"):
            encode_fragment(Fragment(1, index, count, b""))


def test_split_refuses_bad_sizes() -> None:
    with pytest.raises(ValueError, match="positive"):
        split(b"abc", 0, 0)
    with pytest.raises(ValueError, match="65535"):
        split(bytes(0x10000), 0, 1)


def test_split_wraps_the_message_id_to_16_bits() -> None:
    assert split(b"x", 0x1_0005, 150)[0][1:3] == b"\x00\x05"


@pytest.mark.parametrize(
    ("data", "field"),
    [(b"", "header"), (bytes(17), "header"), (b"\x02" + bytes(17), "version")],
)
def test_malformed_packets_name_the_field(data: bytes, field: str) -> None:
    with pytest.raises(MalformedPacket, match=field):
        decode_packet(data)


def test_packet_encoder_refuses_our_bad_fields() -> None:
    with pytest.raises(ValueError, match="TTL"):
        encode_packet(AppPacket(256, bytes(16), b""))
    with pytest.raises(ValueError, match="16-byte"):
        encode_packet(AppPacket(8, bytes(15), b""))
    with pytest.raises(ValueError, match="TTL"):
        with_ttl(app_packet(1), -1)


def test_with_ttl_changes_only_the_ttl_byte() -> None:
    data = app_packet(7, ttl=8)
    out = with_ttl(data, 3)
    assert out[1] == 3
    assert out[:1] + out[2:] == data[:1] + data[2:]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "header"),
        (bytes(65), "header"),
        (b"\x02\x02" + bytes(64), "version"),
        (b"\x01\x00" + bytes(64), "type"),
        (b"\x01\x07" + bytes(64), "type"),
    ],
)
def test_malformed_envelopes_name_the_field(data: bytes, field: str) -> None:
    with pytest.raises(MalformedEnvelope, match=field):
        route_of(data)


def test_errors_never_carry_the_keys() -> None:
    data = b"\x01\x09" + ALICE + BOB
    with pytest.raises(MalformedEnvelope) as caught:
        route_of(data)
    assert ALICE.hex() not in str(caught.value)
    assert "a1a1" not in str(caught.value)


def test_envelope_encoder_refuses_wrong_key_sizes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        encode_envelope(Envelope(EnvelopeType.ACK, ALICE[:31], BOB, b""))


def test_an_empty_rehandshake_request_is_valid() -> None:
    data = encode_envelope(Envelope(EnvelopeType.REHANDSHAKE_REQUEST, ALICE, BOB, b""))
    assert route_of(data) == (EnvelopeType.REHANDSHAKE_REQUEST, ALICE, BOB)
