"""Ssd1306Display drives luma.oled's real SSD1306/SH1106 code over a recorded I2C bus."""

from __future__ import annotations

import errno
import os
from typing import Literal

import pytest
from PIL import Image

from pigeon.drivers import Ssd1306Display, check_display
from pigeon.drivers.errors import DeviceIoError, DeviceNotFound

DATA_MODE = 0x40


class RecordingBus:
    """An smbus2-like bus with an OLED on it: records every block write, or fails them."""

    def __init__(self) -> None:
        self.writes: list[tuple[int, int, bytes]] = []
        self.fail_errno: int | None = None

    def write_i2c_block_data(self, address: int, mode: int, data: list[int]) -> None:
        if self.fail_errno is not None:
            raise OSError(self.fail_errno, os.strerror(self.fail_errno))
        self.writes.append((address, mode, bytes(data)))

    def frame_data(self) -> bytes:
        return b"".join(data for _, mode, data in self.writes if mode == DATA_MODE)


def decode_pages(data: bytes) -> Image.Image:
    """The 128x64 image that SSD1306 page-format bytes (8 rows per byte, LSB on top) draw."""
    image = Image.new("1", (128, 64), 0)
    for index, byte in enumerate(data):
        page, x = divmod(index, 128)
        for bit in range(8):
            if byte >> bit & 1:
                image.putpixel((x, page * 8 + bit), 1)
    return image


def sample_frame() -> Image.Image:
    image = Image.new("1", (128, 64), 0)
    for x in range(128):
        image.putpixel((x, (x * 7) % 64), 1)
    image.paste(1, (10, 20, 30, 25))
    return image


@pytest.mark.parametrize("controller", ["ssd1306", "sh1106"])
def test_frame_reaches_the_panel_pixel_for_pixel(
    controller: Literal["ssd1306", "sh1106"],
) -> None:
    bus = RecordingBus()
    display = Ssd1306Display(address=0x3D, controller=controller, bus=bus)
    assert {address for address, _, _ in bus.writes} == {0x3D}
    bus.writes.clear()
    frame = sample_frame()
    display.show(frame)
    data = bus.frame_data()
    assert len(data) == 1024
    assert decode_pages(data).tobytes() == frame.tobytes()


def test_identical_frames_are_not_sent_again() -> None:
    bus = RecordingBus()
    display = Ssd1306Display(bus=bus)
    display.show(sample_frame())
    sent = len(bus.writes)
    display.show(sample_frame())
    assert len(bus.writes) == sent
    display.show(Image.new("1", (128, 64), 1))
    assert len(bus.writes) > sent


def test_passes_the_display_conformance_check() -> None:
    check_display(Ssd1306Display(bus=RecordingBus()))


def test_close_switches_the_panel_off_once() -> None:
    bus = RecordingBus()
    display = Ssd1306Display(bus=bus)
    bus.writes.clear()
    display.close()
    assert (0x3C, 0x00, bytes([0xAE])) in bus.writes  # DISPLAYOFF
    count = len(bus.writes)
    display.close()
    assert len(bus.writes) == count


def test_no_device_at_the_address_is_device_not_found() -> None:
    bus = RecordingBus()
    bus.fail_errno = errno.EREMOTEIO
    with pytest.raises(DeviceNotFound, match="0x3C"):
        Ssd1306Display(bus=bus)


def test_missing_i2c_bus_is_device_not_found() -> None:
    with pytest.raises(DeviceNotFound, match="port 99"):
        Ssd1306Display(port=99)


def test_panel_vanishing_mid_run_is_an_io_error_and_the_frame_is_retried() -> None:
    bus = RecordingBus()
    display = Ssd1306Display(bus=bus)
    bus.fail_errno = errno.EIO
    with pytest.raises(DeviceIoError):
        display.show(sample_frame())
    bus.fail_errno = None
    bus.writes.clear()
    display.show(sample_frame())
    assert decode_pages(bus.frame_data()[-1024:]).tobytes() == sample_frame().tobytes()


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="controller"):
        Ssd1306Display(controller="ssd1309", bus=RecordingBus())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rotate"):
        Ssd1306Display(rotate=1, bus=RecordingBus())


def test_close_on_a_vanished_panel_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    bus = RecordingBus()
    display = Ssd1306Display(bus=bus)
    bus.fail_errno = errno.EREMOTEIO
    display.close()
    assert "did not switch off" in caplog.text


def test_rotate_two_turns_an_upside_down_panel_the_right_way() -> None:
    bus = RecordingBus()
    display = Ssd1306Display(rotate=2, bus=bus)
    bus.writes.clear()
    display.show(sample_frame())
    rotated = sample_frame().transpose(Image.Transpose.ROTATE_180)
    assert decode_pages(bus.frame_data()).tobytes() == rotated.tobytes()
