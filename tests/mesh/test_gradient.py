"""The tag gradient: distances from announce levels, split horizon, and routing along it."""

import itertools

import pytest

from pigeon.mesh.gradient import ANNOUNCE_HOPS, TagGradient
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


def test_split_horizon_and_levels_of_re_announces() -> None:
    gradient = TagGradient()
    gradient.heard("a", ANNOUNCE_HOPS, (T1,))
    gradient.heard("b", 0, (T2,))  # already as far as tags travel
    gradient.recompute(frozenset())
    assert gradient.announce_for("b") == {ANNOUNCE_HOPS - 1: (T1,), 0: ()}
    assert gradient.announce_for("a") == {ANNOUNCE_HOPS - 1: (), 0: ()}


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
    net.tick(31)  # learned tags are re-announced at most every 30 s
    net.tick(31)
    envelope, _ = net.envelope("d", ttl=1)  # no budget to spray or flood beyond one hop
    net.send("a", envelope)
    assert bool(net.delivered["d"]) is delivered
    if delivered:
        assert len(net.delivered["d"]) == 1
