"""The tag gradient: distances from announce levels, split horizon, and routing along it."""

import itertools

import pytest

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
