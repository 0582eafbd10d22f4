"""The seen-cache, the custody store and the token bucket on their own."""

import pytest

from pigeon.appmesh.custody import Custody
from pigeon.appmesh.ratelimit import TokenBucket
from pigeon.appmesh.seen import PHONE_SEEN_IDS, SEEN_MAX_ENTRIES, SEEN_TTL_S, SeenCache


def test_seen_cache_outlasts_the_phones() -> None:
    assert SEEN_MAX_ENTRIES >= 64 * PHONE_SEEN_IDS
    with pytest.raises(ValueError, match="1,024"):
        SeenCache(max_entries=PHONE_SEEN_IDS)


def test_seen_cache_remembers_for_its_ttl_then_forgets() -> None:
    cache = SeenCache(ttl_s=10.0, max_entries=2000)
    assert cache.add(b"a", 0.0)
    assert not cache.add(b"a", 9.9)
    assert cache.add(b"a", 10.0)  # expired though not purged: a new sighting
    cache.add(b"b", 11.0)
    cache.expire(20.0)
    assert b"a" not in cache
    assert b"b" in cache
    cache.expire(21.0)
    assert len(cache) == 0


def test_seen_cache_count_bound_evicts_oldest_and_counts() -> None:
    cache = SeenCache(ttl_s=SEEN_TTL_S, max_entries=PHONE_SEEN_IDS + 1)
    for number in range(PHONE_SEEN_IDS + 3):
        cache.add(number.to_bytes(16, "big"), 0.0)
    assert len(cache) == PHONE_SEEN_IDS + 1
    assert cache.evictions == 2
    assert bytes(16) not in cache


def test_custody_offers_each_packet_once_per_link_within_the_window() -> None:
    custody = Custody(window_s=60.0)
    assert custody.hold(b"p1", b"data", {"src"}, 0.0)
    assert not custody.hold(b"p1", b"data", {"src"}, 1.0)
    assert [pid for pid, _ in custody.owed("src", 1.0)] == []
    owed = list(custody.owed("new", 59.9))
    assert [pid for pid, _ in owed] == [b"p1"]
    owed[0][1].sent_to.add("new")
    assert list(custody.owed("new", 30.0)) == []
    assert list(custody.owed("other", 60.0)) == []  # the window is over
    assert custody.expire(60.0) == 1
    assert len(custody) == 0


def test_custody_caps_count_and_bytes_oldest_first() -> None:
    custody = Custody(window_s=60.0, max_packets=2, max_bytes=10)
    custody.hold(b"1", b"aaaa", set(), 0.0)
    custody.hold(b"2", b"bbbb", set(), 0.0)
    custody.hold(b"3", b"cccc", set(), 0.0)
    assert [pid for pid, _ in custody.owed("x", 0.0)] == [b"2", b"3"]
    custody.hold(b"4", b"dddddddd", set(), 0.0)  # over both caps: 2 and 3 go
    assert [pid for pid, _ in custody.owed("x", 0.0)] == [b"4"]
    assert custody.evicted == 3
    assert not custody.hold(b"5", bytes(11), set(), 0.0)


def test_token_bucket_bursts_then_refills() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=3.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5)
    assert not bucket.take(0.5)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    with pytest.raises(ValueError, match="rate_per_s"):
        TokenBucket(0.0, 1.0, 0.0)
