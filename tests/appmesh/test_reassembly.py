"""Reassembly: the app's caps (256 KiB, 64 pending, 16 sources), staleness and byte caps."""

import pytest

from pigeon.appmesh.errors import MessageTooLarge
from pigeon.appmesh.fragment import Fragment, decode_fragment, split
from pigeon.appmesh.reassembly import MAX_MESSAGE_BYTES, Reassembler


def _frags(message: bytes, message_id: int = 1, size: int = 150) -> list[Fragment]:
    return [decode_fragment(frame) for frame in split(message, message_id, size)]


def test_out_of_order_and_duplicated_fragments_reassemble_once() -> None:
    message = bytes(range(256)) * 3
    frags = _frags(message)
    reassembler = Reassembler()
    order = [f for f in reversed(frags[1:]) for _ in range(2)] + [frags[0]]
    outputs = [reassembler.add("a", f, 0.0) for f in order]
    assert outputs[:-1] == [None] * (len(order) - 1)
    assert outputs[-1] == message
    assert reassembler.pending_count() == 0
    assert reassembler.bytes_held == 0


def test_sources_do_not_mix() -> None:
    one, two = _frags(b"x" * 300), _frags(b"y" * 300)
    reassembler = Reassembler()
    assert reassembler.add("a", one[0], 0.0) is None
    assert reassembler.add("b", two[1], 0.0) is None
    assert reassembler.add("a", one[1], 0.0) == b"x" * 300


def test_a_reused_id_with_another_count_starts_over() -> None:
    reassembler = Reassembler()
    assert reassembler.add("a", Fragment(1, 0, 3, b"\xaa"), 0.0) is None
    assert reassembler.add("a", Fragment(1, 0, 2, b"\xbb"), 0.0) is None
    assert reassembler.add("a", Fragment(1, 1, 2, b"\xcc"), 0.0) == b"\xbb\xcc"


def test_single_fragment_discards_a_partial_with_its_id() -> None:
    reassembler = Reassembler()
    reassembler.add("a", Fragment(4, 0, 2, b"\x01"), 0.0)
    assert reassembler.add("a", Fragment(4, 0, 1, b"whole"), 0.0) == b"whole"
    assert reassembler.pending_count() == 0
    assert reassembler.bytes_held == 0


def test_message_over_the_cap_is_refused_and_forgotten() -> None:
    reassembler = Reassembler(max_message_bytes=200)
    reassembler.add("a", Fragment(7, 0, 2, bytes(150)), 0.0)
    with pytest.raises(MessageTooLarge):
        reassembler.add("a", Fragment(7, 1, 2, bytes(150)), 0.0)
    assert reassembler.pending_count() == 0
    with pytest.raises(MessageTooLarge):
        reassembler.add("a", Fragment(8, 0, 1, bytes(201)), 0.0)


def test_default_cap_is_256_kib() -> None:
    assert Reassembler().max_message_bytes == MAX_MESSAGE_BYTES == 262_144


def test_pending_is_capped_oldest_first() -> None:
    reassembler = Reassembler(max_pending=4)
    for message_id in range(10):
        reassembler.add("a", Fragment(message_id, 0, 2, b"\x01"), 0.0)
    assert reassembler.pending_count() == 4
    assert reassembler.evicted == 6
    assert reassembler.add("a", Fragment(9, 1, 2, b"\x02"), 0.0) == b"\x01\x02"
    assert reassembler.add("a", Fragment(0, 1, 2, b"\x02"), 0.0) is None  # 0 was evicted


def test_sources_are_capped_least_recently_used_first() -> None:
    reassembler = Reassembler(max_sources=2)
    reassembler.add("a", Fragment(1, 0, 2, b"a"), 0.0)
    reassembler.add("b", Fragment(1, 0, 2, b"b"), 0.0)
    reassembler.add("a", Fragment(2, 0, 2, b"a"), 0.0)  # a is now the most recent
    reassembler.add("c", Fragment(1, 0, 2, b"c"), 0.0)  # b goes
    assert reassembler.add("a", Fragment(1, 1, 2, b"!"), 0.0) == b"a!"
    assert reassembler.add("b", Fragment(1, 1, 2, b"!"), 0.0) is None


def test_source_byte_cap_evicts_older_partials_then_refuses() -> None:
    reassembler = Reassembler(max_message_bytes=1000, max_source_bytes=300)
    reassembler.add("a", Fragment(1, 0, 3, bytes(200)), 0.0)
    reassembler.add("a", Fragment(2, 0, 3, bytes(200)), 0.0)  # pushes message 1 out
    assert reassembler.bytes_held == 200
    assert reassembler.evicted == 1
    with pytest.raises(MessageTooLarge):
        reassembler.add("a", Fragment(2, 1, 3, bytes(200)), 0.0)
    assert reassembler.bytes_held == 0


def test_idle_partials_expire_and_active_ones_stay() -> None:
    reassembler = Reassembler(timeout_s=15.0)
    reassembler.add("a", Fragment(1, 0, 3, b"x"), 0.0)
    reassembler.add("b", Fragment(1, 0, 3, b"y"), 0.0)
    reassembler.add("b", Fragment(1, 1, 3, b"y"), 10.0)
    assert reassembler.expire(14.9) == 0
    assert reassembler.expire(15.0) == 1
    assert reassembler.pending_count() == 1
    assert reassembler.add("b", Fragment(1, 2, 3, b"y"), 16.0) == b"yyy"


def test_drop_forgets_a_source() -> None:
    reassembler = Reassembler()
    reassembler.add("a", Fragment(1, 0, 2, b"x"), 0.0)
    reassembler.drop("a")
    assert reassembler.bytes_held == 0
    assert reassembler.add("a", Fragment(1, 1, 2, b"y"), 0.0) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"max_message_bytes": 0}, {"max_pending": 0}, {"max_sources": 0}, {"timeout_s": 0.0}],
)
def test_caps_must_be_positive(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="positive"):
        Reassembler(**kwargs)  # type: ignore[arg-type]
