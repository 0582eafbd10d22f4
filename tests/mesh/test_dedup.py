"""Seen-cache: exact expiry, the size bound, agreement with a model, and snapshots."""

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.mesh.dedup import SEEN_CACHE_MAX_ENTRIES, SEEN_CACHE_TTL_S, SeenCache
from pigeon.mesh.errors import CorruptState

A, B, C = b"a" * 16, b"b" * 16, b"c" * 16


def test_second_sight_is_seen() -> None:
    cache = SeenCache(ttl_s=10.0, max_entries=10)
    assert not cache.check_and_add(A, 0.0)
    assert cache.check_and_add(A, 1.0)
    assert not cache.check_and_add(B, 1.0)
    assert len(cache) == 2


def test_expiry_is_exact() -> None:
    cache = SeenCache(ttl_s=10.0, max_entries=10)
    cache.check_and_add(A, 0.0)
    assert cache.check_and_add(A, 9.999)
    assert not cache.check_and_add(A, 10.0)  # forgotten, and remembered afresh
    assert cache.check_and_add(A, 19.9)
    assert not cache.check_and_add(A, 20.0)


def test_expired_entries_are_purged_from_memory() -> None:
    cache = SeenCache(ttl_s=10.0, max_entries=100)
    for number in range(50):
        cache.check_and_add(bytes([number]), float(number) / 10)
    cache.check_and_add(C, 100.0)
    assert len(cache) == 1


def test_size_bound_evicts_oldest_first() -> None:
    cache = SeenCache(ttl_s=100.0, max_entries=2)
    cache.check_and_add(A, 0.0)
    cache.check_and_add(B, 1.0)
    cache.check_and_add(C, 2.0)
    assert len(cache) == 2
    assert cache.evictions == 1
    assert cache.check_and_add(C, 3.0)
    assert cache.check_and_add(B, 3.0)
    assert not cache.check_and_add(A, 3.0)


class Model:
    """The specification, slowly: ids seen within ttl, newest max_entries by last insertion."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self.seen: list[tuple[bytes, float]] = []

    def check_and_add(self, packet_id: bytes, now: float) -> bool:
        live = [(i, t) for i, t in self.seen if t > now - self.ttl_s]
        if any(i == packet_id for i, _ in live):
            self.seen = live
            return True
        self.seen = [*live, (packet_id, now)][-self.max_entries :]
        return False


operations = st.lists(
    st.tuples(st.sampled_from([A, B, C, b"d", b"e"]), st.floats(min_value=0, max_value=4)),
    max_size=60,
)


@given(operations, st.integers(min_value=1, max_value=4))
def test_agrees_with_the_model(ops: list[tuple[bytes, float]], max_entries: int) -> None:
    cache, model, now = SeenCache(5.0, max_entries), Model(5.0, max_entries), 0.0
    for packet_id, step in ops:
        now += step
        assert cache.check_and_add(packet_id, now) == model.check_and_add(packet_id, now)
        assert len(cache) <= max_entries


@given(operations, operations)
def test_snapshot_round_trip_keeps_every_answer(
    before: list[tuple[bytes, float]], after: list[tuple[bytes, float]]
) -> None:
    cache, now = SeenCache(5.0, 3), 0.0
    for packet_id, step in before:
        now += step
        cache.check_and_add(packet_id, now)
    restored = SeenCache.from_bytes(cache.to_bytes(), 5.0, 3)
    assert restored.to_bytes() == cache.to_bytes()
    for packet_id, step in after:
        now += step
        assert restored.check_and_add(packet_id, now) == cache.check_and_add(packet_id, now)


def test_snapshot_layout_and_smaller_limit() -> None:
    cache = SeenCache(100.0, 10)
    cache.check_and_add(A, 1.0)
    cache.check_and_add(b"xy", 2.5)
    data = cache.to_bytes()
    assert data == (
        struct.pack(">BI", 1, 2)
        + b"\x10"
        + A
        + struct.pack(">d", 1.0)
        + b"\x02xy"
        + struct.pack(">d", 2.5)
    )
    smaller = SeenCache.from_bytes(data, 100.0, 1)
    assert len(smaller) == 1
    assert smaller.check_and_add(b"xy", 3.0)
    assert not smaller.check_and_add(A, 3.0)


def test_snapshot_refuses_ids_longer_than_255_bytes() -> None:
    cache = SeenCache()
    cache.check_and_add(bytes(256), 0.0)
    with pytest.raises(ValueError, match="too long"):
        cache.to_bytes()


def _snapshot() -> bytes:
    cache = SeenCache()
    cache.check_and_add(A, 1.0)
    cache.check_and_add(B, 2.0)
    return cache.to_bytes()


@pytest.mark.parametrize(
    ("data", "fault"),
    [
        (b"", "header"),
        (b"\x01\x00", "header"),
        (b"\x02" + _snapshot()[1:], "version"),
        (_snapshot()[:-1], "truncated at entry 1"),
        (_snapshot()[:5], "truncated at entry 0"),
        (_snapshot()[:6], "truncated at entry 0"),
        (_snapshot() + b"\x00", "trailing"),
        (struct.pack(">BI", 1, 1) + b"\x01x" + struct.pack(">d", math.nan), "non-finite"),
        (struct.pack(">BI", 1, 1) + b"\x01x" + struct.pack(">d", math.inf), "non-finite"),
    ],
)
def test_corrupt_snapshots_are_named(data: bytes, fault: str) -> None:
    with pytest.raises(CorruptState, match=fault):
        SeenCache.from_bytes(data)


@given(st.binary(max_size=200))
def test_any_bytes_raise_only_corrupt_state(data: bytes) -> None:
    try:
        cache = SeenCache.from_bytes(data)
    except CorruptState:
        return
    assert len(cache) <= SEEN_CACHE_MAX_ENTRIES


def test_defaults_and_bad_limits() -> None:
    assert SEEN_CACHE_TTL_S == 86_400
    with pytest.raises(ValueError, match="ttl_s"):
        SeenCache(ttl_s=0)
    with pytest.raises(ValueError, match="max_entries"):
        SeenCache(max_entries=0)
