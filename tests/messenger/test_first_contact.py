"""The first-contact budget: per source and per path token buckets, memory bounded."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.messenger.first_contact import (
    MESH,
    FirstContactBudget,
    FirstContactPolicy,
    Source,
    relay_source,
)

POLICY = FirstContactPolicy(
    source_per_s=0.5, source_burst=3.0, path_per_s=1.0, path_burst=5.0, max_sources=4
)
SOURCES = [MESH, relay_source("ws://a/v1"), relay_source("ws://b/v1"), relay_source("ws://c/v1")]

calls = st.lists(
    st.tuples(st.sampled_from(SOURCES), st.floats(min_value=0.0, max_value=1.0)),
    max_size=200,
)


@given(calls)
def test_no_source_and_no_path_gets_more_than_its_burst_and_rate(
    steps: list[tuple[Source, float]],
) -> None:
    budget = FirstContactBudget(POLICY)
    now = 0.0
    by_source: Counter[Source] = Counter()
    by_path: Counter[str] = Counter()
    for source, gap in steps:
        now += gap
        if budget.allow(source, now):
            by_source[source] += 1
            by_path[source.path] += 1
    for count in by_source.values():
        assert count <= POLICY.source_burst + POLICY.source_per_s * now
    for count in by_path.values():
        assert count <= POLICY.path_burst + POLICY.path_per_s * now


def test_a_flooding_relay_leaves_the_mesh_and_the_other_relays_their_share() -> None:
    budget = FirstContactBudget(POLICY)
    flooder, other = SOURCES[1], SOURCES[2]
    assert sum(budget.allow(flooder, 0.0) for _ in range(100)) == POLICY.source_burst
    assert budget.allow(other, 0.0)  # the relay path still had room
    assert sum(budget.allow(MESH, 0.0) for _ in range(100)) == POLICY.source_burst


def test_refills_with_time() -> None:
    budget = FirstContactBudget(POLICY)
    for _ in range(3):
        assert budget.allow(MESH, 0.0)
    assert not budget.allow(MESH, 0.0)
    assert budget.allow(MESH, 2.0)  # 0.5 per second


def test_policy_refuses_non_positive_settings() -> None:
    with pytest.raises(ValueError):
        FirstContactPolicy(path_burst=0.0)
