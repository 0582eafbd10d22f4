"""GpioButtons against a stand-in for the absent RPi.GPIO module (a fake pin bank)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from pigeon.drivers import ButtonEvent, GpioButtons, check_buttons
from pigeon.drivers.errors import DeviceNotFound


class FakeGpio:
    """The part of RPi.GPIO that GpioButtons uses, with pins a test can pull low."""

    BCM = 11
    IN = 1
    PUD_UP = 22
    BOTH = 33
    LOW = 0
    HIGH = 1

    def __init__(self, fail_setup: bool = False) -> None:
        self.mode: int | None = None
        self.setups: dict[int, tuple[int, int]] = {}
        self.callbacks: dict[int, tuple[Callable[[int], None], int]] = {}
        self.levels: dict[int, int] = {}
        self.cleaned: list[int] = []
        self.fail_setup = fail_setup

    def setmode(self, mode: int) -> None:
        self.mode = mode

    def setup(self, pin: int, direction: int, pull_up_down: int) -> None:
        if self.fail_setup:
            raise RuntimeError("No access to /dev/mem")
        self.setups[pin] = (direction, pull_up_down)
        self.levels[pin] = self.HIGH if pull_up_down == self.PUD_UP else self.LOW

    def add_event_detect(
        self, pin: int, edge: int, callback: Callable[[int], None], bouncetime: int
    ) -> None:
        assert edge == self.BOTH
        self.callbacks[pin] = (callback, bouncetime)

    def remove_event_detect(self, pin: int) -> None:
        if pin not in self.callbacks:
            raise RuntimeError("not set up")
        del self.callbacks[pin]

    def input(self, pin: int) -> int:
        return self.levels[pin]

    def cleanup(self, pins: list[int]) -> None:
        self.cleaned.extend(pins)

    def drive(self, pin: int, level: int) -> None:
        """The switch closes (LOW) or opens (HIGH): fire the edge callback like RPi.GPIO."""
        if self.levels.get(pin) == level:
            return
        self.levels[pin] = level
        if pin in self.callbacks:
            self.callbacks[pin][0](pin)


PINS = {"a": 17, "b": 27}


def test_pins_get_pull_ups_both_edges_and_bounce_time() -> None:
    gpio = FakeGpio()
    GpioButtons(PINS, bounce_ms=15, gpio=gpio).start(lambda event: None)
    assert gpio.mode == FakeGpio.BCM
    assert gpio.setups == {17: (FakeGpio.IN, FakeGpio.PUD_UP), 27: (FakeGpio.IN, FakeGpio.PUD_UP)}
    assert {pin: bounce for pin, (_, bounce) in gpio.callbacks.items()} == {17: 15, 27: 15}


def test_passes_the_buttons_conformance_check_and_releases_its_pins() -> None:
    gpio = FakeGpio()
    buttons = GpioButtons(PINS, gpio=gpio)

    def actuate(button: str, pressed: bool) -> None:
        gpio.drive(PINS[button], FakeGpio.LOW if pressed else FakeGpio.HIGH)

    check_buttons(buttons, actuate)
    assert gpio.callbacks == {}
    assert sorted(gpio.cleaned) == [17, 27]


def test_pressed_means_pulled_low_and_times_never_go_back() -> None:
    gpio = FakeGpio()
    times = iter([5.0, 4.0, 6.0])
    buttons = GpioButtons(PINS, gpio=gpio, clock=lambda: next(times))
    events: list[ButtonEvent] = []
    buttons.start(events.append)
    gpio.drive(17, FakeGpio.LOW)
    gpio.drive(17, FakeGpio.HIGH)
    gpio.drive(27, FakeGpio.LOW)
    assert events == [
        ButtonEvent("a", True, 5.0),
        ButtonEvent("a", False, 5.0),
        ButtonEvent("b", True, 6.0),
    ]


def test_defaults_are_the_documented_pins() -> None:
    gpio = FakeGpio()
    GpioButtons(gpio=gpio).start(lambda event: None)
    assert sorted(gpio.setups) == [17, 27]


def test_without_rpi_gpio_start_is_device_not_found() -> None:
    with pytest.raises(DeviceNotFound):
        GpioButtons(PINS).start(lambda event: None)


def test_gpio_access_refused_is_device_not_found_and_pins_are_released() -> None:
    gpio = FakeGpio(fail_setup=True)
    with pytest.raises(DeviceNotFound):
        GpioButtons(PINS, gpio=gpio).start(lambda event: None)
    assert sorted(gpio.cleaned) == [17, 27]


def test_two_buttons_on_one_pin_are_refused() -> None:
    with pytest.raises(ValueError, match="share"):
        GpioButtons({"a": 17, "b": 17})


def test_edges_from_unknown_pins_are_ignored() -> None:
    gpio = FakeGpio()
    events: list[ButtonEvent] = []
    buttons = GpioButtons(PINS, gpio=gpio, clock=itertools.count().__next__)
    buttons.start(events.append)
    buttons._on_edge(4)  # RPi.GPIO itself only calls back for pins we set up
    assert events == []
