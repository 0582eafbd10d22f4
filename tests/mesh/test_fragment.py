"""Fragmentation: every frame limit, any order, loss and duplication; never a wrong packet."""

import contextlib
import hashlib
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.mesh.errors import MalformedFrame
from pigeon.mesh.fragment import (
    CONTINUATION_HEADER_LEN,
    FIRST_HEADER_LEN,
    FRAGMENT_OVERHEAD_BYTES,
    MIN_FRAME_LIMIT,
    Reassembler,
    fragment,
)
from pigeon.mesh.packet import MAX_PACKET_LEN

FRAME_LIMITS = range(MIN_FRAME_LIMIT, 515)
limits = st.integers(min_value=MIN_FRAME_LIMIT, max_value=514)
packets = st.binary(min_size=1, max_size=2000)
message_ids = st.integers(min_value=0, max_value=0xFFFF)


def feed(
    reassembler: Reassembler, frames: list[bytes], peer: str = "p", now: float = 0.0
) -> list[bytes]:
    """Every packet the frames yield, in order; malformed frames are skipped, as by the router."""
    out = []
    for frame in frames:
        try:
            packet = reassembler.add(peer, frame, now)
        except MalformedFrame:
            continue
        if packet is not None:
            out.append(packet)
    return out


def first_frame(
    msg_id: int, count: int, total_len: int, data: bytes, digest: bytes | None = None
) -> bytes:
    if digest is None:
        digest = hashlib.sha256(data).digest()[:8]
    return struct.pack(">BHHH8s", 0x10, msg_id, count, total_len, digest) + data


def next_frame(msg_id: int, index: int, data: bytes) -> bytes:
    return struct.pack(">BHH", 0x11, msg_id, index) + data


def test_every_frame_limit_with_the_largest_packet_in_shuffled_order() -> None:
    packet = random.Random(1).randbytes(MAX_PACKET_LEN)
    shuffle = random.Random(2).shuffle
    for limit in FRAME_LIMITS:
        frames = fragment(packet, limit, limit)
        assert all(len(frame) <= limit for frame in frames)
        first_room, next_room = limit - FIRST_HEADER_LEN, limit - CONTINUATION_HEADER_LEN
        assert len(frames) == 1 + -(-(MAX_PACKET_LEN - first_room) // next_room)
        shuffle(frames)
        assert feed(Reassembler(), frames + frames[: len(frames) // 3]) == [packet], limit


def test_every_frame_limit_at_the_single_frame_boundary() -> None:
    for limit in FRAME_LIMITS:
        fits = bytes(limit - FIRST_HEADER_LEN)
        assert len(fragment(fits, limit, 0)) == 1
        assert len(fragment(fits + b"x", limit, 0)) == 2
        assert feed(Reassembler(), fragment(fits + b"x", limit, 0)) == [fits + b"x"]


@given(packets, limits, message_ids, st.randoms(use_true_random=False), st.data())
def test_any_order_with_duplicates_yields_the_packet_once(
    packet: bytes, limit: int, msg_id: int, rng: random.Random, data: st.DataObject
) -> None:
    frames = fragment(packet, limit, msg_id)
    # Continuations only: a first frame again after the message completed starts it again
    # (a resend; see the test below).
    extra = data.draw(st.lists(st.sampled_from(frames[1:]), max_size=10)) if frames[1:] else []
    stream = frames + extra
    rng.shuffle(stream)
    reassembler = Reassembler()
    assert feed(reassembler, stream) == [packet]
    assert reassembler.bytes_held == 0
    assert len(reassembler) == 0
    assert reassembler.stats.packets == 1
    assert reassembler.stats.duplicates == len(extra)


@given(packets, st.sampled_from([20, 60, 244]), message_ids, st.data())
def test_a_resend_under_the_same_id_completes_what_either_send_alone_would_not(
    packet: bytes, limit: int, msg_id: int, data: st.DataObject
) -> None:
    """Two sends of one packet under one message id, in order, each losing any frames: the
    packet comes out once if the first send was incomplete and the two together are whole, and
    a second time (to be acked again) if the first was whole and so is the resend."""
    frames = fragment(packet, limit, msg_id)
    indexes = st.sets(st.integers(0, len(frames) - 1))
    lost = data.draw(indexes), data.draw(indexes)
    sends = [[frame for index, frame in enumerate(frames) if index not in gone] for gone in lost]
    whole = [not gone for gone in lost]
    expected = 1 + whole[1] if whole[0] else int(not lost[0] & lost[1])
    assert feed(Reassembler(), sends[0] + sends[1]) == [packet] * expected


def test_a_resend_under_the_id_of_a_message_completed_is_returned_again() -> None:
    packet = bytes(range(200))
    frames = fragment(packet, 60, 9)
    reassembler = Reassembler()
    assert feed(reassembler, frames) == [packet]
    assert feed(reassembler, frames[1:]) == []  # late continuations: duplicates
    assert feed(reassembler, frames) == [packet]  # the whole message again: our ack was lost
    single = fragment(b"lone", 60, 10)
    assert feed(reassembler, single + single) == [b"lone", b"lone"]


@given(packets.filter(lambda p: len(p) > 40), limits, st.randoms(use_true_random=False), st.data())
def test_any_loss_yields_nothing_and_times_out(
    packet: bytes, limit: int, rng: random.Random, data: st.DataObject
) -> None:
    frames = fragment(packet, limit, 7)
    if len(frames) == 1:
        return
    lost = data.draw(st.sets(st.integers(0, len(frames) - 1), min_size=1))
    kept = [frame for index, frame in enumerate(frames) if index not in lost]
    rng.shuffle(kept)
    reassembler = Reassembler(timeout_s=30.0)
    assert feed(reassembler, kept, now=100.0) == []
    assert reassembler.expire(129.9) == 0
    if kept:
        assert reassembler.expire(130.0) == 1
        assert reassembler.stats.timeouts == 1
    assert reassembler.bytes_held == 0


@given(packets, limits, st.data())
def test_a_corrupted_frame_never_yields_a_wrong_packet(
    packet: bytes, limit: int, data: st.DataObject
) -> None:
    frames = fragment(packet, limit, 3)
    index = data.draw(st.integers(0, len(frames) - 1))
    frame = bytearray(frames[index])
    position = data.draw(st.integers(0, len(frame) - 1))
    frame[position] ^= data.draw(st.integers(1, 255))
    frames[index] = bytes(frame)
    assert all(out == packet for out in feed(Reassembler(), frames))


@given(packets, packets, limits, limits, st.randoms(use_true_random=False))
def test_mixed_sets_under_one_message_id_never_yield_a_wrong_packet(
    one: bytes, two: bytes, limit_one: int, limit_two: int, rng: random.Random
) -> None:
    stream = fragment(one, limit_one, 9) + fragment(two, limit_two, 9)
    rng.shuffle(stream)
    assert set(feed(Reassembler(), stream)) <= {one, two}


@given(
    st.lists(st.binary(min_size=1, max_size=500), min_size=2, max_size=6),
    limits,
    st.randoms(use_true_random=False),
)
def test_interleaved_messages_and_peers(
    payloads: list[bytes], limit: int, rng: random.Random
) -> None:
    stream = [
        (peer, frame)
        for number, packet in enumerate(payloads)
        for peer in ("a", "b")
        for frame in fragment(packet, limit, number)
    ]
    rng.shuffle(stream)
    reassembler = Reassembler()
    got: dict[str, list[bytes]] = {"a": [], "b": []}
    for peer, frame in stream:
        packet = reassembler.add(peer, frame, 0.0)
        if packet is not None:
            got[peer].append(packet)
    assert sorted(got["a"]) == sorted(got["b"]) == sorted(payloads)


@given(st.binary(max_size=600))
def test_random_frames_raise_only_malformed_frame(frame: bytes) -> None:
    reassembler = Reassembler()
    try:
        packet = reassembler.add("p", frame, 0.0)
    except MalformedFrame:
        assert reassembler.stats.malformed + reassembler.stats.corrupt == 1
        return
    if packet is not None:
        assert frame[0] == 0x10
        assert hashlib.sha256(packet).digest()[:8] == frame[7:15]


DATA = b"0123456789"


@pytest.mark.parametrize(
    ("frame", "fault"),
    [
        (b"", "empty"),
        (b"\x20" + bytes(20), "version"),
        (b"\x00" + bytes(20), "version"),
        (b"\x12" + bytes(20), "kind"),
        (b"\x1f" + bytes(20), "kind"),
        (first_frame(1, 1, 10, DATA)[:15], "first frame truncated"),
        (first_frame(1, 1, 10, DATA)[:3], "first frame truncated"),
        (next_frame(1, 1, DATA)[:5], "continuation frame truncated"),
        (next_frame(1, 1, DATA)[:2], "continuation frame truncated"),
        (next_frame(1, 0, DATA), "index 0"),
        (first_frame(1, 1, 0, DATA), "total_len"),
        (first_frame(1, 1, MAX_PACKET_LEN + 1, DATA), "total_len"),
        (first_frame(1, 0, 10, DATA), "count"),
        (first_frame(1, 11, 10, DATA), "count"),
        (first_frame(1, 2, 5, DATA), "carries 10 of 5"),
        (first_frame(1, 1, 11, DATA), "carries 10 of 11"),
        (first_frame(1, 1, 10, DATA, digest=bytes(8)), "digest"),
    ],
)
def test_malformed_frames_are_named(frame: bytes, fault: str) -> None:
    reassembler = Reassembler()
    with pytest.raises(MalformedFrame, match=fault):
        reassembler.add("p", frame, 0.0)
    assert reassembler.bytes_held == 0


def test_frames_contradicting_their_set_drop_it() -> None:
    packet = bytes(range(40))
    reassembler = Reassembler()
    reassembler.add("p", next_frame(4, 5, b"late"), 0.0)
    with pytest.raises(MalformedFrame, match="beyond"):
        reassembler.add(
            "p", first_frame(4, 3, 40, packet[:5], hashlib.sha256(packet).digest()[:8]), 0.0
        )
    assert len(reassembler) == 0
    reassembler.add("p", first_frame(5, 2, 12, bytes(10)), 0.0)
    with pytest.raises(MalformedFrame, match="beyond count"):
        reassembler.add("p", next_frame(5, 2, b"xx"), 0.0)
    reassembler.add("p", first_frame(6, 2, 12, bytes(10)), 0.0)
    with pytest.raises(MalformedFrame, match="more bytes than total_len"):
        reassembler.add("p", next_frame(6, 1, b"xxx"), 0.0)
    reassembler.add("p", first_frame(7, 2, 12, bytes(10), digest=bytes(8)), 0.0)
    with pytest.raises(MalformedFrame, match="digest"):
        reassembler.add("p", next_frame(7, 1, b"xx"), 0.0)
    assert reassembler.stats.corrupt == 4
    assert reassembler.bytes_held == 0


def test_message_id_reuse_after_completion() -> None:
    one, two = bytes(range(100)), bytes(range(100, 200))
    reassembler = Reassembler()
    assert feed(reassembler, fragment(one, 30, 8)) == [one]
    assert feed(reassembler, fragment(two, 30, 8)) == [two]  # first frame differs: new message
    reassembler.drop_peer("p")
    assert feed(reassembler, fragment(two, 30, 8)) == [two]


def test_completion_marks_expire_with_the_timeout() -> None:
    """Late continuations of a completed message are duplicates for the timeout, not partials."""
    frames = fragment(bytes(range(100)), 30, 1)
    reassembler = Reassembler(timeout_s=10.0)
    assert feed(reassembler, frames, now=0.0) == [bytes(range(100))]
    assert feed(reassembler, frames[1:], now=5.0) == []
    assert len(reassembler) == 0
    reassembler.expire(10.0)
    assert feed(reassembler, frames[1:], now=10.0) == []
    assert len(reassembler) == 1


def test_add_expires_old_partials_itself() -> None:
    reassembler = Reassembler(timeout_s=10.0)
    reassembler.add("p", next_frame(1, 1, DATA), 0.0)
    reassembler.add("p", next_frame(2, 1, DATA), 20.0)
    assert len(reassembler) == 1
    assert reassembler.stats.timeouts == 1


def test_per_peer_cap_evicts_that_peers_oldest_partials() -> None:
    cost = len(DATA) + FRAGMENT_OVERHEAD_BYTES
    reassembler = Reassembler(per_peer_max_bytes=3 * cost, total_max_bytes=100 * cost)
    reassembler.add("other", next_frame(1, 1, DATA), 0.0)
    for msg_id in range(10):
        reassembler.add("flood", next_frame(msg_id, 1, DATA), float(msg_id))
    assert reassembler.bytes_held == 4 * cost
    assert reassembler.stats.over_cap == 7
    assert len(reassembler) == 4
    # The flooder keeps only its newest partials; the other peer's partial is untouched.
    assert reassembler.add("flood", next_frame(9, 2, DATA), 10.0) is None
    assert reassembler.stats.over_cap == 8
    assert reassembler.drop_peer("flood") == 2  # messages 8 and 9
    assert reassembler.drop_peer("other") == 1


def test_a_message_larger_than_the_peer_cap_is_dropped() -> None:
    packet = bytes(1000)
    reassembler = Reassembler(per_peer_max_bytes=500, total_max_bytes=1000)
    assert feed(reassembler, fragment(packet, 100, 1)) == []
    assert reassembler.stats.over_cap >= 1
    assert reassembler.bytes_held <= 500


def test_total_cap_evicts_the_oldest_partial_of_any_peer() -> None:
    cost = len(DATA) + FRAGMENT_OVERHEAD_BYTES
    reassembler = Reassembler(per_peer_max_bytes=2 * cost, total_max_bytes=3 * cost)
    for number, peer in enumerate("abcde"):
        reassembler.add(peer, next_frame(1, 1, DATA), float(number))
    assert reassembler.bytes_held == 3 * cost
    assert reassembler.stats.over_cap == 2
    packet = bytes(range(20))  # two frames: 5 + 15 data bytes, within a's cap
    assert feed(reassembler, fragment(packet, 20, 2), peer="a") == [packet]
    assert reassembler.stats.over_cap == 4


@settings(max_examples=50)
@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.binary(min_size=1, max_size=300)), max_size=40)
)
def test_memory_stays_within_caps_under_any_frames(frames: list[tuple[str, bytes]]) -> None:
    reassembler = Reassembler(per_peer_max_bytes=1000, total_max_bytes=2000)
    for now, (peer, frame) in enumerate(frames):
        with contextlib.suppress(MalformedFrame):
            reassembler.add(peer, b"\x11" + frame, float(now))
        assert reassembler.bytes_held <= 2000


def test_drop_peer_forgets_its_partials() -> None:
    reassembler = Reassembler()
    reassembler.add("a", next_frame(1, 1, DATA), 0.0)
    reassembler.add("b", next_frame(1, 1, DATA), 0.0)
    assert reassembler.drop_peer("a") == 1
    assert len(reassembler) == 1
    assert reassembler.drop_peer("a") == 0


@pytest.mark.parametrize(
    ("packet", "limit", "msg_id", "fault"),
    [
        (b"", 20, 0, "packet length"),
        (bytes(MAX_PACKET_LEN + 1), 20, 0, "packet length"),
        (b"x", 19, 0, "frame limit"),
        (b"x", 20, -1, "message id"),
        (b"x", 20, 0x10000, "message id"),
    ],
)
def test_fragment_rejects_bad_arguments(packet: bytes, limit: int, msg_id: int, fault: str) -> None:
    with pytest.raises(ValueError, match=fault):
        fragment(packet, limit, msg_id)


def test_reassembler_rejects_bad_limits() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Reassembler(timeout_s=0)
    with pytest.raises(ValueError, match="per_peer"):
        Reassembler(per_peer_max_bytes=10, total_max_bytes=5)
