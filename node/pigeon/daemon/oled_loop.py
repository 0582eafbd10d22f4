"""The OLED loop: button edges through the decoder and the UI machine, frames to the display.

Button drivers may call from their own thread (RPi.GPIO does): edges are handed to the loop with
`call_soon_threadsafe`. The loop wakes at the earliest of a button edge, a `refresh()` call, the
decoder's next deadline, the machine's next change, and `poll_s` (to pick up node state that
changed without a call); it renders and sends a frame only when the view changed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Final

from pigeon.drivers import ButtonEvent, Buttons, Display
from pigeon.drivers.errors import DriverError
from pigeon.ui.oled import (
    Action,
    ButtonDecoder,
    ScreenView,
    UiMachine,
    UiRequest,
    ViewState,
    render,
)

_LOGGER = logging.getLogger(__name__)

POLL_S: Final = 1.0

StateSource = Callable[[float], ViewState]
RequestHandler = Callable[[UiRequest, float], None]


class OledLoop:
    """Runs the OLED; `state(now)` gives the node's view state on the monotonic clock."""

    def __init__(
        self,
        display: Display | None,
        buttons: Buttons | None,
        state: StateSource,
        on_request: RequestHandler,
        *,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = POLL_S,
    ) -> None:
        self._display = display
        self._buttons = buttons
        self._state = state
        self._on_request = on_request
        self._clock = clock
        self._poll_s = poll_s
        self._decoder = ButtonDecoder()
        self._decoder_s = float("-inf")
        self._events: collections.deque[ButtonEvent] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.frames_shown = 0
        self.view: ScreenView | None = None

    def refresh(self) -> None:
        """Look at the node's state now (call from the event loop's thread)."""
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Show frames and decode buttons until cancelled; releases the buttons and the display."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        now = self._clock()
        last_state = self._state(now)
        machine = UiMachine(last_state, now)
        if self._buttons is not None:
            try:
                self._buttons.start(self._from_driver)
            except DriverError as exc:  # no GPIO: the screen still works, the page still pairs
                _LOGGER.error("the buttons cannot start: %s; running without them", exc)
                self._buttons = None
        try:
            while True:
                now = self._clock()
                state = self._state(now)
                if state != last_state:
                    machine.update(state, now)
                    last_state = state
                self._drain(machine)
                self._decoder_s = max(now, self._decoder_s)
                for action in self._decoder.tick(self._decoder_s):
                    self._act(machine, action, now)
                self._show(machine.view(now))
                await self._wait(self._deadline(machine, now) - now)
        finally:
            self._wake = None
            if self._buttons is not None:
                self._buttons.close()
            if self._display is not None:
                self._display.close()

    def _from_driver(self, event: ButtonEvent) -> None:
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed while a press came in
            loop.call_soon_threadsafe(self._push, event)

    def _push(self, event: ButtonEvent) -> None:
        self._events.append(event)
        if self._wake is not None:
            self._wake.set()

    def _drain(self, machine: UiMachine) -> None:
        while self._events:
            event = self._events.popleft()
            # An edge stamped by a driver thread may predate the last tick: never go back.
            t_s = self._decoder_s = max(event.t_s, self._decoder_s)
            for action in self._decoder.edge(event.button, event.pressed, t_s):
                self._act(machine, action, t_s)

    def _act(self, machine: UiMachine, action: Action, now: float) -> None:
        for request in machine.act(action, now):
            self._on_request(request, now)

    def _show(self, view: ScreenView) -> None:
        if view == self.view:
            return
        self.view = view
        if self._display is not None:
            self._display.show(render(view))
            self.frames_shown += 1

    def _deadline(self, machine: UiMachine, now: float) -> float:
        candidates = [now + self._poll_s]
        for deadline in (self._decoder.next_deadline_s(), machine.next_change_s(now)):
            if deadline is not None:
                candidates.append(deadline)
        return max(min(candidates), now)

    async def _wait(self, timeout_s: float) -> None:
        wake = self._wake
        assert wake is not None
        if self._events:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):  # not wait_for: 3.11's can lose a cancel
                await wake.wait()
        wake.clear()
