"""Abuse limits as pure logic: token buckets, quotas, admission and per-IP keys."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.relay.limits import (
    AdmissionControl,
    Limits,
    Quota,
    Refusal,
    TokenBucket,
    ip_key,
    quota_refusal,
)
from pigeon.relay.protocol import ErrorCode


def test_bucket_spends_its_burst_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.5) == pytest.approx(0.5)


def test_bucket_never_holds_more_than_its_burst() -> None:
    bucket = TokenBucket(rate_per_s=100.0, burst=2, now=0.0)
    bucket.take(0.0, 2)
    assert bucket.is_full(1000.0)
    assert bucket.take(1000.0, 2) == 0.0
    assert bucket.take(1000.0) > 0


def test_cost_above_the_burst_can_never_pass() -> None:
    assert TokenBucket(rate_per_s=1.0, burst=10, now=0.0).take(0.0, 11) == float("inf")


@given(
    st.floats(0.1, 1000),
    st.integers(1, 100),
    st.lists(st.tuples(st.floats(0, 10), st.floats(0.1, 5)), max_size=50),
)
def test_bucket_admits_no_more_than_burst_plus_rate_times_time(
    rate: float, burst: int, steps: list[tuple[float, float]]
) -> None:
    bucket = TokenBucket(rate, burst, now=0.0)
    now = spent = 0.0
    for gap, cost in steps:
        now += gap
        if bucket.take(now, cost) == 0.0:
            spent += cost
    assert spent <= burst + rate * now + 1e-6


def test_quota_order_and_edges() -> None:
    quota = Quota(mailbox_max_envelopes=2, mailbox_max_bytes=100, relay_max_bytes=1000)
    assert quota_refusal(quota, 1, 50, 500, 50) is None
    assert quota_refusal(quota, 2, 0, 0, 1) is ErrorCode.MAILBOX_FULL
    assert quota_refusal(quota, 0, 50, 0, 51) is ErrorCode.MAILBOX_BYTES_FULL
    assert quota_refusal(quota, 0, 0, 990, 11) is ErrorCode.RELAY_FULL


def test_admission_caps_total_and_per_ip_connections() -> None:
    control = AdmissionControl(Limits(max_connections=3, max_connections_per_ip=2))
    for _ in range(3):
        assert control.open() is None
    assert control.open() == Refusal(ErrorCode.TOO_MANY_CONNECTIONS)
    assert control.connections == 3
    control.close()
    assert control.open() is None
    assert control.admit("a", 0.0) is None
    assert control.admit("a", 0.0) is None
    assert control.admit("a", 0.0) == Refusal(ErrorCode.TOO_MANY_IP_CONNECTIONS)
    control.release("a")
    assert control.admit("a", 0.0) is None


@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.floats(0, 100)), max_size=300))
def test_address_state_never_exceeds_its_cap(arrivals: list[tuple[int, float]]) -> None:
    control = AdmissionControl(Limits(max_tracked_ips=16))
    now = 0.0
    for prefix, step in arrivals:
        now += step
        address = str(ipaddress.IPv6Address(prefix << 64 | 1))
        refusal = control.admit(ip_key(address), now)
        assert control.tracked_ips() <= 16
        if refusal is None:
            control.release(ip_key(address))


def test_a_full_address_table_refuses_new_addresses_until_idle_ones_go() -> None:
    control = AdmissionControl(Limits(max_tracked_ips=2, ip_connects_per_s=1, ip_connect_burst=1))
    assert control.admit("a", 0.0) is None
    assert control.admit("b", 0.0) is None
    refusal = control.admit("c", 0.0)
    assert refusal is not None
    assert refusal.code is ErrorCode.TOO_MANY_CONNECTIONS
    assert control.tracked_ips() == 2  # no state was made for "c"
    control.release("a")
    assert control.admit("c", 100.0) is None  # "a" went idle and was swept
    assert control.tracked_ips() == 2


def test_admission_limits_connect_rate_per_ip() -> None:
    control = AdmissionControl(Limits(ip_connect_burst=1, ip_connects_per_s=1.0))
    assert control.admit("a", 0.0) is None
    refusal = control.admit("a", 0.0)
    assert refusal is not None
    assert refusal.code is ErrorCode.CONNECT_RATE_LIMITED
    assert refusal.retry_after_ms() == 1000
    assert control.admit("b", 0.0) is None


def test_deposits_are_charged_by_count_and_bytes() -> None:
    limits = Limits(ip_deposit_burst=2, ip_deposits_per_s=1, ip_deposit_byte_burst=100)
    control = AdmissionControl(limits)
    assert control.deposit("a", 10, 0.0) is None
    assert control.deposit("a", 10, 0.0) is None
    assert control.deposit("a", 10, 0.0) == Refusal(ErrorCode.IP_RATE_LIMITED, 1.0)
    assert control.deposit("b", 101, 0.0) == Refusal(ErrorCode.IP_RATE_LIMITED, float("inf"))


def test_idle_ips_are_forgotten_once_their_buckets_refill() -> None:
    control = AdmissionControl(Limits(ip_connects_per_s=1, ip_connect_burst=1))
    control.admit("a", 0.0)
    assert control.forget_idle(100.0) == 0  # still connected
    control.release("a")
    assert control.forget_idle(0.5) == 0  # bucket not yet full
    assert control.forget_idle(100.0) == 1
    assert control.tracked_ips() == 0


def test_release_of_an_unknown_ip_changes_nothing() -> None:
    control = AdmissionControl(Limits())
    control.release("nobody")
    assert control.connections == 0


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("unknown", "unknown"),
    ],
)
def test_ip_keys(address: str, key: str) -> None:
    assert ip_key(address) == key


def test_retry_after_rounds_up_and_saturates() -> None:
    assert Refusal(ErrorCode.RATE_LIMITED, 0.0011).retry_after_ms() == 2
    assert Refusal(ErrorCode.RATE_LIMITED, float("inf")).retry_after_ms() == 2**32 - 1
    assert Refusal(ErrorCode.RATE_LIMITED, 1e12).retry_after_ms() == 2**32 - 1
