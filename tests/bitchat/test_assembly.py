"""Reassembly of fragments addressed to the node: any order, once, bounded in count, size, time."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.bitchat.assembly import FragmentAssembler
from pigeon.bitchat.fragment import FragmentHeader

SENDER = b"\x11" * 8
NOW = 1_800_000_000.0


def header(index: int, total: int, fid: bytes = b"\x01" * 8, kind: int = 0x04) -> FragmentHeader:
    return FragmentHeader(fid, index, total, kind)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.integers(50, 600), st.randoms())
def test_any_order_gives_the_original_once(whole: bytes, chunk: int, rng: object) -> None:
    parts = [whole[i : i + chunk] for i in range(0, len(whole), chunk)]
    order = list(range(len(parts)))
    rng.shuffle(order)  # type: ignore[attr-defined]
    assembler = FragmentAssembler()
    results = [assembler.add(SENDER, header(i, len(parts)), parts[i], NOW) for i in order]
    assert results[-1] == whole
    assert all(r is None for r in results[:-1])
    assert len(assembler) == 0


def test_duplicate_index_and_contradicting_total() -> None:
    assembler = FragmentAssembler()
    assert assembler.add(SENDER, header(0, 2), b"a", NOW) is None
    assert assembler.add(SENDER, header(0, 2), b"X", NOW) is None  # a repeat is ignored
    assert assembler.add(SENDER, header(1, 3), b"b", NOW) is None  # contradiction: dropped
    assert len(assembler) == 0


def test_bounds_on_count_size_and_time() -> None:
    assembler = FragmentAssembler(max_assemblies=2, max_packet_bytes=12, max_buffered_bytes=15)
    for n in range(3):
        assembler.add(SENDER, header(0, 2, bytes((n,)) * 8), b"1234", NOW)
    assert len(assembler) == 2  # the oldest went
    assembler.add(SENDER, header(0, 3, b"\x09" * 8), b"1234567890123", NOW)
    assert len(assembler) == 2  # over the packet cap: not kept
    assembler.add(SENDER, header(0, 2, b"\x0a" * 8), b"123456789012", NOW)
    assert len(assembler) == 1  # over the buffered bytes: oldest dropped until under
    assembler.expire(NOW + 31)
    assert len(assembler) == 0
