"""Recipient tags: the derivation vector, daily rotation and the clock-skew window."""

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.mesh.tags import (
    SECONDS_PER_DAY,
    TAG_LABEL,
    announced_tag,
    day_number,
    derive_tag,
    tags_for_window,
)

KEY = bytes(range(32))
# Cross-checked with: printf 'pigeon/tag/v1\x00\x00\x4e\x20' |
#   openssl dgst -sha256 -mac HMAC -macopt hexkey:000102...1f
VECTOR_DAY_20000 = bytes.fromhex("4c7a4db130e81caca39994b4868df97c")

keys = st.binary(min_size=16, max_size=64)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)


def test_known_vector() -> None:
    assert derive_tag(KEY, 20_000) == VECTOR_DAY_20000
    assert derive_tag(KEY, 20_000, 8) == VECTOR_DAY_20000[:8]


@given(keys, st.integers(min_value=0, max_value=2**32 - 1))
def test_derivation_is_the_documented_hmac(key: bytes, day: int) -> None:
    mac = hmac.new(key, TAG_LABEL + day.to_bytes(4, "big"), hashlib.sha256).digest()
    assert derive_tag(key, day) == mac[:16]


@given(keys, st.integers(min_value=0, max_value=2**32 - 2), st.integers(min_value=8, max_value=16))
def test_tags_rotate_daily_and_truncate_to_a_prefix(key: bytes, day: int, length: int) -> None:
    tag = derive_tag(key, day, length)
    assert len(tag) == length
    assert tag == derive_tag(key, day)[:length]
    assert derive_tag(key, day + 1) != derive_tag(key, day)


def test_day_boundaries() -> None:
    assert day_number(0) == 0
    assert day_number(SECONDS_PER_DAY - 0.001) == 0
    assert day_number(SECONDS_PER_DAY) == 1
    assert day_number(1_700_000_000) == 19_675


@pytest.mark.parametrize("now", [-1.0, float("nan"), float("inf")])
def test_day_number_rejects_impossible_times(now: float) -> None:
    with pytest.raises(ValueError, match="time"):
        day_number(now)


@pytest.mark.parametrize(
    ("key", "day", "length", "fault"),
    [
        (bytes(15), 0, 16, "key"),
        (KEY, -1, 16, "day"),
        (KEY, 2**32, 16, "day"),
        (KEY, 0, 7, "length"),
        (KEY, 0, 17, "length"),
    ],
)
def test_derive_rejects_bad_arguments(key: bytes, day: int, length: int, fault: str) -> None:
    with pytest.raises(ValueError, match=fault):
        derive_tag(key, day, length)


def test_window_is_today_then_yesterday_then_tomorrow() -> None:
    now = 20_000 * SECONDS_PER_DAY + 5.0
    assert tags_for_window(KEY, now) == (
        derive_tag(KEY, 20_000),
        derive_tag(KEY, 19_999),
        derive_tag(KEY, 20_001),
    )
    assert tags_for_window(KEY, 0.0) == (derive_tag(KEY, 0), derive_tag(KEY, 1))
    assert tags_for_window(KEY, now, 8) == tuple(t[:8] for t in tags_for_window(KEY, now))


@given(times, st.floats(min_value=-SECONDS_PER_DAY + 1, max_value=SECONDS_PER_DAY - 1))
def test_clocks_less_than_a_day_apart_still_meet(sender_now: float, skew: float) -> None:
    recipient_now = max(0.0, sender_now + skew)
    sent_with = tags_for_window(KEY, sender_now)[0]
    assert sent_with in tags_for_window(KEY, recipient_now)


@given(keys, times)
def test_the_announced_tag_is_todays_and_never_announced_on_another_day(
    key: bytes, now: float
) -> None:
    assert announced_tag(key, now) == tags_for_window(key, now)[0]
    # The next day announces a tag this day's window serves only silently, and vice versa.
    assert announced_tag(key, now + SECONDS_PER_DAY) != announced_tag(key, now)
