"""Token buckets and per-neighbour limits: bursts, refill, bounds, memory and counters."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.mesh.ratelimit import (
    LimiterPolicy,
    LimitKind,
    NeighbourLimiter,
    ThrottleCounts,
    TokenBucket,
)


def test_bucket_starts_full_and_refuses_beyond_its_burst() -> None:
    bucket = TokenBucket(rate_per_s=1.0, burst=3.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not bucket.take(0.5)
    assert bucket.take(1.0)
    assert not bucket.take(1.0)


def test_bucket_refills_at_its_rate_up_to_the_burst() -> None:
    bucket = TokenBucket(rate_per_s=10.0, burst=5.0)
    assert bucket.take(0.0, 5)
    assert bucket.take(0.3, 3)
    assert not bucket.take(0.3, 0.5)
    assert bucket.take(100.0, 5)
    assert not bucket.take(100.0, 0.1)


def test_a_refusal_spends_nothing_and_oversized_requests_never_pass() -> None:
    bucket = TokenBucket(rate_per_s=1.0, burst=2.0)
    assert not bucket.take(0.0, 3)
    assert bucket.take(0.0, 2)


def test_time_running_backwards_adds_no_tokens() -> None:
    bucket = TokenBucket(rate_per_s=1.0, burst=1.0)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert not bucket.take(10.5)
    assert bucket.take(11.0)


@given(
    st.floats(min_value=0.1, max_value=100),
    st.floats(min_value=1, max_value=50),
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=2), st.floats(min_value=0.01, max_value=10)),
        max_size=100,
    ),
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: float, takes: list[tuple[float, float]]
) -> None:
    bucket, now, spent = TokenBucket(rate, burst), 0.0, 0.0
    for step, amount in takes:
        now += step
        if bucket.take(now, amount):
            spent += amount
        assert spent <= burst + rate * now + 1e-6


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (1, 0), (-1, 1)])
def test_bucket_rejects_non_positive_settings(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(rate, burst)


POLICY = LimiterPolicy(
    packets_per_s=1.0,
    packets_burst=2.0,
    bytes_per_s=100.0,
    bytes_burst=1000.0,
    handshakes_per_s=0.1,
    handshakes_burst=1.0,
    idle_s=60.0,
    max_neighbours=3,
)


def test_neighbours_and_kinds_have_separate_budgets() -> None:
    limiter = NeighbourLimiter(POLICY)
    assert limiter.allow("a", LimitKind.PACKETS, 2, 0.0)
    assert not limiter.allow("a", LimitKind.PACKETS, 1, 0.0)
    assert limiter.allow("b", LimitKind.PACKETS, 2, 0.0)
    assert limiter.allow("a", LimitKind.BYTES, 1000, 0.0)
    assert limiter.allow("a", LimitKind.HANDSHAKES, 1, 0.0)
    assert not limiter.allow("a", LimitKind.HANDSHAKES, 1, 5.0)
    assert limiter.allow("a", LimitKind.HANDSHAKES, 1, 10.0)


def test_refusals_are_counted_per_neighbour_and_in_total() -> None:
    limiter = NeighbourLimiter(POLICY)
    for _ in range(5):
        limiter.allow("flood", LimitKind.PACKETS, 1, 0.0)
    limiter.allow("flood", LimitKind.BYTES, 5000, 0.0)
    limiter.allow("calm", LimitKind.PACKETS, 1, 0.0)
    assert limiter.throttled("flood") == ThrottleCounts(packets=3, bytes=1)
    assert limiter.throttled("calm") == ThrottleCounts()
    assert limiter.throttled("unknown") == ThrottleCounts()
    assert limiter.throttled_peers() == {"flood": ThrottleCounts(packets=3, bytes=1)}
    assert limiter.totals == ThrottleCounts(packets=3, bytes=1)


def test_idle_neighbours_are_forgotten_but_totals_kept() -> None:
    limiter = NeighbourLimiter(POLICY)
    limiter.allow("a", LimitKind.PACKETS, 3, 0.0)
    limiter.allow("b", LimitKind.PACKETS, 1, 30.0)
    assert len(limiter) == 2
    limiter.allow("b", LimitKind.PACKETS, 1, 60.0)
    assert len(limiter) == 1
    assert limiter.throttled("a") == ThrottleCounts()
    assert limiter.totals == ThrottleCounts(packets=1)


def test_at_most_max_neighbours_are_remembered() -> None:
    limiter = NeighbourLimiter(POLICY)
    for number in range(10):
        limiter.allow(f"peer{number}", LimitKind.PACKETS, 1, float(number))
        assert len(limiter) <= POLICY.max_neighbours
    # Least recently active go first: touching peer7 keeps it over peer8.
    limiter.allow("peer7", LimitKind.PACKETS, 1, 10.0)
    limiter.allow("new", LimitKind.PACKETS, 1, 10.0)
    assert limiter.allow("peer7", LimitKind.PACKETS, 1, 10.0)
    assert not limiter.allow("peer7", LimitKind.PACKETS, 1, 10.0)  # its bucket was kept
    assert limiter.throttled("peer7") == ThrottleCounts(packets=1)
    assert len(limiter) == POLICY.max_neighbours


def test_policy_validation_and_defaults() -> None:
    with pytest.raises(ValueError, match="positive"):
        LimiterPolicy(max_neighbours=0)
    default = LimiterPolicy()
    assert default.rate_and_burst(LimitKind.BYTES) == (default.bytes_per_s, default.bytes_burst)
    assert default.handshakes_per_s < default.packets_per_s


def test_a_neighbour_in_a_burst_stays_active() -> None:
    # Repeated calls from one neighbour take a short path; it must still mark it active.
    limiter = NeighbourLimiter(POLICY)
    limiter.allow("a", LimitKind.BYTES, 1, 0.0)
    limiter.allow("a", LimitKind.BYTES, 1, 50.0)
    limiter.allow("a", LimitKind.PACKETS, 1, 55.0)
    limiter.allow("b", LimitKind.PACKETS, 1, 100.0)  # a was last active at 55: not idle
    assert len(limiter) == 2
    limiter.allow("b", LimitKind.PACKETS, 1, 115.0)  # now it is
    assert len(limiter) == 1
