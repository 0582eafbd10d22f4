"""How our mesh and the Pigeon app share an adapter's link slots."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.transport.base import FrameVerdict
from pigeon.transport.ble.eviction import EvictReason, Role
from pigeon.transport.ble.slots import (
    APP_SERVICE,
    BITCHAT_SERVICE,
    OWN_SERVICE,
    LinkSlots,
    SlotPlan,
)

SERVICES = (OWN_SERVICE, APP_SERVICE)
ALL_SERVICES = (OWN_SERVICE, APP_SERVICE, BITCHAT_SERVICE)


def test_each_service_keeps_its_reserve() -> None:
    plan = SlotPlan.split(4, 1, SERVICES)
    assert plan.reserved == {OWN_SERVICE: 1, APP_SERVICE: 1}
    # Nodes alone may take three of four slots: the fourth waits for a phone.
    assert plan.has_room(OWN_SERVICE, {OWN_SERVICE: 2, APP_SERVICE: 0})
    assert not plan.has_room(OWN_SERVICE, {OWN_SERVICE: 3, APP_SERVICE: 0})
    assert plan.has_room(APP_SERVICE, {OWN_SERVICE: 3, APP_SERVICE: 0})
    assert not plan.has_room(APP_SERVICE, {OWN_SERVICE: 3, APP_SERVICE: 1})


def test_without_the_app_our_service_has_every_slot() -> None:
    plan = SlotPlan.split(4, 1, (OWN_SERVICE,))
    assert plan.has_room(OWN_SERVICE, {OWN_SERVICE: 3})
    assert not plan.has_room(OWN_SERVICE, {OWN_SERVICE: 4})


def test_reserves_shrink_to_fit_a_small_total() -> None:
    assert SlotPlan.split(1, 2, SERVICES).reserved == {OWN_SERVICE: 0, APP_SERVICE: 0}
    assert SlotPlan.split(5, 9, SERVICES).reserved == {OWN_SERVICE: 2, APP_SERVICE: 2}


@pytest.mark.parametrize(
    ("total", "reserved"), [(0, {}), (2, {OWN_SERVICE: -1}), (2, {OWN_SERVICE: 2, APP_SERVICE: 1})]
)
def test_impossible_plans_are_refused(total: int, reserved: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        SlotPlan(total, reserved)


def test_bitchat_keeps_its_reserve_beside_ours_and_the_apps() -> None:
    plan = SlotPlan.split(4, 1, ALL_SERVICES)
    assert plan.reserved == {OWN_SERVICE: 1, APP_SERVICE: 1, BITCHAT_SERVICE: 1}
    # bitchat's phones alone take two of four slots: one waits for a node, one for an app phone
    assert plan.has_room(BITCHAT_SERVICE, {OWN_SERVICE: 0, APP_SERVICE: 0, BITCHAT_SERVICE: 1})
    assert not plan.has_room(BITCHAT_SERVICE, {OWN_SERVICE: 0, APP_SERVICE: 0, BITCHAT_SERVICE: 2})
    assert plan.has_room(OWN_SERVICE, {OWN_SERVICE: 0, APP_SERVICE: 0, BITCHAT_SERVICE: 2})
    assert plan.has_room(APP_SERVICE, {OWN_SERVICE: 1, APP_SERVICE: 0, BITCHAT_SERVICE: 2})
    # and nodes or app phones never take bitchat's reserve
    assert not plan.has_room(OWN_SERVICE, {OWN_SERVICE: 2, APP_SERVICE: 1, BITCHAT_SERVICE: 0})
    assert not plan.has_room(APP_SERVICE, {OWN_SERVICE: 1, APP_SERVICE: 2, BITCHAT_SERVICE: 0})
    assert plan.has_room(BITCHAT_SERVICE, {OWN_SERVICE: 2, APP_SERVICE: 1, BITCHAT_SERVICE: 0})


@given(
    st.integers(min_value=1, max_value=16),
    st.integers(min_value=0, max_value=8),
    st.sampled_from([SERVICES, ALL_SERVICES, (OWN_SERVICE, BITCHAT_SERVICE)]),
    st.lists(st.integers(min_value=0, max_value=2), max_size=40),
)
def test_greedy_takers_never_crowd_out_a_reserve(
    total: int, reserve: int, services: tuple[str, ...], picks: list[int]
) -> None:
    plan = SlotPlan.split(total, reserve, services)
    counts = dict.fromkeys(services, 0)
    for pick in picks:
        service = services[pick % len(services)]
        if plan.has_room(service, counts):
            counts[service] += 1
        assert sum(counts.values()) <= total
        for other in services:
            # whatever the others took, a service below its reserve can still link
            if counts[other] < plan.reserved[other]:
                assert plan.has_room(other, counts)


def test_link_slots_book_links_and_evict_through_their_service() -> None:
    now = [0.0]
    evicted: list[tuple[str, str, EvictReason]] = []
    slots = LinkSlots(SlotPlan.split(2, 1, SERVICES), clock=lambda: now[0])
    for service in SERVICES:
        slots.serve(service, lambda key, why, s=service: evicted.append((s, key, why)))
    assert slots.admit("node", OWN_SERVICE, Role.IT_DIALED, "N")
    assert not slots.can_admit(OWN_SERVICE, Role.IT_DIALED, "M")  # the other is the app's
    assert slots.admit("phone", APP_SERVICE, Role.IT_DIALED, "P")
    assert slots.counts() == {OWN_SERVICE: 1, APP_SERVICE: 1}
    slots.judge("phone", "P", FrameVerdict.USEFUL)
    slots.judge("node", "N", FrameVerdict.IGNORED)  # a duplicate: nothing useful
    now[0] = 61.0
    assert slots.admit("node2", OWN_SERVICE, Role.IT_DIALED, "N2")
    assert evicted == [(OWN_SERVICE, "node", EvictReason.ROOM)]
    for _ in range(5):
        slots.judge("phone", "P", FrameVerdict.REFUSED)
    assert evicted[-1] == (APP_SERVICE, "phone", EvictReason.ABUSE)
    assert slots.banned("P")
    slots.closed("node2")
    assert slots.counts() == {OWN_SERVICE: 0, APP_SERVICE: 0}
