"""Routing by tag: which sessions a ratchet message may be tried with (pure, no vault)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pigeon.messenger.addressing import TagBook, address, intro_tag_key
from pigeon.messenger.errors import MalformedEnvelope
from pigeon.messenger.routing import IntroClosed, IntroWindow, RouteKind, Routes, Try

T0 = 20_000 * 86_400 + 6 * 3600
DAY_S = 86_400.0
OWN = bytes(range(32))
keys = st.binary(min_size=32, max_size=32)
windows = st.lists(
    st.tuples(st.booleans(), st.floats(0, 2 * DAY_S), st.frozensets(keys, max_size=3)),
    max_size=6,
)


def routes_for(drawn: list[tuple[bool, float, frozenset[bytes]]], now: float) -> Routes:
    contacts = [(f"contact{i}", bytes([i + 1]) * 32) for i in range(len(drawn))]
    book = TagBook.build(OWN, contacts, [], now)
    made = [
        IntroWindow(contact, None if waiting else IntroClosed(now - age, known))
        for (contact, _), (waiting, age, known) in zip(contacts, drawn, strict=True)
    ]
    return Routes.build(book, OWN, made, DAY_S, now)


@given(windows, keys)
def test_the_intro_tag_names_waiting_sessions_and_closed_ones_only_by_known_key(
    drawn: list[tuple[bool, float, frozenset[bytes]]], key: bytes
) -> None:
    routes = routes_for(drawn, T0)
    intro = address(intro_tag_key(OWN), T0)
    expected = {f"contact{i}": True for i, (waiting, _, _) in enumerate(drawn) if waiting}
    for i, (waiting, age, known) in enumerate(drawn):
        if not waiting and age < DAY_S and key in known:
            expected[f"contact{i}"] = False
    tries = routes.tries(intro, key, T0)
    assert {t.contact_id: t.new_chain for t in tries} == expected
    assert len(tries) == len(expected)


def test_a_session_tag_names_its_contact_and_other_tags_nobody() -> None:
    routes = routes_for([(False, DAY_S * 2, frozenset())], T0)
    session_tag = address(bytes([1]) * 32, T0)
    assert routes.kind(session_tag) is RouteKind.SESSION
    assert routes.tries(session_tag, bytes(32), T0) == [Try("contact0", True)]
    assert routes.kind(bytes(16)) is RouteKind.UNSERVED
    assert routes.tries(bytes(16), bytes(32), T0) == []


def test_intro_closed_records_round_trip_and_refuse_damage() -> None:
    closed = IntroClosed(T0, frozenset({bytes(32), bytes([7]) * 32}))
    assert IntroClosed.from_bytes(closed.to_bytes()) == closed
    for damaged in (closed.to_bytes()[:-1], b"\x02" + closed.to_bytes()[1:], b""):
        try:
            IntroClosed.from_bytes(damaged)
        except MalformedEnvelope:
            continue
        raise AssertionError("damaged record accepted")
