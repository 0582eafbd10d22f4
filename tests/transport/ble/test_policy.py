"""The sans-IO policies: identifier rotation, tie-break, reconnect backoff, write pacing."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from pigeon.transport.ble.gatt import IDENTIFIER_LEN, LINK_TAG_LEN
from pigeon.transport.ble.policy import (
    MAX_ROTATION_S,
    MIN_ROTATION_S,
    BackoffParams,
    IdentifierSchedule,
    PacerParams,
    ReconnectBackoff,
    WritePacer,
    keep_incoming,
    new_link_tag,
    patience_s,
    should_connect,
)

identifiers = st.binary(min_size=IDENTIFIER_LEN, max_size=IDENTIFIER_LEN)


@given(st.integers(0, 2**32), st.lists(st.floats(0, 3600), min_size=1, max_size=50))
def test_identifier_rotates_within_fifteen_minutes(seed: int, steps: list[float]) -> None:
    schedule = IdentifierSchedule(random.Random(seed), 0.0)
    now, since, current = 0.0, 0.0, schedule.current(0.0)
    for step in steps:
        now += step
        new = schedule.current(now)
        if new != current:
            since, current = now, new
        assert schedule.rotate_at - since <= MAX_ROTATION_S
        assert len(new) == IDENTIFIER_LEN


def test_identifier_schedule_is_deterministic_and_jittered() -> None:
    one = IdentifierSchedule(random.Random(1), 0.0)
    two = IdentifierSchedule(random.Random(1), 0.0)
    assert one.current(0.0) == two.current(0.0)
    assert MIN_ROTATION_S <= one.rotate_at < MAX_ROTATION_S
    first, at = one.current(0.0), one.rotate_at
    assert one.current(at - 0.001) == first
    assert one.current(at) != first
    assert one.rotate_at - at >= MIN_ROTATION_S


def test_identifier_never_repeats_back_to_back() -> None:
    class Stuck(random.Random):
        calls = 0

        def randbytes(self, n: int) -> bytes:
            self.calls += 1
            return bytes(n) if self.calls < 4 else b"\x01" * n

    schedule = IdentifierSchedule(Stuck(), 0.0)
    assert schedule.current(0.0) == bytes(IDENTIFIER_LEN)
    assert schedule.current(MAX_ROTATION_S) == b"\x01" * IDENTIFIER_LEN


@given(identifiers, identifiers)
def test_exactly_one_side_dials(a: bytes, b: bytes) -> None:
    if a == b:
        assert not should_connect(a, b)
    else:
        assert should_connect(a, b) != should_connect(b, a)


@given(identifiers, identifiers)
def test_both_ends_keep_the_same_duplicate(a: bytes, b: bytes) -> None:
    # Links: L1 with a as central, L2 with b as central. Node a judges L2's HELLO, node b L1's.
    a_keeps_l2 = keep_incoming(a, b, linked_as_central=True)
    b_keeps_l1 = keep_incoming(b, a, linked_as_central=True)
    if a != b:
        assert a_keeps_l2 != b_keeps_l1
        assert b_keeps_l1 == (a < b)
    assert keep_incoming(a, b, linked_as_central=False)


def test_link_tags_are_random_and_sized() -> None:
    rng = random.Random(3)
    tags = {new_link_tag(rng) for _ in range(50)}
    assert len(tags) == 50
    assert all(len(t) == LINK_TAG_LEN for t in tags)


@given(st.integers(0, 2**32), st.integers(1, 40))
def test_backoff_grows_within_bounds_and_resets(seed: int, failures: int) -> None:
    params = BackoffParams(base_s=1.0, max_s=60.0)
    backoff = ReconnectBackoff(random.Random(seed), params)
    now = 0.0
    for n in range(failures):
        assert backoff.ready("dev", now)
        delay = backoff.failed("dev", now)
        assert params.base_s / 2 <= delay <= min(params.max_s, params.base_s * 2**n)
        assert not backoff.ready("dev", now + delay - 0.001)
        assert backoff.ready("other", now)
        now += delay
    backoff.succeeded("dev")
    assert backoff.ready("dev", 0.0)


@given(
    st.floats(100, 100_000),
    st.floats(50, 10_000),
    st.lists(st.tuples(st.floats(0, 0.5), st.integers(1, 600)), min_size=1, max_size=80),
)
def test_pacer_never_exceeds_rate_plus_burst(
    rate: float, burst: float, writes: list[tuple[float, int]]
) -> None:
    pacer = WritePacer(PacerParams(rate, burst), 0.0)
    now, sent = 0.0, 0.0
    for gap, size in writes:
        now += gap
        now += pacer.delay_s(size, now)
        assert pacer.delay_s(size, now) <= 1e-9
        pacer.spend(size, now)
        sent += min(size, burst)
        assert sent <= burst + rate * now + 1e-6


def test_pacer_spaces_a_stream() -> None:
    pacer = WritePacer(PacerParams(rate_bytes_s=1000.0, burst_bytes=500.0), 0.0)
    now = 0.0
    for _ in range(2):
        assert pacer.delay_s(250, now) == 0.0
        pacer.spend(250, now)
    assert abs(pacer.delay_s(250, now) - 0.25) < 1e-9


@given(st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4))
def test_patience_is_bounded_and_differs_by_side(a: bytes, b: bytes) -> None:
    ours, theirs = patience_s(a, b, 10.0, 5.0), patience_s(b, a, 10.0, 5.0)
    assert 10.0 <= ours <= 15.0
    assert ours == patience_s(a, b, 10.0, 5.0)  # the same every time it is asked
    assert theirs == patience_s(b, a, 10.0, 5.0)


def test_two_sides_that_both_wait_give_up_apart() -> None:
    rng = random.Random(3)
    pairs = [(rng.randbytes(4), rng.randbytes(4)) for _ in range(200)]
    apart = [abs(patience_s(a, b, 10.0, 5.0) - patience_s(b, a, 10.0, 5.0)) for a, b in pairs]
    assert sum(gap > 0.5 for gap in apart) > 150  # most pairs at least half a second apart
