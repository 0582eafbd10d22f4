"""Every screen, shown through luma's dummy device, matches its PNG in golden/ pixel for pixel.

To accept new or changed screens, regenerate and then look at every changed PNG:

    PIGEON_REGEN_GOLDEN=1 .venv/bin/pytest tests/ui/oled/test_golden.py

A mismatch leaves the rendered frame in pytest's tmp_path and names it in the failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import zxingcpp
from luma.core.device import dummy
from PIL import Image

from pigeon.ui.oled import qr
from pigeon.ui.oled.screens import HEIGHT, WIDTH, render
from pigeon.ui.oled.views import PairingView
from tests.ui.oled.samples import SCREENS

GOLDEN_DIR = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("PIGEON_REGEN_GOLDEN") == "1"


def _through_luma(image: Image.Image) -> Image.Image:
    device = dummy(width=WIDTH, height=HEIGHT, mode="1")
    device.display(image)
    shown: Image.Image = device.image
    return shown


@pytest.mark.parametrize("name", sorted(SCREENS))
def test_screen_matches_golden(name: str, tmp_path: Path) -> None:
    shown = _through_luma(render(SCREENS[name]))
    golden_path = GOLDEN_DIR / f"{name}.png"
    if REGENERATE:
        shown.save(golden_path, optimize=True)
    with Image.open(golden_path) as golden:
        assert (golden.mode, golden.size) == ("1", (WIDTH, HEIGHT))
        matches = golden.tobytes() == shown.tobytes()
    if not matches:
        actual = tmp_path / f"{name}.png"
        shown.save(actual)
        pytest.fail(f"{name} differs from {golden_path}; rendered frame saved at {actual}")


def test_every_golden_file_has_a_screen() -> None:
    names = {path.stem for path in GOLDEN_DIR.glob("*.png")}
    assert names == set(SCREENS)


@pytest.mark.parametrize("name", ["pairing", "pairing_long_url"])
def test_pairing_qr_scans_as_the_page_url(name: str) -> None:
    view = SCREENS[name]
    assert isinstance(view, PairingView)
    shown = _through_luma(render(view)).convert("L")
    for scale in (1, 3):
        # A phone camera sees the panel much larger than 1 pixel per pixel.
        big = shown.resize((WIDTH * scale, HEIGHT * scale), Image.Resampling.NEAREST)
        results = zxingcpp.read_barcodes(big)
        assert [result.text for result in results] == [qr.qr_text(view.url)]


@pytest.mark.parametrize("name", ["pairing", "pairing_long_url"])
def test_pairing_qr_modules_are_drawn_pixel_exact(name: str) -> None:
    view = SCREENS[name]
    assert isinstance(view, PairingView)
    image = render(view)
    symbol = qr.encode(view.url)
    offset = (qr.AREA_PX - symbol.size_px) // 2
    for y in range(qr.AREA_PX):
        for x in range(qr.AREA_PX):
            module_y, module_x = (y - offset) // symbol.scale, (x - offset) // symbol.scale
            inside = 0 <= module_x < symbol.modules and 0 <= module_y < symbol.modules
            dark = inside and symbol.rows[module_y][module_x] == 1
            assert image.getpixel((x, y)) == (0 if dark else 1), (x, y)
    assert offset >= qr.MIN_QUIET_MODULES * symbol.scale
