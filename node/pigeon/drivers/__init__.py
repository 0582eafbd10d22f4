"""Hardware drivers and their stand-ins: the only place luma and RPi.GPIO appear.

Drivers speak plain values: a 128x64 mode-"1" image, a button id, pressed, a time. Hardware
libraries are imported only when a real driver is built or started, so this package imports
on any machine. Public API (errors in `pigeon.drivers.errors`, all under `DriverError`):
`Display`, `Buttons`, `ButtonEvent`, `Ssd1306Display`, `PngDisplay`, `GpioButtons`,
`VirtualButtons`, and the checks `check_display`, `check_buttons`.
"""

from pigeon.drivers.base import ButtonEvent, Buttons, ButtonSink, Display, check_frame
from pigeon.drivers.conformance import check_buttons, check_display
from pigeon.drivers.gpio import DEFAULT_PINS, GpioButtons
from pigeon.drivers.png import PngDisplay
from pigeon.drivers.ssd1306 import DEFAULT_I2C_ADDRESS, DEFAULT_I2C_PORT, Ssd1306Display
from pigeon.drivers.virtual import VirtualButtons

__all__ = [
    "DEFAULT_I2C_ADDRESS",
    "DEFAULT_I2C_PORT",
    "DEFAULT_PINS",
    "ButtonEvent",
    "ButtonSink",
    "Buttons",
    "Display",
    "GpioButtons",
    "PngDisplay",
    "Ssd1306Display",
    "VirtualButtons",
    "check_buttons",
    "check_display",
    "check_frame",
]
