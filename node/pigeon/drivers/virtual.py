"""`VirtualButtons`: buttons pressed by the web page's device panel and by tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from pigeon.drivers.base import ButtonEvent, ButtonSink
from pigeon.drivers.errors import DeviceClosed, UnknownButton

DEFAULT_BUTTON_IDS = ("a", "b")


class VirtualButtons:
    """Buttons without hardware: `press` and `release` report edges stamped by `clock`."""

    def __init__(
        self,
        button_ids: Iterable[str] = DEFAULT_BUTTON_IDS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ids = tuple(button_ids)
        self._clock = clock
        self._down: set[str] = set()
        self._sink: ButtonSink | None = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def button_ids(self) -> tuple[str, ...]:
        """The ids this driver reports."""
        return self._ids

    def start(self, sink: ButtonSink) -> None:
        """Report edges to `sink` from now on. Raises DeviceClosed."""
        if self._closed:
            raise DeviceClosed("buttons are closed")
        self._sink = sink

    def press(self, button: str) -> None:
        """Push `button` down; nothing happens if it is already down.

        Raises UnknownButton, DeviceClosed.
        """
        self._set(button, True)

    def release(self, button: str) -> None:
        """Let `button` go; nothing happens if it is already up.

        Raises UnknownButton, DeviceClosed.
        """
        self._set(button, False)

    def close(self) -> None:
        """Stop reporting; idempotent."""
        with self._lock:
            self._closed = True
            self._sink = None

    def _set(self, button: str, pressed: bool) -> None:
        if button not in self._ids:
            raise UnknownButton("unknown button id")
        with self._lock:
            if self._closed:
                raise DeviceClosed("buttons are closed")
            if (button in self._down) == pressed:
                return
            if pressed:
                self._down.add(button)
            else:
                self._down.discard(button)
            event = ButtonEvent(button, pressed, self._clock())
            if self._sink is not None:
                self._sink(event)
