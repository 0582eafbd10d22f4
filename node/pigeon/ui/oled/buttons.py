"""Button gestures decoded from timestamped edges into UI actions (sans-IO, no clock inside).

Two buttons, "a" (config `buttons.next_pin`) and "b" (`buttons.select_pin`), each wired to
ground with a pull-up (see hardware/README.md). Button "a" alone reaches every screen, so a
one-button build works too:

| gesture | action |
| --- | --- |
| press "a" shorter than 1 s | NEXT |
| press "a" for 1 s to 3 s | SELECT |
| press "b" shorter than 1 s | SELECT |
| press "b" for 1 s to 3 s | BACK |
| hold either button for 3 s | PAIRING (fires while still held) |
| hold both buttons together for 10 s | RESET (fires while still held) |

A press that becomes part of a two-button chord yields no single-button action, whatever the
release order. Debounce: a level counts only once it has been stable for 30 ms, and it counts
from the moment it began, so bounces and glitches shorter than that are ignored without
skewing durations. Feed every edge to `edge`, and call `tick` by `next_deadline_s` (or every
few tens of milliseconds): releases are committed and holds fire on time only then.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final

from pigeon.ui.oled.errors import InvalidEvent

BUTTON_A: Final = "a"
BUTTON_B: Final = "b"
BUTTONS: Final = (BUTTON_A, BUTTON_B)
DEBOUNCE_S: Final = 0.030
LONG_PRESS_S: Final = 1.0
PAIRING_HOLD_S: Final = 3.0
RESET_HOLD_S: Final = 10.0
_FOREVER: Final = float("inf")


class Action(enum.Enum):
    """What the owner asked for with the buttons."""

    NEXT = "next"
    SELECT = "select"
    BACK = "back"
    PAIRING = "pairing"
    RESET = "reset"


_SHORT: Final = {BUTTON_A: Action.NEXT, BUTTON_B: Action.SELECT}
_LONG: Final = {BUTTON_A: Action.SELECT, BUTTON_B: Action.BACK}


@dataclass(slots=True)
class _Button:
    raw: bool = False  # last level reported, maybe still bouncing
    raw_since: float = 0.0
    down: bool = False  # debounced level
    down_since: float = 0.0
    held: bool = False  # PAIRING already fired for this press

    @property
    def settling(self) -> bool:
        return self.raw != self.down


class ButtonDecoder:
    """Turns edges of buttons "a" and "b" into `Action`s; all times in seconds, one clock."""

    def __init__(self) -> None:
        self._buttons = {name: _Button() for name in BUTTONS}
        self._chord = False  # both were down together; cleared when both are up
        self._chord_since = 0.0
        self._reset_fired = False
        self._last_s = float("-inf")

    def edge(self, button: str, pressed: bool, t_s: float) -> tuple[Action, ...]:
        """`button` went down (`pressed`) or up at `t_s`; returns the actions now complete.

        Raises InvalidEvent for an unknown button or a time before the previous call's.
        """
        state = self._buttons.get(button)
        if state is None:
            raise InvalidEvent("unknown button")
        actions = self.tick(t_s)
        if pressed != state.raw:
            state.raw = pressed
            state.raw_since = t_s
        return actions

    def tick(self, t_s: float) -> tuple[Action, ...]:
        """Advance to `t_s`: commit settled levels and fire holds that are due.

        Raises InvalidEvent for a time that is not finite or before the previous call's.
        """
        if not math.isfinite(t_s) or t_s < self._last_s:
            raise InvalidEvent("button time is not finite or went backwards")
        self._last_s = t_s
        actions: list[Action] = []
        while (settled := self._next_settled(t_s)) is not None:
            name, at = settled
            actions.extend(self._fire_holds(at))
            actions.extend(self._commit(name, at))
        actions.extend(self._fire_holds(min(t_s, self._known_until())))
        return tuple(actions)

    def next_deadline_s(self) -> float | None:
        """When `tick` may next produce or commit something; None while nothing is pending."""
        known = self._known_until()
        deadlines = [b.raw_since + DEBOUNCE_S for b in self._buttons.values() if b.settling]
        deadlines.extend(d for d in self._hold_deadlines() if d <= known)
        return min(deadlines, default=None)

    def _known_until(self) -> float:
        # Levels are certain up to the first edge that is still bouncing.
        return min((b.raw_since for b in self._buttons.values() if b.settling), default=_FOREVER)

    def _next_settled(self, t_s: float) -> tuple[str, float] | None:
        due = [
            (b.raw_since, name)
            for name, b in self._buttons.items()
            if b.settling and b.raw_since + DEBOUNCE_S <= t_s
        ]
        if not due:
            return None
        at, name = min(due)
        return name, at

    def _commit(self, name: str, at: float) -> tuple[Action, ...]:
        state = self._buttons[name]
        state.down = state.raw
        if state.down:
            state.down_since = at
            state.held = False
            if self._both_down():
                self._chord = True
                self._chord_since = at
            return ()
        if self._chord:
            if not any(b.down for b in self._buttons.values()):
                self._chord = False
                self._reset_fired = False
            return ()
        if state.held:
            return ()
        long_press = state.down_since + LONG_PRESS_S <= at
        return ((_LONG if long_press else _SHORT)[name],)

    def _hold_deadlines(self) -> list[float]:
        if self._chord:
            if self._both_down() and not self._reset_fired:
                return [self._chord_since + RESET_HOLD_S]
            return []
        return [
            b.down_since + PAIRING_HOLD_S for b in self._buttons.values() if b.down and not b.held
        ]

    def _fire_holds(self, until_s: float) -> tuple[Action, ...]:
        if not any(deadline <= until_s for deadline in self._hold_deadlines()):
            return ()
        if self._chord:
            self._reset_fired = True
            return (Action.RESET,)
        actions: list[Action] = []
        for state in self._buttons.values():
            if state.down and not state.held and state.down_since + PAIRING_HOLD_S <= until_s:
                state.held = True
                actions.append(Action.PAIRING)
        return tuple(actions)

    def _both_down(self) -> bool:
        return all(b.down for b in self._buttons.values())
