"""`Ssd1306Display`: a 128x64 SSD1306 or SH1106 OLED on I2C, through luma.oled.

luma is imported when a display is built, never at module import, so `import pigeon.drivers`
works on a machine without luma's I2C stack or a panel.
"""

from __future__ import annotations

import logging
from typing import Any, Final, Literal

from PIL import Image

from pigeon.drivers.base import HEIGHT, WIDTH, check_frame
from pigeon.drivers.errors import DeviceClosed, DeviceIoError, DeviceNotFound

_LOGGER = logging.getLogger(__name__)

DEFAULT_I2C_PORT: Final = 1
DEFAULT_I2C_ADDRESS: Final = 0x3C
Controller = Literal["ssd1306", "sh1106"]


class Ssd1306Display:
    """The real panel; skips frames identical to the one already shown (I2C is slow)."""

    def __init__(
        self,
        *,
        port: int = DEFAULT_I2C_PORT,
        address: int = DEFAULT_I2C_ADDRESS,
        controller: Controller = "ssd1306",
        rotate: int = 0,
        bus: Any = None,
    ) -> None:
        """Open /dev/i2c-`port` (or use `bus`, an smbus2-like object) and initialise the panel.

        `rotate` is luma's quarter turns (0 or 2 keep 128x64). Raises DeviceNotFound when the
        bus, the permission or the device at `address` is missing.
        """
        if controller not in ("ssd1306", "sh1106"):
            raise ValueError(f"unknown OLED controller {controller!r}")
        if rotate not in (0, 2):
            raise ValueError("rotate must be 0 or 2 to keep a 128x64 frame")
        try:
            import luma.core.error
            from luma.core.interface.serial import i2c
            from luma.oled.device import sh1106, ssd1306
        except ImportError as exc:
            raise DeviceNotFound("luma.oled is not installed") from exc
        device_class = ssd1306 if controller == "ssd1306" else sh1106
        # luma reports a missing or vanished panel as its own errors, smbus2 as OSError.
        self._device_errors: tuple[type[Exception], ...] = (luma.core.error.Error, OSError)
        try:
            serial = i2c(bus=bus, port=port, address=address)
            self._device = device_class(serial, width=WIDTH, height=HEIGHT, rotate=rotate)
        except self._device_errors as exc:
            raise DeviceNotFound(
                f"no {controller} at I2C port {port} address 0x{address:02X}"
            ) from exc
        self._last: bytes | None = None
        self._closed = False
        _LOGGER.info("%s ready on I2C port %d address 0x%02X", controller, port, address)

    def show(self, image: Image.Image) -> None:
        """Send `image` to the panel. Raises InvalidFrame, DeviceIoError, DeviceClosed."""
        if self._closed:
            raise DeviceClosed("display is closed")
        check_frame(image)
        pixels = image.tobytes()
        if pixels == self._last:
            return
        try:
            self._device.display(image)
        except self._device_errors as exc:
            self._last = None
            raise DeviceIoError("the OLED did not take the frame") from exc
        self._last = pixels

    def close(self) -> None:
        """Clear and switch off the panel and close the bus; idempotent, never raises I/O errors."""
        if self._closed:
            return
        self._closed = True
        try:
            self._device.cleanup()
        except self._device_errors:
            _LOGGER.warning("the OLED did not switch off cleanly", exc_info=True)
