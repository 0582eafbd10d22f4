"""The tag gradient: distances from announce levels, split horizon, and routing along it."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.mesh.gradient import ANNOUNCE_HOPS, ROUTE_HORIZON, TagGradient
from pigeon.mesh.packet import DEFAULT_TTL
from pigeon.mesh.router import RouterConfig

from .router_net import Net

T1, T2, OWN = b"t" * 16, b"u" * 16, b"o" * 16


def test_distance_follows_the_announce_level_and_the_nearest_neighbour_wins() -> None:
    gradient = TagGradient()
    gradient.heard("far", ANNOUNCE_HOPS - 1, (T1,))  # two hops away via "far"
    assert gradient.recompute(frozenset()) == [T1]
    assert gradient.via(T1) == "far"
    gradient.heard("near", ANNOUNCE_HOPS, (T1, T2))  # "near" serves both itself
    assert gradient.recompute(frozenset()) == [T1, T2]
    assert gradient.via(T1) == "near"
    assert gradient.recompute(frozenset()) == []  # nothing changed


def test_split_horizon_and_distances_of_routes() -> None:
    gradient = TagGradient()
    gradient.heard("a", ANNOUNCE_HOPS, (T1,))  # "a" serves T1: one hop from us
    gradient.heard_routes("b", [(5, T2)])  # "b" is five hops from T2: six from us
    gradient.recompute(frozenset())
    assert gradient.routes_for("b") == ((1, T1),)
    assert gradient.routes_for("a") == ((6, T2),)
    assert gradient.distance(T2) == 6


def test_routes_reach_beyond_the_ttl_but_not_beyond_the_horizon() -> None:
    gradient = TagGradient()
    gradient.heard_routes("far", [(DEFAULT_TTL + 5, T1), (ROUTE_HORIZON - 1, T2)])
    gradient.recompute(frozenset())
    assert gradient.via(T1) == "far"
    assert gradient.distance(T1) == DEFAULT_TTL + 6
    assert gradient.via(T2) == "far"  # usable, but not passed on (count-to-infinity bound)
    assert gradient.routes_for("other") == ((DEFAULT_TTL + 6, T1),)
    gradient.heard_routes("far", [])  # withdrawn: a change to tell the neighbours too
    assert sorted(gradient.recompute(frozenset())) == sorted([T1, T2])
    assert gradient.via(T1) is None


def test_withdrawals_forgetting_and_our_own_tags() -> None:
    gradient = TagGradient()
    gradient.heard("a", ANNOUNCE_HOPS, (T1, OWN))
    gradient.recompute(frozenset({OWN}))
    assert gradient.via(OWN) is None
    gradient.heard("a", ANNOUNCE_HOPS, ())
    gradient.recompute(frozenset({OWN}))
    assert gradient.via(T1) is None
    gradient.heard("a", ANNOUNCE_HOPS, (T1,))
    gradient.forget("a")
    gradient.recompute(frozenset())
    assert list(gradient.routes()) == []


@pytest.mark.parametrize(("routing", "delivered"), [("default", True), ("flood", False)])
def test_a_spent_envelope_walks_down_the_gradient_of_a_static_chain(
    routing: str, delivered: bool
) -> None:
    names = ["a", "b", "c", "d"]
    net = Net(names, RouterConfig(routing=routing))
    for name in names:
        net.serve(name)
    for left, right in itertools.pairwise(names):
        net.link(left, right)
    net.tick(3)  # routes go to a neighbour at most every 2 s
    net.tick(3)
    envelope, _ = net.envelope("d", ttl=1)  # no budget to spray or flood beyond one hop
    net.send("a", envelope)
    assert bool(net.delivered["d"]) is delivered
    if delivered:
        assert len(net.delivered["d"]) == 1


def test_a_lapsed_neighbours_routes_serve_only_where_no_live_one_has_a_route() -> None:
    gradient = TagGradient()
    gradient.heard_routes("gone", [(1, T1), (1, T2)])
    gradient.heard_routes("live", [(4, T2)])
    gradient.recompute(frozenset())
    gradient.lapse("gone", now=10.0)
    assert gradient.recompute(frozenset()) == [T2]  # T1 keeps its route through "gone"
    assert (gradient.via(T1), gradient.distance(T1)) == ("gone", 2)
    assert (gradient.via(T2), gradient.distance(T2)) == ("live", 5)
    assert gradient.routes_for("other") == ((5, T2),)  # nothing told through a link that is down
    assert not gradient.expire(14.9, hold_s=5.0, max_s=30.0)
    assert gradient.expire(15.0, hold_s=5.0, max_s=30.0)
    assert gradient.recompute(frozenset()) == [T1]
    assert gradient.via(T1) is None
    assert not gradient.lapsed


def test_a_lapsed_neighbour_back_on_its_link_keeps_its_routes_until_it_sends_new_ones() -> None:
    gradient = TagGradient()
    gradient.heard_routes("b", [(1, T1)])
    gradient.recompute(frozenset())
    gradient.lapse("b", now=0.0)
    assert gradient.relinked("b")
    assert gradient.routes_for("other") == ((2, T1),)  # back: told again as before
    assert not gradient.expire(29.0, hold_s=5.0, max_s=30.0)
    assert gradient.expire(30.0, hold_s=5.0, max_s=30.0)  # it never spoke
    assert not gradient.relinked("b")
    gradient.heard_routes("b", [(1, T1)])
    gradient.lapse("b", now=40.0)
    gradient.set_routes("b", {T2: 3})  # back and speaking: what it says now replaces it
    assert not gradient.lapsed
    gradient.recompute(frozenset())
    assert gradient.via(T1) is None
    assert gradient.distance(T2) == 4


@given(
    live=st.dictionaries(st.sampled_from([T1, T2, OWN]), st.integers(1, ROUTE_HORIZON - 2)),
    lapsed=st.dictionaries(st.sampled_from([T1, T2, OWN]), st.integers(1, ROUTE_HORIZON - 2)),
)
def test_a_live_route_always_beats_a_lapsed_one(
    live: dict[bytes, int], lapsed: dict[bytes, int]
) -> None:
    gradient = TagGradient()
    gradient.set_routes("old", lapsed)
    gradient.lapse("old", now=0.0)
    gradient.set_routes("new", live)
    gradient.recompute(frozenset())
    for tag in {*live, *lapsed}:
        expected = ("new", live[tag] + 1) if tag in live else ("old", lapsed[tag] + 1)
        assert (gradient.via(tag), gradient.distance(tag)) == expected
