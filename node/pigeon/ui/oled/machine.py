"""The OLED's navigation as a sans-IO state machine: view state and actions in, a view out.

Screens by priority: identity reset confirmation, pairing, a notice that wrong codes closed
the pairing window, an error (these two until a button dismisses them), vault locked, then
the owner's pages (status -> message list -> one message). Button "a" alone walks
everything: NEXT moves down the list and wraps back to the status page; SELECT opens a message.
After `SCREENSAVER_AFTER_S` without a button or a new message the panel goes dark but for a
small marker that moves every minute; the first NEXT/SELECT/BACK only wakes it. Holds
(PAIRING, RESET) always act. The machine asks the daemon for what it cannot do itself by
returning `UiRequest`s.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass
from typing import Final

from pigeon.ui.oled.buttons import Action
from pigeon.ui.oled.screens import BODY_ROWS, LIST_ENTRIES, message_lines
from pigeon.ui.oled.state import ViewState
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
    ScreenView,
    StatusView,
)

_LOGGER = logging.getLogger(__name__)

SCREENSAVER_AFTER_S: Final = 60.0
SAVER_SHIFT_S: Final = 60.0
_SCROLL_LINES: Final = BODY_ROWS - 1  # keep one line of context when paging


@dataclass(frozen=True, slots=True)
class StartPairing:
    """The owner held a button: open a pairing window (the web room makes the code)."""


@dataclass(frozen=True, slots=True)
class CancelPairing:
    """The owner pressed back on the pairing screen: close the window now."""


@dataclass(frozen=True, slots=True)
class RequestReset:
    """The owner held both buttons: ask for an identity reset, to be confirmed on the page."""


@dataclass(frozen=True, slots=True)
class CancelReset:
    """The owner pressed back on the reset screen: withdraw the reset request."""


@dataclass(frozen=True, slots=True)
class MarkRead:
    """The owner opened this message."""

    message_id: str


UiRequest = StartPairing | CancelPairing | RequestReset | CancelReset | MarkRead


class Page(enum.Enum):
    """The owner's own pages, under any overlay."""

    STATUS = "status"
    BITCHAT = "bitchat"  # bitchat mail: long B from the status page, any button back
    MESSAGES = "messages"
    MESSAGE = "message"


class UiMachine:
    """Navigation, screensaver and requests of the OLED; times in seconds on one clock."""

    def __init__(self, state: ViewState, now_s: float) -> None:
        self._state = state
        self._page = Page.STATUS
        self._selected = 0
        self._top = 0
        self._scroll = 0
        self._open_id: str | None = None
        self._dismissed_error: str | None = None
        self._pairing_notice_dismissed = False
        self._active_s = now_s

    @property
    def page(self) -> Page:
        """The owner's page currently under any overlay."""
        return self._page

    def update(self, state: ViewState, now_s: float) -> None:
        """Take a new snapshot; a new message, error, pairing or reset wakes the panel."""
        old = self._state
        self._state = state
        if self._has_news(old, state):
            self._active_s = now_s
        if state.error != self._dismissed_error:
            self._dismissed_error = None
        if state.wrong_pairing_codes and not old.wrong_pairing_codes:
            self._pairing_notice_dismissed = False
        self._follow_messages(old)

    def act(self, action: Action, now_s: float) -> tuple[UiRequest, ...]:
        """Apply a button action; returns what the daemon should do about it."""
        asleep = self.asleep(now_s)
        self._active_s = now_s
        if action is Action.RESET:
            return () if self._state.reset_pending else (RequestReset(),)
        if action is Action.PAIRING:
            busy = self._state.pairing is not None or self._state.reset_pending
            return () if busy else (StartPairing(),)
        if asleep:
            return ()
        state = self._state
        if state.reset_pending:
            return (CancelReset(),) if action is Action.BACK else ()
        if state.pairing is not None:
            return (CancelPairing(),) if action is Action.BACK else ()
        if self._pairing_notice_showing():
            self._pairing_notice_dismissed = True
            return ()
        if state.error is not None and state.error != self._dismissed_error:
            self._dismissed_error = state.error
            return ()
        if state.vault_locked:
            return ()
        return self._navigate(action)

    def asleep(self, now_s: float) -> bool:
        """Whether the screensaver is showing at `now_s`."""
        state = self._state
        if state.reset_pending or state.pairing is not None:
            return False
        return now_s >= self._active_s + SCREENSAVER_AFTER_S

    def view(self, now_s: float) -> ScreenView:
        """What the panel should show at `now_s`."""
        state = self._state
        if self.asleep(now_s):
            slept_s = now_s - (self._active_s + SCREENSAVER_AFTER_S)
            return SaverView(state.unread, math.floor(slept_s / SAVER_SHIFT_S))
        if state.reset_pending:
            return ResetView(state.web_url)
        if state.pairing is not None:
            pairing = state.pairing
            seconds_left = max(0, math.ceil(pairing.expires_at_s - now_s))
            return PairingView(pairing.code, pairing.url, pairing.cert_sha256, seconds_left)
        if self._pairing_notice_showing():
            return PairingClosedView(state.wrong_pairing_codes)
        if state.error is not None and state.error != self._dismissed_error:
            return ErrorView(state.error)
        if state.vault_locked:
            return LockedView(state.node_name, state.web_url, state.neighbours)
        return self._page_view()

    def next_change_s(self, now_s: float) -> float | None:
        """The next time `view` changes with no new input (a countdown or the screensaver)."""
        state = self._state
        if state.pairing is not None and not state.reset_pending:
            remaining = state.pairing.expires_at_s - now_s
            return now_s + (remaining - math.ceil(remaining) + 1) if remaining > 0 else None
        if state.reset_pending:
            return None
        sleep_at = self._active_s + SCREENSAVER_AFTER_S
        if now_s < sleep_at:
            return sleep_at
        shifts = math.floor((now_s - sleep_at) / SAVER_SHIFT_S) + 1
        return sleep_at + shifts * SAVER_SHIFT_S

    def _pairing_notice_showing(self) -> bool:
        return bool(self._state.wrong_pairing_codes) and not self._pairing_notice_dismissed

    def _page_view(self) -> ScreenView:
        state = self._state
        if self._page is Page.BITCHAT and _has_bitchat_mail(state):
            return BitchatMailView(state.bitchat_courier, state.bitchat_gateway)
        if self._page is Page.MESSAGES:
            return MessageListView(
                state.messages, self._selected, self._top, state.today, state.twelve_hour
            )
        if self._page is Page.MESSAGE:
            message = state.messages[self._selected]
            return MessageView(message, self._scroll, state.today, state.twelve_hour)
        return StatusView(
            node_name=state.node_name,
            neighbours=state.neighbours,
            spool_envelopes=state.spool_envelopes,
            spool_bytes=state.spool_bytes,
            uplink=state.uplink,
            unread=state.unread,
            show_pair_hint=not state.owner_paired,
            app_mesh=state.app_mesh,
            bitchat_peers=state.bitchat_peers,
            bitchat_held=state.bitchat_held,
            bitchat_nostr=state.bitchat_nostr,
        )

    def _navigate(self, action: Action) -> tuple[UiRequest, ...]:
        if self._page is Page.STATUS:
            if action in (Action.NEXT, Action.SELECT):
                self._show_list(0)
            elif action is Action.BACK and _has_bitchat_mail(self._state):
                self._page = Page.BITCHAT
            return ()
        if self._page is Page.BITCHAT:
            self._page = Page.STATUS
            return ()
        if self._page is Page.MESSAGES:
            return self._navigate_list(action)
        return self._navigate_message(action)

    def _navigate_list(self, action: Action) -> tuple[UiRequest, ...]:
        messages = self._state.messages
        if action is Action.BACK:
            self._page = Page.STATUS
        elif action is Action.NEXT:
            if self._selected + 1 < len(messages):
                self._show_list(self._selected + 1)
            else:
                self._page = Page.STATUS
        elif action is Action.SELECT and messages:
            message = messages[self._selected]
            self._page = Page.MESSAGE
            self._open_id = message.message_id
            self._scroll = 0
            if message.unread:
                return (MarkRead(message.message_id),)
        return ()

    def _navigate_message(self, action: Action) -> tuple[UiRequest, ...]:
        if action is Action.NEXT:
            lines = len(message_lines(self._state.messages[self._selected]))
            last_top = max(lines - BODY_ROWS, 0)
            if self._scroll < last_top:
                self._scroll = min(self._scroll + _SCROLL_LINES, last_top)
                return ()
            self._page = Page.MESSAGES
            self._navigate_list(Action.NEXT)
            return ()
        self._page = Page.MESSAGES
        return ()

    def _show_list(self, selected: int) -> None:
        self._page = Page.MESSAGES
        self._selected = selected
        self._top = min(max(self._top, selected - LIST_ENTRIES + 1), selected)

    def _follow_messages(self, old: ViewState) -> None:
        # Keep the same message selected (and open) when new ones arrive above it.
        messages = self._state.messages
        ids = [message.message_id for message in messages]
        previous = (
            old.messages[self._selected].message_id if self._selected < len(old.messages) else None
        )
        if self._page is Page.MESSAGE and self._open_id not in ids:
            self._page = Page.MESSAGES
        if previous in ids:
            self._selected = ids.index(previous)
        self._selected = min(self._selected, max(len(messages) - 1, 0))
        self._top = max(min(self._top, self._selected, max(len(messages) - LIST_ENTRIES, 0)), 0)
        self._top = max(self._top, self._selected - LIST_ENTRIES + 1)

    @staticmethod
    def _has_news(old: ViewState, new: ViewState) -> bool:
        newest_old = old.messages[0].message_id if old.messages else None
        newest_new = new.messages[0].message_id if new.messages else None
        new_message = newest_new != newest_old and new.unread > old.unread
        return (
            new_message
            or (new.error is not None and new.error != old.error)
            or (new.pairing is not None and old.pairing is None)
            or (new.wrong_pairing_codes > 0 and not old.wrong_pairing_codes)
            or (new.reset_pending and not old.reset_pending)
        )


def _has_bitchat_mail(state: ViewState) -> bool:
    """Whether the bitchat mail page has something to show (the courier or the gateway runs)."""
    return state.bitchat_courier is not None or state.bitchat_gateway is not None
