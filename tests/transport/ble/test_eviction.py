"""The eviction policy of an adapter's link slots: idle, silent and abusive links give way."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.transport.ble.eviction import (
    MAX_TRACKED_ADDRESSES,
    Admission,
    Eviction,
    EvictionParams,
    EvictionPolicy,
    EvictReason,
    LinkRecord,
    Role,
)
from pigeon.transport.ble.slots import APP_SERVICE, BITCHAT_SERVICE, OWN_SERVICE, SlotPlan

ALL = (OWN_SERVICE, APP_SERVICE, BITCHAT_SERVICE)
PARAMS = EvictionParams()
IDLE = PARAMS.idle_s


def _policy(total: int = 2, services: tuple[str, ...] = (OWN_SERVICE,)) -> EvictionPolicy:
    return EvictionPolicy(SlotPlan.split(total, 1, services))


def _admit(policy: EvictionPolicy, key: str, now: float, role: Role = Role.IT_DIALED) -> Admission:
    return policy.admit(key, OWN_SERVICE, role, "addr-" + key, now)


def test_an_idle_link_gives_way_only_to_a_newcomer() -> None:
    policy = _policy()
    assert _admit(policy, "silent", 0.0) == Admission(True)
    assert _admit(policy, "busy", 0.0) == Admission(True)
    policy.useful("busy", 50.0)
    # nobody is idle yet: a central that dialed us waits
    assert _admit(policy, "early", IDLE - 1) == Admission(False)
    assert policy.due(IDLE + 1) == []  # idle alone is no reason to go
    admission = _admit(policy, "late", IDLE + 1)
    assert admission == Admission(True, Eviction("silent", OWN_SERVICE, EvictReason.ROOM))
    assert set(policy.links) == {"busy", "late"}


def test_a_link_silent_past_the_hard_limit_goes_by_itself() -> None:
    policy = _policy()
    _admit(policy, "a", 0.0)
    _admit(policy, "b", 0.0)
    policy.useful("b", 100.0)
    hard = PARAMS.hard_idle_s
    assert policy.due(hard - 1) == []
    assert policy.due(hard) == [Eviction("a", OWN_SERVICE, EvictReason.HARD_IDLE)]
    assert policy.due(100.0 + hard) == [Eviction("b", OWN_SERVICE, EvictReason.HARD_IDLE)]
    assert policy.links == {}


def test_a_neighbour_that_relayed_outranks_a_silent_one() -> None:
    policy = _policy()
    _admit(policy, "relayer", 0.0)
    _admit(policy, "silent", 10.0)
    policy.useful("relayer", 1.0)
    # both quiet for over idle_s: the silent one goes, although it came up later
    admission = _admit(policy, "new", 200.0)
    assert admission.evict == Eviction("silent", OWN_SERVICE, EvictReason.ROOM)
    policy.useful("new", 250.0)
    # the relayer keeps its slot until relayer_idle_s
    assert _admit(policy, "newer", 1.0 + PARAMS.relayer_idle_s - 1).admitted is False
    later = _admit(policy, "newest", 1.0 + PARAMS.relayer_idle_s)
    assert later.evict == Eviction("relayer", OWN_SERVICE, EvictReason.ROOM)


def test_a_neighbour_we_dial_takes_the_slot_of_a_fresh_silent_central() -> None:
    policy = _policy(1)
    _admit(policy, "squatter", 0.0)
    assert policy.room(OWN_SERVICE, Role.IT_DIALED, "x", 1.0) == Admission(False)
    dialed = _admit(policy, "node", 1.0, Role.WE_DIALED)
    assert dialed.evict == Eviction("squatter", OWN_SERVICE, EvictReason.ROOM)
    policy.useful("node", 2.0)
    # and a link that relays is never pre-empted, not even for a neighbour we dial
    assert _admit(policy, "other", 3.0, Role.WE_DIALED) == Admission(False)


def test_an_eviction_never_takes_another_service_below_its_reserve() -> None:
    policy = EvictionPolicy(SlotPlan.split(2, 1, (OWN_SERVICE, APP_SERVICE)))
    policy.admit("node", OWN_SERVICE, Role.IT_DIALED, "n", 0.0)
    policy.admit("phone", APP_SERVICE, Role.IT_DIALED, "p", 0.0)
    # both idle, but each is its service's reserve: an app newcomer may only replace the phone
    got = policy.admit("phone2", APP_SERVICE, Role.WE_DIALED, "p2", 500.0)
    assert got.evict == Eviction("phone", APP_SERVICE, EvictReason.ROOM)


def test_a_duplicate_swap_keeps_the_slot_and_its_history() -> None:
    policy = _policy(1)
    _admit(policy, "peer", 0.0)
    policy.useful("peer", 5.0)
    assert policy.admit("peer", OWN_SERVICE, Role.WE_DIALED, "other-addr", 6.0) == Admission(True)
    record = policy.links["peer"]
    assert (record.role, record.address, record.useful_frames) == (Role.WE_DIALED, "other-addr", 1)


def test_junk_evicts_at_once_and_backs_the_address_off_doubling() -> None:
    policy = _policy()
    _admit(policy, "junk", 0.0)
    for i in range(PARAMS.strikes - 1):
        assert policy.refused("addr-junk", 1.0 + i, "junk") == []
    assert policy.links["junk"].refused_frames == PARAMS.strikes - 1
    evicted = policy.refused("addr-junk", 5.0, "junk")
    assert evicted == [Eviction("junk", OWN_SERVICE, EvictReason.ABUSE)]
    assert policy.banned("addr-junk", 5.0 + PARAMS.backoff_s - 1)
    assert _admit(policy, "junk", 6.0) == Admission(False)  # while banned, no slot at all
    assert policy.room(OWN_SERVICE, Role.WE_DIALED, "addr-junk", 6.0) == Admission(False)
    assert not policy.banned("addr-junk", 5.0 + PARAMS.backoff_s)
    again = 5.0 + PARAMS.backoff_s
    for i in range(PARAMS.strikes):
        policy.refused("addr-junk", again + i)
    assert policy.banned("addr-junk", again + PARAMS.strikes - 1 + 2 * PARAMS.backoff_s - 1)


def test_strikes_spread_wider_than_the_window_are_forgiven() -> None:
    policy = _policy()
    _admit(policy, "clumsy", 0.0)
    for i in range(3 * PARAMS.strikes):
        assert policy.refused("addr-clumsy", i * PARAMS.strike_window_s / 2, "clumsy") == []
    assert "clumsy" in policy.links


def test_strangers_are_remembered_within_a_bound() -> None:
    policy = _policy()
    for i in range(10_000):
        policy.refused(f"stranger-{i}", float(i))
    assert len(policy._strikes) <= MAX_TRACKED_ADDRESSES  # a hostile with endless addresses


@pytest.mark.parametrize(
    "params",
    [
        {"idle_s": 0.0},
        {"idle_s": 400.0},  # above relayer_idle_s
        {"strikes": 0},
        {"backoff_s": 7200.0},
    ],
)
def test_impossible_params_are_refused(params: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        EvictionParams(**params)  # type: ignore[arg-type]


# -- properties ---------------------------------------------------------------------------------

_OPS = st.lists(
    st.tuples(
        st.sampled_from(["arrive", "arrive", "arrive", "useful", "junk", "leave", "sweep"]),
        st.floats(min_value=0.0, max_value=400.0),  # time passing before the step
        st.integers(min_value=0, max_value=1_000),  # which service, role or link
    ),
    max_size=60,
)


def _recently_useful(record: LinkRecord, now: float) -> bool:
    return record.last_useful_at is not None and now - record.last_useful_at < IDLE


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=6), st.integers(min_value=0, max_value=2), _OPS)
def test_slots_never_overflow_and_busy_links_never_go_while_idle_ones_exist(
    total: int, reserve: int, ops: list[tuple[str, float, int]]
) -> None:
    policy = EvictionPolicy(SlotPlan.split(total, reserve, ALL))
    now, fresh = 0.0, 0
    for op, dt, pick in ops:
        now += dt
        before = {key: replace(r) for key, r in policy.links.items()}
        counts_before = policy.counts()
        live = sorted(policy.links)
        evicted: list[Eviction] = []
        role = Role.WE_DIALED if pick % 2 else Role.IT_DIALED
        service = ALL[pick % 3]
        if op == "arrive":
            fresh += 1
            admission = policy.admit(f"k{fresh}", service, role, f"a{fresh}", now)
            evicted = [admission.evict] if admission.evict is not None else []
        elif op == "useful" and live:
            policy.useful(live[pick % len(live)], now)
        elif op == "junk" and live:
            key = live[pick % len(live)]
            evicted = policy.refused(policy.links[key].address, now, key)
            assert all(e.reason is EvictReason.ABUSE for e in evicted)
        elif op == "leave" and live:
            policy.closed(live[pick % len(live)])
        elif op == "sweep":
            evicted = policy.due(now)
        assert sum(policy.counts().values()) == len(policy.links) <= total
        for eviction in evicted:
            if eviction.reason is EvictReason.ABUSE:
                continue
            victim = before[eviction.key]
            # a link that carried useful traffic within the idle window never goes for room
            # or idleness, whatever else is up
            assert not _recently_useful(victim, now)
            if eviction.reason is EvictReason.HARD_IDLE:
                assert now - victim.last_active >= PARAMS.hard_idle_s
            else:  # for room: idle, or silent and the newcomer is a neighbour we dial
                assert policy.idle(victim, now) or (role is Role.WE_DIALED and not victim.relayed)
                # and never below another service's reserve
                if victim.service != service:
                    assert counts_before[victim.service] > policy.plan.reserved[victim.service]


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=0, max_value=2),
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=30.0),  # gap before the next hostile central
            st.integers(min_value=0, max_value=2),  # its service
            st.booleans(),  # whether it hangs up at once and comes back (churn)
            st.booleans(),  # whether it writes junk
        ),
        max_size=80,
    ),
    st.floats(min_value=1.0, max_value=IDLE - 1),  # how often the neighbour relays a frame
    st.floats(min_value=0.0, max_value=300.0),  # when the neighbour comes into range
)
def test_a_stream_of_hostile_centrals_cannot_keep_a_relaying_neighbour_out(
    total: int,
    reserve: int,
    hostiles: list[tuple[float, int, bool, bool]],
    relay_every_s: float,
    appears_at: float,
) -> None:
    policy = EvictionPolicy(SlotPlan.split(total, reserve, ALL))
    now, neighbour_in, next_relay = 0.0, False, 0.0
    dial_at = appears_at  # then the node's central asks for a slot every second
    for n, (gap, service, churn, junk) in enumerate(hostiles):
        end = now + gap
        while dial_at <= end or (neighbour_in and next_relay <= end):
            if neighbour_in and next_relay <= dial_at:
                now = next_relay
                assert "neighbour" in policy.links, "a relaying neighbour was evicted"
                policy.useful("neighbour", now)
                next_relay += relay_every_s
                continue
            now = dial_at
            assert not [e for e in policy.due(now) if e.key == "neighbour"]
            if not neighbour_in:
                admitted = policy.admit("neighbour", OWN_SERVICE, Role.WE_DIALED, "nb", now)
                # the first dial gets a slot, free or made by evicting a silent central
                assert admitted.admitted
                neighbour_in = True
                next_relay = now + 0.5
            dial_at += 1.0
        now = end
        address = f"hostile-{n}"
        admission = policy.admit(address, ALL[service], Role.IT_DIALED, address, now)
        assert admission.evict is None or admission.evict.key != "neighbour"
        if admission.admitted and junk:
            for _ in range(PARAMS.strikes):
                policy.refused(address, now, address)
            assert address not in policy.links
        elif admission.admitted and churn:
            policy.closed(address)  # it leaves, and its next address comes back fresh
        if neighbour_in:
            assert "neighbour" in policy.links
    assert neighbour_in or dial_at == appears_at


def test_the_node_config_sets_idle_hard_idle_and_backoff() -> None:
    params = EvictionParams.from_config(30, 600, 120)
    assert (params.idle_s, params.relayer_idle_s, params.hard_idle_s) == (30, 150, 600)
    assert (params.backoff_s, params.backoff_max_s) == (120, 3600)
    # a relayer's grace never outlasts the hard limit, nor a ban's ceiling its first term
    assert EvictionParams.from_config(3000, 3600, 7200).relayer_idle_s == 3600
    assert EvictionParams.from_config(3000, 3600, 7200).backoff_max_s == 7200
    assert EvictionParams.from_config(60, 1800, 60) == EvictionParams()
