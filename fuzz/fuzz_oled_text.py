"""Fuzz the OLED screens with text from outside (message bodies, sender names, errors, URLs).

A peer controls message text and names; every screen must lay them out inside the panel
without raising. Only InvalidView may escape, and only from the pairing URL check.
"""

import datetime
import sys

import atheris
import PIL.Image
import PIL.ImageDraw  # noqa: F401 - see below
import segno  # noqa: F401 - see below

# Pillow and segno are imported above, uninstrumented: coverage is wanted in our code only.
with atheris.instrument_imports():
    from pigeon.ui.oled.errors import InvalidView
    from pigeon.ui.oled.screens import BODY_ROWS, MESSAGE_COLUMNS, message_lines, render
    from pigeon.ui.oled.state import Message, Pairing
    from pigeon.ui.oled.views import (
        ErrorView,
        MessageListView,
        MessageView,
        PairingView,
        ScreenView,
    )

_AT = datetime.datetime(2026, 11, 21, 12, 0)


def fuzz_one_input(data: bytes) -> None:
    """Render `data` (as text) on every screen that shows outside text."""
    scroll = data[0] if data else 0
    text = data[1:].decode("utf-8", errors="surrogateescape" if scroll & 1 else "replace")
    message = Message("m", text, text, _AT, bool(scroll & 2))
    lines = message_lines(message)
    if not lines or any(len(line) > MESSAGE_COLUMNS for line in lines):
        raise RuntimeError("message lines overflow the screen")
    views: list[ScreenView] = [
        MessageView(message, min(scroll, max(len(lines) - BODY_ROWS, 0)), _AT.date()),
        MessageListView((message,), 0, 0, None),
        ErrorView(text),
    ]
    try:
        pairing = Pairing("123456", text, bytes(32), 60.0)
    except InvalidView:
        pass
    else:
        views.append(PairingView(pairing.code, pairing.url, pairing.cert_sha256, 60))
    for view in views:
        image = render(view)
        if (image.mode, image.size) != ("1", (128, 64)):
            raise RuntimeError("a screen is not a 128x64 1-bit image")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
