"""Routing by tag: what a recipient tag is to us, from the tag alone (pure, no vault)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pigeon.messenger.addressing import TagBook, address, intro_tag_key
from pigeon.messenger.routing import RouteKind, Routes

T0 = 20_000 * 86_400 + 6 * 3600
DAY_S = 86_400.0
OWN = bytes(range(32))
keys = st.binary(min_size=32, max_size=32)


def routes_for(count: int, now: float) -> Routes:
    contacts = [(f"contact{i}", bytes([i + 1]) * 32) for i in range(count)]
    return Routes.build(TagBook.build(OWN, contacts, [], now), OWN, now)


@given(st.integers(0, 40), st.floats(-DAY_S, DAY_S))
def test_the_intro_tag_names_nobody_and_a_session_tag_its_contact(count: int, shift: float) -> None:
    routes = routes_for(count, T0)
    intro = address(intro_tag_key(OWN), T0 + shift)
    assert routes.kind(intro) is RouteKind.INTRO
    assert routes.owner(intro) is None
    for i in range(count):
        tag = address(bytes([i + 1]) * 32, T0 + shift)
        assert routes.kind(tag) is RouteKind.SESSION
        assert routes.owner(tag) == f"contact{i}"


@given(keys)
def test_any_other_tag_is_unserved(key: bytes) -> None:
    routes = routes_for(3, T0)
    tag = address(key, T0)
    if key in (intro_tag_key(OWN), *(bytes([i + 1]) * 32 for i in range(3))):
        return
    assert routes.kind(tag) is RouteKind.UNSERVED
    assert routes.owner(tag) is None
