"""Button gestures from synthetic timestamps: every gesture, bounces, chords, release orders."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.ui.oled.buttons import (
    DEBOUNCE_S,
    LONG_PRESS_S,
    PAIRING_HOLD_S,
    RESET_HOLD_S,
    Action,
    ButtonDecoder,
)
from pigeon.ui.oled.errors import InvalidEvent

Edge = tuple[str, bool, float]


def run(edges: list[Edge], until: float) -> list[Action]:
    """Feed `edges`, ticking at every deadline in between, then tick at `until`."""
    decoder = ButtonDecoder()
    actions: list[Action] = []

    def tick_to(t: float) -> None:
        while (deadline := decoder.next_deadline_s()) is not None and deadline <= t:
            actions.extend(decoder.tick(deadline))
        actions.extend(decoder.tick(t))

    for button, pressed, t in edges:
        tick_to(t)
        actions.extend(decoder.edge(button, pressed, t))
    tick_to(until)
    return actions


def press(button: str, start: float, length: float) -> list[Edge]:
    return [(button, True, start), (button, False, start + length)]


@pytest.mark.parametrize(
    ("button", "length", "expected"),
    [
        ("a", 0.08, [Action.NEXT]),
        ("a", LONG_PRESS_S - 0.01, [Action.NEXT]),
        ("a", LONG_PRESS_S, [Action.SELECT]),
        ("a", 2.5, [Action.SELECT]),
        ("a", PAIRING_HOLD_S - 0.01, [Action.SELECT]),
        ("a", PAIRING_HOLD_S, [Action.PAIRING]),
        ("a", 8.0, [Action.PAIRING]),
        ("b", 0.08, [Action.SELECT]),
        ("b", LONG_PRESS_S - 0.01, [Action.SELECT]),
        ("b", LONG_PRESS_S, [Action.BACK]),
        ("b", 1.5, [Action.BACK]),
        ("b", 4.0, [Action.PAIRING]),
    ],
)
def test_single_button_gestures(button: str, length: float, expected: list[Action]) -> None:
    assert run(press(button, 1.0, length), until=20.0) == expected


def test_nothing_before_the_release_of_a_short_press() -> None:
    decoder = ButtonDecoder()
    assert decoder.edge("a", True, 0.0) == ()
    assert decoder.tick(0.5) == ()
    assert decoder.edge("a", False, 0.6) == ()
    assert decoder.tick(0.6 + DEBOUNCE_S / 2) == ()
    assert decoder.tick(0.6 + DEBOUNCE_S) == (Action.NEXT,)
    assert decoder.next_deadline_s() is None


def test_pairing_fires_while_still_held_and_release_adds_nothing() -> None:
    decoder = ButtonDecoder()
    decoder.edge("a", True, 10.0)
    decoder.tick(10.1)
    assert decoder.next_deadline_s() == pytest.approx(10.0 + PAIRING_HOLD_S)
    assert decoder.tick(10.0 + PAIRING_HOLD_S) == (Action.PAIRING,)
    assert decoder.tick(20.0) == ()
    decoder.edge("a", False, 21.0)
    assert decoder.tick(22.0) == ()


def test_both_buttons_for_ten_seconds_request_a_reset_once() -> None:
    edges = [("a", True, 0.0), ("b", True, 0.5), ("a", False, 14.0), ("b", False, 14.2)]
    assert run(edges, until=30.0) == [Action.RESET]


def test_reset_fires_ten_seconds_after_the_second_press_while_held() -> None:
    decoder = ButtonDecoder()
    decoder.edge("a", True, 0.0)
    decoder.edge("b", True, 2.0)
    assert decoder.tick(2.0 + DEBOUNCE_S) == ()
    assert decoder.tick(11.9) == ()
    assert decoder.next_deadline_s() == pytest.approx(12.0)
    assert decoder.tick(12.0) == (Action.RESET,)
    assert decoder.next_deadline_s() is None


@pytest.mark.parametrize("first_release", ["a", "b"])
def test_short_chord_yields_nothing_whatever_the_release_order(first_release: str) -> None:
    other = "b" if first_release == "a" else "a"
    edges = [
        ("a", True, 0.0),
        ("b", True, 0.2),
        (first_release, False, 2.0),
        (other, False, 2.5),
    ]
    assert run(edges, until=10.0) == []


def test_chord_cancelled_before_ten_seconds_then_buttons_work_again() -> None:
    edges = [("a", True, 0.0), ("b", True, 0.1), ("b", False, 9.0), ("a", False, 9.9)]
    edges += press("a", 12.0, 0.1)
    assert run(edges, until=20.0) == [Action.NEXT]


def test_releasing_one_button_of_a_chord_starts_no_pairing_hold() -> None:
    edges = [("a", True, 0.0), ("b", True, 0.1), ("b", False, 1.0), ("a", False, 7.0)]
    assert run(edges, until=10.0) == []


def test_hold_then_second_button_gives_pairing_then_reset() -> None:
    edges = [("a", True, 0.0), ("b", True, 4.0), ("a", False, 15.0), ("b", False, 15.0)]
    assert run(edges, until=20.0) == [Action.PAIRING, Action.RESET]


def test_overlap_without_chord_when_presses_do_not_overlap() -> None:
    edges = press("a", 0.0, 0.1) + press("b", 0.2, 0.1) + press("a", 0.4, 1.2)
    edges += press("b", 2.0, 1.2)
    assert run(edges, until=5.0) == [Action.NEXT, Action.SELECT, Action.SELECT, Action.BACK]


def test_contact_bounce_on_press_and_release_counts_once() -> None:
    bounce = 0.002
    edges: list[Edge] = [
        ("a", True, 1.000),
        ("a", False, 1.000 + bounce),
        ("a", True, 1.000 + 2 * bounce),
        ("a", False, 1.000 + 3 * bounce),
        ("a", True, 1.000 + 4 * bounce),
        ("a", False, 1.200),
        ("a", True, 1.200 + bounce),
        ("a", False, 1.200 + 2 * bounce),
    ]
    assert run(edges, until=2.0) == [Action.NEXT]


def test_bounces_do_not_shorten_a_long_press() -> None:
    edges: list[Edge] = [
        ("a", True, 0.0),
        ("a", False, 0.005),
        ("a", True, 0.010),
        ("a", False, 1.100),
        ("a", True, 1.104),
        ("a", False, 1.108),
    ]
    assert run(edges, until=3.0) == [Action.SELECT]


def test_glitch_shorter_than_debounce_is_ignored() -> None:
    assert run([("a", True, 1.0), ("a", False, 1.0 + DEBOUNCE_S / 3)], until=5.0) == []


def test_glitch_during_a_hold_does_not_break_it() -> None:
    edges = [("a", True, 0.0), ("a", False, 2.0), ("a", True, 2.01), ("a", False, 5.0)]
    assert run(edges, until=8.0) == [Action.PAIRING]


def test_release_just_before_the_hold_that_is_still_settling_is_a_long_press() -> None:
    decoder = ButtonDecoder()
    decoder.edge("a", True, 0.0)
    decoder.edge("a", False, PAIRING_HOLD_S - 0.01)
    # At the hold time the release is not yet confirmed: nothing may fire yet.
    assert decoder.tick(PAIRING_HOLD_S) == ()
    assert decoder.tick(PAIRING_HOLD_S + DEBOUNCE_S) == (Action.SELECT,)


def test_duplicate_level_reports_are_harmless() -> None:
    edges: list[Edge] = [("a", True, 0.0), ("a", True, 0.05), ("a", False, 0.2), ("a", False, 0.3)]
    assert run(edges, until=1.0) == [Action.NEXT]


def test_edges_alone_commit_in_time_order_without_ticks() -> None:
    decoder = ButtonDecoder()
    actions = decoder.edge("a", True, 0.0) + decoder.edge("a", False, 0.1)
    actions += decoder.edge("b", True, 0.2) + decoder.edge("b", False, 0.3)
    assert actions == (Action.NEXT,)
    assert decoder.tick(5.0) == (Action.SELECT,)


def test_one_late_tick_commits_both_buttons_in_time_order() -> None:
    decoder = ButtonDecoder()
    decoder.edge("a", True, 0.0)
    assert decoder.tick(0.5) == ()
    # a's release and b's press are both still settling when the late tick comes: a must be
    # committed up first, or the two would look like a chord.
    assert decoder.edge("a", False, 1.0) == ()
    assert decoder.edge("b", True, 1.01) == ()
    assert decoder.tick(5.0) == (Action.SELECT, Action.PAIRING)


def test_unknown_button_and_time_going_back_are_refused() -> None:
    decoder = ButtonDecoder()
    with pytest.raises(InvalidEvent):
        decoder.edge("c", True, 0.0)
    decoder.edge("a", True, 1.0)
    with pytest.raises(InvalidEvent):
        decoder.edge("a", False, 0.5)
    with pytest.raises(InvalidEvent):
        decoder.tick(0.9)
    with pytest.raises(InvalidEvent):
        decoder.tick(float("nan"))


def test_idle_decoder_has_no_deadline() -> None:
    assert ButtonDecoder().next_deadline_s() is None


edge_lists = st.lists(
    st.tuples(st.sampled_from(["a", "b"]), st.booleans(), st.floats(0.0, 0.5)), max_size=40
)


@given(edge_lists)
def test_any_edge_sequence_decodes_without_error_and_deadlines_move_forward(
    steps: list[tuple[str, bool, float]],
) -> None:
    decoder = ButtonDecoder()
    t = 0.0
    resets = 0
    for button, pressed, gap in steps:
        t += gap
        while (deadline := decoder.next_deadline_s()) is not None and deadline <= t:
            assert deadline >= decoder._last_s
            resets += decoder.tick(deadline).count(Action.RESET)
        resets += decoder.edge(button, pressed, t).count(Action.RESET)
    for _ in range(10):
        deadline = decoder.next_deadline_s()
        if deadline is None:
            break
        decoder.tick(deadline)
    else:
        pytest.fail("deadlines never ran out")
    assert resets <= len(steps)


@given(st.lists(st.floats(0.04, 4.0), min_size=1, max_size=10))
def test_separate_presses_give_one_action_each(lengths: list[float]) -> None:
    edges: list[Edge] = []
    start = 0.0
    for length in lengths:
        edges += press("a", start, length)
        start += length + 0.5
    actions = run(edges, until=start + 5)
    expected = [
        Action.PAIRING
        if length >= PAIRING_HOLD_S
        else Action.SELECT
        if length >= LONG_PRESS_S
        else Action.NEXT
        for length in lengths
    ]
    assert actions == expected


def test_reset_needs_the_full_ten_seconds() -> None:
    edges = [("a", True, 0.0), ("b", True, 0.0), ("a", False, RESET_HOLD_S - 0.05)]
    edges.append(("b", False, RESET_HOLD_S))
    assert run(edges, until=20.0) == []
