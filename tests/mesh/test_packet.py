"""Mesh packet codec: round trips, the exact layout, and rejection of every malformed field."""

import dataclasses
import hashlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.mesh.errors import MalformedPacket, MeshError
from pigeon.mesh.packet import (
    DEFAULT_TTL,
    FIXED_HEADER_LEN,
    INTERACTIVE_MAX_PAYLOAD_LEN,
    MAX_ANNOUNCE_TAGS,
    MAX_MAILBOX_HINT_LEN,
    MAX_PACKET_LEN,
    MAX_PAYLOAD_LEN,
    Flag,
    Packet,
    PacketType,
    Priority,
    associated_data,
    decode_announce,
    decode_packet,
    decode_receipt,
    decremented,
    encode_announce,
    encode_packet,
    encode_receipt,
    encoded_len,
    encoded_with_ttl,
    make_announce,
    make_notice,
    make_receipt,
    priority,
    with_ttl,
)
from tests.mesh.strategies import packets, recipient_tags

TAG = bytes(range(100, 116))
RHASH = bytes(range(200, 216))


def envelope(**changes: object) -> Packet:
    fields: dict[str, object] = {
        "type": PacketType.ENVELOPE,
        "recipient_tag": TAG,
        "expires_at_s": 1_800_000_000,
        "payload": b"ciphertext",
        "receipt_hash": RHASH,
    }
    fields.update(changes)
    return Packet(**fields)  # type: ignore[arg-type]


def _update(kind: int, seq: int, base: int, body: bytes, count: int | None = None) -> bytes:
    """A routes version 2 payload by hand: header, then `body` (one entry unless `count`)."""
    count = (1 if body else 0) if count is None else count
    return struct.pack(">BIIB", kind, seq, base, count) + body


def raw(
    *,
    version: int = 2,
    ptype: int = 1,
    ttl: int = 7,
    flags: int = 0,
    expires: int = 1_800_000_000,
    tag: bytes = TAG,
    tag_len: int | None = None,
    rhash: bytes = RHASH,
    payload: bytes = b"ciphertext",
    payload_len: int | None = None,
    hint: bytes | None = None,
    hint_len: int | None = None,
) -> bytes:
    """Packet bytes built by hand from the documented layout, independent of the encoder."""
    head = struct.pack(
        ">BBBBIB",
        version,
        ptype,
        ttl,
        flags,
        expires,
        len(tag) if tag_len is None else tag_len,
    )
    length = len(payload) if payload_len is None else payload_len
    body = head + tag + rhash + struct.pack(">H", length) + payload
    if hint is None:
        return body
    return body + struct.pack(">H", len(hint) if hint_len is None else hint_len) + hint


@given(packets())
def test_round_trip(packet: Packet) -> None:
    data = encode_packet(packet)
    assert decode_packet(data) == packet
    assert len(data) == encoded_len(packet) <= MAX_PACKET_LEN


def test_layout_matches_the_documented_bytes() -> None:
    assert encode_packet(envelope()) == raw()
    assert FIXED_HEADER_LEN == 9
    assert MAX_PACKET_LEN == 9 + 16 + 16 + 2 + MAX_PAYLOAD_LEN + 2 + MAX_MAILBOX_HINT_LEN


def documented_id(data: bytes, payload_start: int, payload: bytes) -> bytes:
    """The id as docs/protocol.md defines it, from the wire bytes alone."""
    header = data[:2] + data[3 : payload_start - 2]  # without TTL and payload_len
    return hashlib.sha256(b"Pigeon.PacketId.v2" + header + payload).digest()[:16]


def test_the_id_is_the_documented_hash_of_the_content() -> None:
    data = raw()
    expected = documented_id(data, 9 + 16 + 16 + 2, b"ciphertext")
    assert envelope().packet_id == decode_packet(data).packet_id == expected
    receipt = make_receipt(bytes(range(16)), TAG, 99)
    encoded = encode_packet(receipt)
    assert receipt.packet_id == documented_id(encoded, 9 + 16 + 2, receipt.payload)


@pytest.mark.parametrize(
    "changes",
    [
        {"recipient_tag": TAG[:8]},
        {"expires_at_s": 1},
        {"receipt_hash": bytes(16)},
        {"flags": int(Flag.BULK)},
        {"payload": b"ciphertexT"},
    ],
)
def test_every_covered_field_changes_the_id(changes: dict[str, object]) -> None:
    assert envelope(**changes).packet_id != envelope().packet_id


def test_ttl_and_hint_leave_the_id_alone() -> None:
    hinted = envelope(flags=int(Flag.MAILBOX_HINT), mailbox_hint=b"one")
    assert with_ttl(hinted, 0).packet_id == hinted.packet_id
    assert dataclasses.replace(hinted, mailbox_hint=b"two").packet_id == hinted.packet_id


@given(packets(max_payload=300), st.data())
def test_altered_bytes_never_keep_the_id(packet: Packet, data: st.DataObject) -> None:
    """The flaw content ids close: other bytes under a genuine packet's id."""
    encoded = bytearray(encode_packet(packet))
    index = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    encoded[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    try:
        altered = decode_packet(bytes(encoded))
    except MalformedPacket:
        return
    changed_hint_or_ttl = index == 2 or altered.mailbox_hint != packet.mailbox_hint
    assert (altered.packet_id == packet.packet_id) == changed_hint_or_ttl


def test_hint_layout_matches_the_documented_bytes() -> None:
    packet = envelope(flags=int(Flag.HANDSHAKE | Flag.MAILBOX_HINT), mailbox_hint=b"hint")
    assert encode_packet(packet) == raw(flags=0x05, hint=b"hint")
    assert decode_packet(raw(flags=0x05, hint=b"hint")) == packet


def test_the_hint_is_outside_the_associated_data_but_its_flag_is_inside() -> None:
    hinted = envelope(flags=int(Flag.MAILBOX_HINT), mailbox_hint=b"one")
    assert _ad(hinted) == _ad(dataclasses.replace(hinted, mailbox_hint=b"another"))
    assert _ad(hinted) != _ad(envelope())


def test_largest_packet_round_trips() -> None:
    packet = envelope(
        payload=bytes(MAX_PAYLOAD_LEN),
        flags=int(Flag.BULK | Flag.MAILBOX_HINT),
        mailbox_hint=bytes(MAX_MAILBOX_HINT_LEN),
    )
    assert len(encode_packet(packet)) == MAX_PACKET_LEN
    assert decode_packet(encode_packet(packet)) == packet


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b"", "version"),
        (raw(version=0), "version"),
        (raw(version=1), "version"),
        (raw(version=3), "version"),
        (raw(version=255), "version"),
        (raw()[:1], "header truncated"),
        (raw()[: FIXED_HEADER_LEN - 1], "header truncated"),
        (raw(ptype=0), "type"),
        (raw(ptype=3), "type 3 .receipt version 1. retired"),
        (raw(ptype=255), "type"),
        (raw(ttl=16), "ttl"),
        (raw(ttl=255), "ttl"),
        (raw(flags=0x08), "flags"),
        (raw(flags=0x80), "flags"),
        (raw(flags=0x03), "flags"),
        (raw(flags=0x07, hint=b"h"), "flags"),
        (raw(flags=0x04), "hint_len"),
        (raw(flags=0x04) + b"\x00", "hint_len"),
        (raw(flags=0x04, hint=b""), "mailbox_hint length 0"),
        (raw(flags=0x04, hint=b"hint", hint_len=5), "hint_len"),
        (raw(flags=0x04, hint=b"hint", hint_len=3), "hint_len"),
        (raw(flags=0x04, hint=bytes(MAX_MAILBOX_HINT_LEN + 1)), "mailbox_hint length"),
        (raw(hint=b"hint"), "payload_len"),
        (raw(ptype=4, flags=4, rhash=b"", payload=bytes(16)), "flags"),
        (raw(ptype=4, flags=1, rhash=b"", payload=bytes(16)), "flags"),
        (raw(ptype=5, flags=1, rhash=b"", payload=bytes(32)), "flags"),
        (raw(ptype=2, flags=2, tag=b"", rhash=b"", payload=b"\x00"), "flags"),
        (raw(tag=b""), "recipient_tag"),
        (raw(tag=bytes(7)), "recipient_tag"),
        (raw(tag=bytes(17)), "recipient_tag"),
        (raw(tag_len=255), "recipient_tag"),
        (raw(ptype=4, tag=b"", rhash=b"", payload=bytes(16)), "recipient_tag"),
        (raw(ptype=5, tag=b"", rhash=b"", payload=bytes(32)), "recipient_tag"),
        (raw(ptype=2, tag=bytes(8), rhash=b"", payload=b"\x00"), "recipient_tag"),
        (raw()[: FIXED_HEADER_LEN + 16 + 15], "header truncated"),
        (raw()[: FIXED_HEADER_LEN + 16 + 16 + 1], "header truncated"),
        (raw(payload_len=11), "payload_len"),
        (raw(payload_len=9), "payload_len"),
        (raw() + b"x", "payload_len"),
        (raw(payload_len=0xFFFF), "payload_len"),
        (raw(payload=bytes(MAX_PAYLOAD_LEN + 1)), "payload length"),
        (raw(payload=b""), "payload empty"),
        (raw(ptype=4, rhash=b"", payload=bytes(15)), "receipt payload"),
        (raw(ptype=4, rhash=b"", payload=bytes(32)), "receipt payload"),
        (raw(ptype=5, rhash=b"", payload=bytes(16)), "notice payload"),
        (raw(ptype=5, rhash=b"", payload=bytes(33)), "notice payload"),
        (raw(ptype=3, rhash=b"", payload=bytes(32)), "receipt version 1"),
        (raw(ptype=10, rhash=b"", payload=bytes(32)), "type 10 unknown"),
        (raw(ptype=6, rhash=b"", payload=bytes(8)), "recipient_tag must be empty for ACK"),
        (raw(ptype=6, tag=b"", rhash=b"", payload=bytes(9)), "ack payload length 9"),
        (raw(ptype=6, tag=b"", rhash=b"", payload=b""), "ack payload length 0"),
        (raw(ptype=7, tag=b"", rhash=b"", payload=b""), "routes payload empty"),
        (raw(ptype=7, tag=b"", rhash=b"", payload=b"\x01\x00\x08" + bytes(8)), "distance 0"),
        (raw(ptype=7, tag=b"", rhash=b"", payload=b"\x01\x01\x08" + bytes(7)), "truncated"),
        (raw(ptype=7, tag=b"", rhash=b"", payload=b"\x00\x00"), "trailing"),
        (raw(ptype=8, tag=b"", rhash=b"", payload=bytes(9)), "routes update truncated"),
        (raw(ptype=8, tag=b"", rhash=b"", payload=b"\x02" + bytes(9)), "kind 2 unknown"),
        (raw(ptype=8, tag=b"", rhash=b"", payload=bytes(10)), "seq 0 outside"),
        (
            raw(ptype=8, tag=b"", rhash=b"", payload=_update(0, 2, 1, b"")),
            "full routes table with base 1",
        ),
        (
            raw(ptype=8, tag=b"", rhash=b"", payload=_update(1, 2, 2, b"")),
            "delta base 2 outside 1..1",
        ),
        (
            raw(ptype=8, tag=b"", rhash=b"", payload=_update(0, 1, 0, b"\x00\x08" + bytes(8))),
            "distance 0 outside 1",
        ),
        (
            raw(ptype=8, tag=b"", rhash=b"", payload=_update(1, 2, 1, b"\x21\x08" + bytes(8))),
            "distance 33 outside 0",
        ),
        (
            raw(
                ptype=8,
                tag=b"",
                rhash=b"",
                payload=_update(1, 2, 1, (b"\x01\x08" + bytes(8)) * 2, 2),
            ),
            "names a tag twice",
        ),
        (
            raw(ptype=8, tag=b"", rhash=b"", payload=_update(1, 2, 1, b"\x01\x08" + bytes(7))),
            "truncated at entry 0",
        ),
        (raw(ptype=8, tag=b"", rhash=b"", payload=_update(1, 2, 1, b"") + b"\x00"), "1 trailing"),
        (raw(ptype=2, tag=b"", rhash=b"", payload=b""), "announce"),
        (raw(ptype=2, tag=b"", rhash=b"", payload=b"\x01"), "announce truncated"),
        (raw(ptype=2, tag=b"", rhash=b"", payload=b"\x01\x07" + bytes(7)), "announce tag 0"),
        (raw(ptype=2, tag=b"", rhash=b"", payload=b"\x01\x08" + bytes(7)), "announce truncated"),
        (raw(ptype=2, tag=b"", rhash=b"", payload=b"\x00\x00"), "trailing"),
    ],
)
def test_every_malformed_field_is_named(data: bytes, field: str) -> None:
    with pytest.raises(MalformedPacket, match=field) as caught:
        decode_packet(data)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, MeshError)


@given(packets(max_payload=600), st.data())
def test_every_truncation_is_rejected(packet: Packet, data: st.DataObject) -> None:
    encoded = encode_packet(packet)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    with pytest.raises(MalformedPacket):
        decode_packet(encoded[:cut])


@given(packets(max_payload=600), st.binary(min_size=1, max_size=40))
def test_trailing_bytes_are_rejected(packet: Packet, extra: bytes) -> None:
    with pytest.raises(MalformedPacket, match=r"payload_len|hint_len"):
        decode_packet(encode_packet(packet) + extra)


@given(packets(max_payload=300), st.data())
def test_any_corruption_raises_only_malformed_packet(packet: Packet, data: st.DataObject) -> None:
    encoded = bytearray(encode_packet(packet))
    index = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    encoded[index] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        decoded = decode_packet(bytes(encoded))
    except MalformedPacket:
        return
    assert encode_packet(decoded) == bytes(encoded)
    assert dataclasses.replace(decoded) == decoded


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_malformed_packet(data: bytes) -> None:
    try:
        decoded = decode_packet(data)
    except MalformedPacket:
        return
    assert encode_packet(decoded) == data
    assert dataclasses.replace(decoded) == decoded  # the constructor accepts it too


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"type": 1}, "type"),
        ({"ttl": -1}, "ttl"),
        ({"ttl": 16}, "ttl"),
        ({"flags": 0x10}, "flags"),
        ({"flags": 0x04}, "mailbox_hint length 0"),
        ({"mailbox_hint": b"hint"}, "without the MAILBOX_HINT flag"),
        ({"recipient_tag": bytes(7)}, "recipient_tag"),
        ({"expires_at_s": -1}, "expires_at_s"),
        ({"expires_at_s": 2**32}, "expires_at_s"),
        ({"receipt_hash": b""}, "receipt_hash"),
        ({"payload": b""}, "payload"),
        ({"payload": bytes(MAX_PAYLOAD_LEN + 1)}, "payload"),
    ],
)
def test_constructor_rejects_invalid_fields(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        envelope(**changes)


def test_non_envelopes_carry_no_receipt_hash() -> None:
    with pytest.raises(ValueError, match="receipt_hash"):
        Packet(
            type=PacketType.RECEIPT,
            recipient_tag=TAG,
            expires_at_s=0,
            payload=bytes(16),
            receipt_hash=RHASH,
        )


@given(packets(max_payload=200), st.integers(min_value=0, max_value=15))
def test_ttl_is_the_only_field_a_hop_changes(packet: Packet, ttl: int) -> None:
    changed = with_ttl(packet, ttl)
    assert changed.ttl == ttl
    assert with_ttl(changed, packet.ttl) == packet
    assert encoded_with_ttl(encode_packet(packet), ttl) == encode_packet(changed)


def test_decremented_counts_down_and_stops_at_zero() -> None:
    packet = envelope(ttl=1)
    assert decremented(packet).ttl == 0
    with pytest.raises(ValueError, match="ttl"):
        decremented(decremented(packet))
    with pytest.raises(ValueError, match="ttl"):
        with_ttl(packet, 16)
    with pytest.raises(ValueError, match="ttl"):
        encoded_with_ttl(encode_packet(packet), 16)
    assert envelope().ttl == DEFAULT_TTL


def test_priority_classes() -> None:
    receipt = make_receipt(bytes(16), TAG, 0)
    assert priority(receipt) is Priority.CONTROL
    assert priority(make_notice(bytes(32), TAG, 0)) is Priority.CONTROL
    assert priority(make_announce([TAG], 0)) is Priority.CONTROL
    assert priority(envelope()) is Priority.INTERACTIVE
    assert priority(envelope(flags=int(Flag.HANDSHAKE))) is Priority.INTERACTIVE
    assert priority(envelope(payload=bytes(INTERACTIVE_MAX_PAYLOAD_LEN))) is Priority.INTERACTIVE
    assert priority(envelope(payload=bytes(INTERACTIVE_MAX_PAYLOAD_LEN + 1))) is Priority.BULK
    assert priority(envelope(flags=int(Flag.BULK))) is Priority.BULK
    assert Priority.CONTROL < Priority.INTERACTIVE < Priority.BULK


@given(st.lists(recipient_tags, max_size=MAX_ANNOUNCE_TAGS))
def test_announce_round_trip(tags: list[bytes]) -> None:
    assert decode_announce(encode_announce(tags)) == tuple(tags)


def test_announce_rejects_bad_tags() -> None:
    with pytest.raises(ValueError, match="tag length"):
        encode_announce([bytes(7)])
    with pytest.raises(ValueError, match="at most"):
        encode_announce([TAG] * (MAX_ANNOUNCE_TAGS + 1))
    with pytest.raises(MalformedPacket, match="announce"):
        decode_announce(b"\x02\x08" + bytes(8))


def test_make_announce_is_neighbour_only_and_untagged() -> None:
    announce = make_announce([TAG, TAG[:8]], 99)
    assert announce.ttl == 0
    assert announce.recipient_tag == b""
    assert decode_announce(decode_packet(encode_packet(announce)).payload) == (TAG, TAG[:8])


def test_receipt_payload_is_the_secret_alone() -> None:
    secret = bytes(range(16))
    receipt = make_receipt(secret, TAG, 99)
    assert receipt.type is PacketType.RECEIPT
    assert decode_receipt(receipt.payload) == encode_receipt(secret) == secret
    with pytest.raises(ValueError, match="secret"):
        encode_receipt(bytes(15))
    with pytest.raises(MalformedPacket, match="receipt payload"):
        decode_receipt(bytes(32))


def test_notice_carries_its_sealed_payload() -> None:
    notice = decode_packet(encode_packet(make_notice(bytes(range(32)), TAG, 99)))
    assert (notice.type, notice.recipient_tag, notice.payload) == (
        PacketType.NOTICE,
        TAG,
        bytes(range(32)),
    )
    with pytest.raises(ValueError, match="notice payload"):
        make_notice(bytes(16), TAG, 99)


def test_repr_shows_neither_payload_nor_full_identifiers() -> None:
    packet = envelope(payload=b"SECRET-LOOKING-PAYLOAD")
    text = repr(packet)
    assert "SECRET" not in text
    assert packet.packet_id.hex() not in text
    assert TAG.hex() not in text
    assert "22 bytes" in text


def _ad(packet: Packet) -> bytes:
    return associated_data(
        packet_type=packet.type,
        flags=packet.flags,
        recipient_tag=packet.recipient_tag,
        expires_at_s=packet.expires_at_s,
        receipt_hash=packet.receipt_hash,
    )


def test_associated_data_binds_every_field_but_ttl_and_payload() -> None:
    base = envelope()
    assert _ad(base) == _ad(envelope(ttl=0, payload=b"other"))
    for changes in (
        {"recipient_tag": TAG[:8]},
        {"expires_at_s": 1},
        {"receipt_hash": bytes(16)},
        {"flags": int(Flag.BULK)},
    ):
        assert _ad(envelope(**changes)) != _ad(base), changes
    encoded = encode_packet(base)
    assert _ad(base) == encoded[:2] + encoded[3 : FIXED_HEADER_LEN + 16 + 16]
    with pytest.raises(ValueError, match="out of range"):
        associated_data(
            packet_type=PacketType.ENVELOPE,
            flags=0,
            recipient_tag=TAG,
            expires_at_s=-1,
            receipt_hash=RHASH,
        )


@given(packets(max_payload=300).filter(lambda p: p.type is PacketType.ENVELOPE), st.data())
def test_every_packet_decode_accepts_passes_the_constructors_checks(
    packet: Packet, data: st.DataObject
) -> None:
    """decode_packet accepts a valid envelope in one test and fills the Packet without its
    constructor's checks, so that one test repeats their rules: whatever it accepts, mutated in
    the TTL and flags bytes or anywhere, must pass them (replace runs __post_init__)."""
    wire = bytearray(encode_packet(packet))
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.sampled_from([2, 3]) | st.integers(0, len(wire) - 1))
        wire[index] = data.draw(st.integers(0, 255))
    try:
        decoded = decode_packet(bytes(wire))
    except MalformedPacket:
        return
    dataclasses.replace(decoded)
