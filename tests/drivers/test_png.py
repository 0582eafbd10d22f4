"""PngDisplay keeps the current frame for the web page and writes it on request."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from pigeon.drivers import PngDisplay, check_display
from pigeon.drivers.errors import DeviceIoError


def frame() -> Image.Image:
    image = Image.new("1", (128, 64), 0)
    image.paste(1, (5, 5, 60, 30))
    return image


def test_passes_the_display_conformance_check() -> None:
    check_display(PngDisplay())


def test_starts_dark_and_keeps_a_copy_of_the_last_frame() -> None:
    display = PngDisplay()
    assert display.frame().tobytes() == Image.new("1", (128, 64), 0).tobytes()
    image = frame()
    display.show(image)
    image.paste(0, (0, 0, 128, 64))  # the caller reusing its image must not change ours
    assert display.frame().tobytes() == frame().tobytes()


def test_frame_png_is_a_1_bit_png_of_the_frame() -> None:
    display = PngDisplay()
    display.show(frame())
    with Image.open(io.BytesIO(display.frame_png())) as decoded:
        assert (decoded.format, decoded.mode, decoded.size) == ("PNG", "1", (128, 64))
        assert decoded.tobytes() == frame().tobytes()


def test_save_writes_the_frame_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    display = PngDisplay()
    display.show(frame())
    target = tmp_path / "oled.png"
    display.save(target)
    display.save(target)
    with Image.open(target) as saved:
        assert saved.tobytes() == frame().tobytes()
    assert [path.name for path in tmp_path.iterdir()] == ["oled.png"]


def test_save_into_a_missing_directory_is_an_io_error(tmp_path: Path) -> None:
    with pytest.raises(DeviceIoError):
        PngDisplay().save(tmp_path / "missing" / "oled.png")
