"""VirtualButtons: presses from the web page and tests, in the same shape as GPIO edges."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from pigeon.drivers import ButtonEvent, VirtualButtons, check_buttons
from pigeon.drivers.errors import DeviceClosed, UnknownButton


def actuator(buttons: VirtualButtons) -> Callable[[str, bool], None]:
    def actuate(button: str, pressed: bool) -> None:
        (buttons.press if pressed else buttons.release)(button)

    return actuate


def test_passes_the_buttons_conformance_check() -> None:
    buttons = VirtualButtons()
    check_buttons(buttons, actuator(buttons))


def test_edges_are_stamped_by_the_injected_clock() -> None:
    ticks = itertools.count(start=100.0, step=0.25)
    buttons = VirtualButtons(clock=lambda: next(ticks))
    events: list[ButtonEvent] = []
    buttons.start(events.append)
    buttons.press("a")
    buttons.press("a")  # already down: no edge
    buttons.release("a")
    buttons.release("b")  # already up: no edge
    assert events == [ButtonEvent("a", True, 100.0), ButtonEvent("a", False, 100.25)]


def test_unknown_button_and_closed_driver_are_refused() -> None:
    buttons = VirtualButtons(["ok"])
    buttons.start(lambda event: None)
    with pytest.raises(UnknownButton):
        buttons.press("a")
    buttons.close()
    with pytest.raises(DeviceClosed):
        buttons.press("ok")
    with pytest.raises(DeviceClosed):
        buttons.start(lambda event: None)
