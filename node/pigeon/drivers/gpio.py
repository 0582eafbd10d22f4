"""`GpioButtons`: push buttons on BCM pins through RPi.GPIO (rpi-lgpio provides it on a Pi 5).

Each button connects its pin to ground; the internal pull-up holds it high, so pressed reads
low. RPi.GPIO is imported in `start`, never at module import: on anything but a Pi it raises
at import, and `import pigeon.drivers` must work everywhere.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from pigeon.drivers.base import ButtonEvent, ButtonSink
from pigeon.drivers.errors import DeviceClosed, DeviceNotFound

_LOGGER = logging.getLogger(__name__)

# Physical pins 11 and 13, next to a ground on pin 9 (see hardware/README.md).
DEFAULT_PINS: Final = {"a": 17, "b": 27}
DEFAULT_BOUNCE_MS: Final = 10  # a first filter; the UI decoder debounces properly


class GpioButtons:
    """Buttons on BCM pins, edges stamped with `clock` and reported in order."""

    def __init__(
        self,
        pins: Mapping[str, int] = DEFAULT_PINS,
        *,
        bounce_ms: int = DEFAULT_BOUNCE_MS,
        clock: Callable[[], float] = time.monotonic,
        gpio: Any = None,
    ) -> None:
        """`pins` maps button ids to BCM numbers; `gpio` replaces the RPi.GPIO module."""
        if len(set(pins.values())) != len(pins):
            raise ValueError("two buttons share a GPIO pin")
        self._pins = dict(pins)
        self._buttons_by_pin = {pin: button for button, pin in self._pins.items()}
        self._bounce_ms = bounce_ms
        self._clock = clock
        self._gpio = gpio
        self._sink: ButtonSink | None = None
        self._closed = False
        self._last_s = float("-inf")
        # RPi.GPIO calls back from its own thread: stamp and deliver under one lock, in order.
        self._lock = threading.Lock()

    @property
    def button_ids(self) -> tuple[str, ...]:
        """The ids this driver reports."""
        return tuple(self._pins)

    def start(self, sink: ButtonSink) -> None:
        """Configure the pins (input, pull-up, both edges) and report to `sink`.

        Raises DeviceNotFound without RPi.GPIO or GPIO access, DeviceClosed after close.
        """
        if self._closed:
            raise DeviceClosed("buttons are closed")
        gpio = self._gpio if self._gpio is not None else _import_gpio()
        self._gpio = gpio
        self._sink = sink
        try:
            gpio.setmode(gpio.BCM)
            for pin in self._pins.values():
                gpio.setup(pin, gpio.IN, pull_up_down=gpio.PUD_UP)
                gpio.add_event_detect(
                    pin, gpio.BOTH, callback=self._on_edge, bouncetime=self._bounce_ms
                )
        except (RuntimeError, OSError) as exc:
            self._release_pins()
            raise DeviceNotFound("cannot configure the button GPIO pins") from exc
        _LOGGER.info("buttons on BCM pins %s", self._pins)

    def close(self) -> None:
        """Stop callbacks and release the pins; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._sink = None
        if self._gpio is not None:
            self._release_pins()

    def _on_edge(self, pin: int) -> None:
        gpio = self._gpio
        button = self._buttons_by_pin.get(pin)
        if gpio is None or button is None:
            return
        with self._lock:
            if self._sink is None:
                return
            pressed = gpio.input(pin) == gpio.LOW
            # time.monotonic never goes back; a clock that did must not reorder events.
            self._last_s = max(self._last_s, self._clock())
            self._sink(ButtonEvent(button, pressed, self._last_s))

    def _release_pins(self) -> None:
        gpio = self._gpio
        for pin in self._pins.values():
            try:
                gpio.remove_event_detect(pin)
            except (RuntimeError, OSError):
                _LOGGER.debug("no edge detection to remove on pin %d", pin)
        try:
            gpio.cleanup(list(self._pins.values()))
        except (RuntimeError, OSError):
            _LOGGER.warning("GPIO cleanup failed", exc_info=True)


def _import_gpio() -> Any:
    try:
        import RPi.GPIO as gpio
    except ImportError as exc:
        raise DeviceNotFound("RPi.GPIO is not installed (rpi-lgpio on a Pi 5)") from exc
    except RuntimeError as exc:
        # RPi.GPIO refuses to import on anything but a Raspberry Pi.
        raise DeviceNotFound("RPi.GPIO cannot run on this machine") from exc
    return gpio
