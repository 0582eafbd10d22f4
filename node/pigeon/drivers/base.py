"""The display and button seams: what every driver and stand-in promises, in plain values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from PIL import Image

from pigeon.drivers.errors import InvalidFrame

WIDTH: Final = 128
HEIGHT: Final = 64
MODE: Final = "1"


@dataclass(frozen=True, slots=True)
class ButtonEvent:
    """Button `button` went down (`pressed`) or up at `t_s` seconds on a monotonic clock."""

    button: str
    pressed: bool
    t_s: float


ButtonSink = Callable[[ButtonEvent], None]


class Display(Protocol):
    """A 128x64 monochrome panel."""

    def show(self, image: Image.Image) -> None:
        """Put `image` on the panel. Raises InvalidFrame, DeviceIoError, DeviceClosed."""

    def close(self) -> None:
        """Blank the panel and release it; idempotent."""


class Buttons(Protocol):
    """A set of named push buttons reporting edges with timestamps."""

    @property
    def button_ids(self) -> tuple[str, ...]:
        """The ids this driver reports, e.g. ("a", "b")."""

    def start(self, sink: ButtonSink) -> None:
        """Begin reporting edges to `sink`, in order, with non-decreasing times; call once.

        `sink` must not block; a hardware driver may call it from its own thread. Raises
        DeviceNotFound, DeviceClosed.
        """

    def close(self) -> None:
        """Stop reporting and release the pins; idempotent. No sink call follows its return."""


def check_frame(image: Image.Image) -> None:
    """Raise InvalidFrame unless `image` is 128x64 in mode "1"."""
    if image.mode != MODE or image.size != (WIDTH, HEIGHT):
        raise InvalidFrame(
            f"frame must be {WIDTH}x{HEIGHT} mode {MODE!r}, "
            f"got {image.size[0]}x{image.size[1]} mode {image.mode!r}"
        )
