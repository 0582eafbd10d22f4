"""Conformance checks every display and button driver passes, stand-ins as the real ones.

They raise AssertionError (without using `assert`, so they work under -O) on a violation.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable

from PIL import Image

from pigeon.drivers.base import HEIGHT, MODE, WIDTH, ButtonEvent, Buttons, Display
from pigeon.drivers.errors import DeviceClosed, InvalidFrame


def check_display(display: Display) -> None:
    """`display` takes 128x64 mode-"1" frames, refuses others and keeps working, closes twice.

    Closes `display`.
    """
    for fill in (0, 1):
        display.show(Image.new(MODE, (WIDTH, HEIGHT), fill))
    checker = Image.new(MODE, (WIDTH, HEIGHT), 0)
    checker.putdata([(x + y) % 2 for y in range(HEIGHT) for x in range(WIDTH)])
    display.show(checker)
    display.show(checker)
    wrong = (
        Image.new(MODE, (WIDTH, HEIGHT // 2)),
        Image.new(MODE, (HEIGHT, WIDTH)),
        Image.new("L", (WIDTH, HEIGHT)),
        Image.new("RGB", (WIDTH, HEIGHT)),
    )
    for image in wrong:
        try:
            display.show(image)
        except InvalidFrame:
            continue
        _fail(f"accepted a {image.size} mode {image.mode!r} frame")
    display.show(Image.new(MODE, (WIDTH, HEIGHT), 0))
    display.close()
    display.close()
    try:
        display.show(Image.new(MODE, (WIDTH, HEIGHT), 0))
    except DeviceClosed:
        return
    _fail("showed a frame after close")


def check_buttons(buttons: Buttons, actuate: Callable[[str, bool], None]) -> None:
    """`buttons` reports what `actuate(button, pressed)` does, in order, with monotonic times.

    Drives every button, overlapping presses released in both orders; closes `buttons` and
    checks that nothing is reported afterwards.
    """
    ids = buttons.button_ids
    if not ids:
        _fail("no buttons")
    events: list[ButtonEvent] = []
    buttons.start(events.append)
    first, last = ids[0], ids[-1]
    script = [(button, pressed) for button in ids for pressed in (True, False)]
    script += [(first, True), (last, True), (first, False), (last, False)]
    script += [(first, True), (last, True), (last, False), (first, False)]
    if first == last:
        script = [(first, True), (first, False)] * 3
    for button, pressed in script:
        actuate(button, pressed)
    seen = [(event.button, event.pressed) for event in events]
    if seen != script:
        _fail(f"reported {seen}, expected {script}")
    times = [event.t_s for event in events]
    if any(later < earlier for earlier, later in itertools.pairwise(times)):
        _fail("event times went backwards")
    buttons.close()
    buttons.close()
    for button, pressed in ((first, True), (first, False)):
        with contextlib.suppress(DeviceClosed):
            actuate(button, pressed)
    if len(events) != len(script):
        _fail("reported an edge after close")


def _fail(message: str) -> None:
    raise AssertionError(message)
