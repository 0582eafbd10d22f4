"""The OLED's navigation machine: pages, overlays, requests, screensaver and wake-ups."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.ui.oled.buttons import Action
from pigeon.ui.oled.machine import (
    SAVER_SHIFT_S,
    SCREENSAVER_AFTER_S,
    CancelPairing,
    CancelReset,
    MarkRead,
    Page,
    RequestReset,
    StartPairing,
    UiMachine,
)
from pigeon.ui.oled.screens import LIST_ENTRIES, message_lines, render
from pigeon.ui.oled.state import CourierLine, GatewayLine, Pairing, Uplink, ViewState
from pigeon.ui.oled.views import (
    BitchatMailView,
    ErrorView,
    LockedView,
    MessageListView,
    MessageView,
    PairingClosedView,
    PairingView,
    ResetView,
    SaverView,
    StatusView,
)
from tests.ui.oled.samples import CERT, MESSAGES, TODAY, URL, message

STATE = ViewState(
    node_name="pigeon-a1b2",
    web_url=URL,
    neighbours=3,
    spool_envelopes=2,
    spool_bytes=1024,
    uplink=Uplink.ONLINE,
    unread=2,
    today=TODAY,
    owner_paired=True,
    messages=MESSAGES,
)
PAIRING = Pairing("123456", URL, CERT, expires_at_s=120.5)


def machine(state: ViewState = STATE, now: float = 0.0) -> UiMachine:
    return UiMachine(state, now)


def page_of(ui: UiMachine) -> Page:
    return ui.page


def test_starts_on_the_status_page() -> None:
    view = machine().view(0.0)
    assert view == StatusView("pigeon-a1b2", 3, 2, 1024, Uplink.ONLINE, 2, False)
    first_boot = machine(dataclasses.replace(STATE, owner_paired=False)).view(0.0)
    assert isinstance(first_boot, StatusView)
    assert first_boot.show_pair_hint


def test_button_a_alone_walks_the_list_and_wraps_to_status() -> None:
    ui = machine()
    seen = []
    for _ in range(len(MESSAGES) + 1):
        assert ui.act(Action.NEXT, 1.0) == ()
        view = ui.view(1.0)
        seen.append(view.selected if isinstance(view, MessageListView) else None)
    assert seen == [*range(len(MESSAGES)), None]
    assert page_of(ui) is Page.STATUS


def test_list_window_follows_the_selection() -> None:
    ui = machine()
    for _ in range(7):
        ui.act(Action.NEXT, 1.0)
    view = ui.view(1.0)
    assert isinstance(view, MessageListView)
    assert (view.selected, view.top) == (6, 7 - LIST_ENTRIES)


def test_select_opens_a_message_and_marks_it_read_once() -> None:
    ui = machine()
    ui.act(Action.SELECT, 1.0)
    assert ui.act(Action.SELECT, 1.0) == (MarkRead("m0"),)
    view = ui.view(1.0)
    assert isinstance(view, MessageView)
    assert view.message.message_id == "m0"
    assert view.scroll == 0
    ui.act(Action.BACK, 2.0)
    for _ in range(3):
        ui.act(Action.NEXT, 2.0)
    assert ui.act(Action.SELECT, 2.0) == ()  # m3 is already read


def test_next_pages_through_a_long_message_then_moves_to_the_next() -> None:
    ui = machine()
    ui.act(Action.NEXT, 1.0)
    ui.act(Action.SELECT, 1.0)
    scrolls = []
    for _ in range(3):
        ui.act(Action.NEXT, 1.0)
        view = ui.view(1.0)
        scrolls.append(view.scroll if isinstance(view, MessageView) else None)
    lines = len(message_lines(MESSAGES[0]))
    assert lines > 5
    assert scrolls == [lines - 5, None, None]  # one page down reaches the last line
    view = ui.view(1.0)
    assert isinstance(view, MessageListView)
    assert view.selected == 2


def test_back_goes_up_one_level() -> None:
    ui = machine()
    ui.act(Action.NEXT, 1.0)
    ui.act(Action.SELECT, 1.0)
    ui.act(Action.BACK, 1.0)
    assert page_of(ui) is Page.MESSAGES
    ui.act(Action.BACK, 1.0)
    assert page_of(ui) is Page.STATUS
    ui.act(Action.BACK, 1.0)
    assert page_of(ui) is Page.STATUS


def test_empty_inbox_list_then_back_to_status() -> None:
    ui = machine(dataclasses.replace(STATE, messages=(), unread=0))
    ui.act(Action.NEXT, 1.0)
    assert ui.view(1.0) == MessageListView((), 0, 0, TODAY)
    assert ui.act(Action.SELECT, 1.0) == ()
    ui.act(Action.NEXT, 1.0)
    assert page_of(ui) is Page.STATUS


def test_selection_stays_on_the_same_message_when_new_ones_arrive() -> None:
    ui = machine()
    for _ in range(3):
        ui.act(Action.NEXT, 1.0)
    newer = message(99, "Zed", "new", 21, 15, 0, True)
    ui.update(dataclasses.replace(STATE, messages=(newer, *MESSAGES), unread=3), 2.0)
    view = ui.view(2.0)
    assert isinstance(view, MessageListView)
    assert view.messages[view.selected].message_id == "m2"


def test_open_message_that_disappears_returns_to_the_list() -> None:
    ui = machine()
    ui.act(Action.NEXT, 1.0)
    ui.act(Action.SELECT, 1.0)
    ui.update(dataclasses.replace(STATE, messages=MESSAGES[1:]), 2.0)
    view = ui.view(2.0)
    assert isinstance(view, MessageListView)
    assert view.selected == 0


def test_screensaver_after_a_minute_and_marker_moves_each_minute() -> None:
    ui = machine()
    assert ui.next_change_s(10.0) == SCREENSAVER_AFTER_S
    assert not isinstance(ui.view(SCREENSAVER_AFTER_S - 0.001), SaverView)
    assert ui.view(SCREENSAVER_AFTER_S) == SaverView(2, 0)
    assert ui.view(SCREENSAVER_AFTER_S + SAVER_SHIFT_S) == SaverView(2, 1)
    later = SCREENSAVER_AFTER_S + 2.5 * SAVER_SHIFT_S
    assert ui.next_change_s(later) == SCREENSAVER_AFTER_S + 3 * SAVER_SHIFT_S


def test_first_press_only_wakes_the_screensaver() -> None:
    ui = machine()
    assert ui.act(Action.NEXT, 100.0) == ()
    assert page_of(ui) is Page.STATUS
    assert isinstance(ui.view(100.0), StatusView)
    ui.act(Action.NEXT, 101.0)
    assert page_of(ui) is Page.MESSAGES


def test_new_message_wakes_the_screensaver_but_old_news_does_not() -> None:
    ui = machine()
    assert ui.asleep(100.0)
    ui.update(dataclasses.replace(STATE, neighbours=9), 100.0)
    assert ui.asleep(100.0)
    newer = message(99, "Zed", "new", 21, 15, 0, True)
    ui.update(dataclasses.replace(STATE, messages=(newer, *MESSAGES), unread=3), 100.0)
    assert not ui.asleep(100.0)
    assert ui.asleep(100.0 + SCREENSAVER_AFTER_S)


def test_hold_asks_for_pairing_then_the_pairing_screen_counts_down() -> None:
    ui = machine()
    assert ui.act(Action.PAIRING, 1.0) == (StartPairing(),)
    ui.update(dataclasses.replace(STATE, pairing=PAIRING), 1.0)
    assert ui.view(1.0) == PairingView("123456", URL, CERT, 120)
    assert ui.view(1.6) == PairingView("123456", URL, CERT, 119)
    assert ui.next_change_s(1.0) == pytest.approx(1.5)
    assert ui.next_change_s(1.5) == pytest.approx(2.5)
    assert ui.act(Action.PAIRING, 2.0) == ()
    assert ui.act(Action.NEXT, 2.0) == ()
    assert ui.act(Action.BACK, 2.0) == (CancelPairing(),)


def test_pairing_screen_never_sleeps_and_wakes_a_sleeping_panel() -> None:
    ui = machine()
    ui.update(dataclasses.replace(STATE, pairing=PAIRING), 100.0)
    assert isinstance(ui.view(110.0), PairingView)
    assert not ui.asleep(1000.0)
    ui.update(STATE, 120.0)
    assert isinstance(ui.view(120.0), StatusView)


def test_pairing_works_while_asleep() -> None:
    assert machine().act(Action.PAIRING, 500.0) == (StartPairing(),)


def test_reset_is_requested_shown_and_cancellable() -> None:
    ui = machine()
    assert ui.act(Action.RESET, 1.0) == (RequestReset(),)
    pending = dataclasses.replace(STATE, reset_pending=True, pairing=PAIRING, error="x")
    ui.update(pending, 1.0)
    assert ui.view(1.0) == ResetView(URL)
    assert ui.act(Action.RESET, 2.0) == ()
    assert ui.act(Action.SELECT, 2.0) == ()
    assert ui.act(Action.NEXT, 2.0) == ()
    assert ui.act(Action.BACK, 2.0) == (CancelReset(),)
    assert ui.next_change_s(2.0) is None
    assert isinstance(ui.view(1000.0), ResetView)


def test_error_shows_until_dismissed_and_a_new_error_shows_again() -> None:
    ui = machine()
    ui.update(dataclasses.replace(STATE, error="Radio failed"), 1.0)
    assert ui.view(1.0) == ErrorView("Radio failed")
    assert ui.act(Action.NEXT, 2.0) == ()
    assert isinstance(ui.view(2.0), StatusView)
    assert page_of(ui) is Page.STATUS  # dismissing does not navigate
    ui.update(dataclasses.replace(STATE, error="Radio failed"), 3.0)
    assert isinstance(ui.view(3.0), StatusView)
    ui.update(dataclasses.replace(STATE, error="Storage full"), 4.0)
    assert ui.view(4.0) == ErrorView("Storage full")
    ui.update(STATE, 5.0)
    ui.update(dataclasses.replace(STATE, error="Storage full"), 6.0)
    assert ui.view(6.0) == ErrorView("Storage full")


def test_wrong_codes_closing_the_pairing_window_are_shown_until_dismissed() -> None:
    ui = machine()
    ui.update(dataclasses.replace(STATE, pairing=PAIRING), 1.0)
    closed = dataclasses.replace(STATE, wrong_pairing_codes=5, error="Radio failed")
    ui.update(closed, 300.0)  # long after the panel would have gone to sleep
    assert not ui.asleep(300.0)  # the closing wakes the panel
    assert ui.view(300.0) == PairingClosedView(5)
    assert ui.act(Action.NEXT, 301.0) == ()  # the first press dismisses it, nothing else
    assert page_of(ui) is Page.STATUS
    assert ui.view(301.0) == ErrorView("Radio failed")  # the notice came first
    ui.update(closed, 302.0)  # the same closing, seen again: stays dismissed
    assert ui.view(302.0) == ErrorView("Radio failed")
    assert ui.act(Action.PAIRING, 303.0) == (StartPairing(),)  # holding still pairs
    ui.update(dataclasses.replace(STATE, pairing=PAIRING), 303.0)  # daemon cleared the count
    ui.update(closed, 304.0)  # and wrong codes closed the new window too
    assert ui.view(304.0) == PairingClosedView(5)


def test_locked_vault_hides_messages_but_pairing_still_works() -> None:
    ui = machine(dataclasses.replace(STATE, vault_locked=True))
    assert ui.view(1.0) == LockedView("pigeon-a1b2", URL, 3)
    assert ui.act(Action.NEXT, 1.0) == ()
    assert ui.act(Action.SELECT, 1.0) == ()
    assert isinstance(ui.view(1.0), LockedView)
    assert ui.act(Action.PAIRING, 1.0) == (StartPairing(),)


def test_overlay_priority() -> None:
    everything = dataclasses.replace(
        STATE,
        vault_locked=True,
        error="e",
        pairing=PAIRING,
        reset_pending=True,
        wrong_pairing_codes=5,
    )
    ui = machine(everything)
    order = []
    steps: list[dict[str, object]] = [
        {},
        {"reset_pending": False},
        {"pairing": None},
        {"wrong_pairing_codes": 0},
        {"error": None},
    ]
    for change in steps:
        everything = dataclasses.replace(everything, **change)  # type: ignore[arg-type]
        ui.update(everything, 1.0)
        order.append(type(ui.view(1.0)))
    assert order == [ResetView, PairingView, PairingClosedView, ErrorView, LockedView]


actions = st.sampled_from(list(Action))
changes = st.fixed_dictionaries(
    {
        "messages": st.lists(st.sampled_from(MESSAGES), unique=True).map(tuple),
        "error": st.sampled_from([None, "a", "b"]),
        "vault_locked": st.booleans(),
        "pairing": st.sampled_from([None, PAIRING]),
        "reset_pending": st.booleans(),
        "wrong_pairing_codes": st.sampled_from([0, 5]),
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(actions, changes, st.floats(0.0, 90.0)), max_size=30))
def test_any_sequence_gives_a_renderable_view(steps: list[object]) -> None:
    ui = machine()
    now = 0.0
    for step in steps:
        if isinstance(step, Action):
            ui.act(step, now)
        elif isinstance(step, dict):
            ui.update(dataclasses.replace(STATE, **step), now)
        else:
            assert isinstance(step, float)
            now += step
        image = render(ui.view(now))
        assert (image.mode, image.size) == ("1", (128, 64))
        deadline = ui.next_change_s(now)
        assert deadline is None or deadline > now


def test_a_long_message_scrolls_by_four_lines_keeping_one_for_context() -> None:
    long_text = " ".join(f"line{i:02d}" + "x" * 12 for i in range(15))
    state = dataclasses.replace(STATE, messages=(message(0, "Al", long_text, 21, 1, 1, False),))
    ui = machine(state)
    ui.act(Action.NEXT, 1.0)
    ui.act(Action.SELECT, 1.0)
    scrolls = []
    for _ in range(4):
        ui.act(Action.NEXT, 1.0)
        view = ui.view(1.0)
        scrolls.append(view.scroll if isinstance(view, MessageView) else None)
    assert scrolls == [4, 8, 10, None]


def test_no_pairing_while_a_reset_waits_for_confirmation() -> None:
    ui = machine(dataclasses.replace(STATE, reset_pending=True))
    assert ui.act(Action.PAIRING, 1.0) == ()


def test_long_b_on_the_status_page_shows_bitchat_mail_and_any_button_goes_back() -> None:
    courier, gateway = CourierLine(12, 5, 3, 4), GatewayLine(57, 2)
    state = dataclasses.replace(STATE, bitchat_courier=courier, bitchat_gateway=gateway)
    for action in (Action.NEXT, Action.SELECT, Action.BACK):
        ui = machine(state)
        assert ui.act(Action.BACK, 1.0) == ()
        assert ui.view(1.0) == BitchatMailView(courier, gateway)
        assert ui.act(action, 2.0) == ()
        assert isinstance(ui.view(2.0), StatusView)


def test_without_courier_or_gateway_long_b_stays_on_the_status_page() -> None:
    ui = machine()
    ui.act(Action.BACK, 1.0)
    assert page_of(ui) is Page.STATUS
    assert isinstance(ui.view(1.0), StatusView)
