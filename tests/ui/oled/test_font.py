"""The shipped BDF fonts load, draw pixel-exact glyphs, and bad font files are refused."""

from __future__ import annotations

import pytest
from PIL import Image

from pigeon.ui.oled.errors import OledError
from pigeon.ui.oled.font import BitmapFont, body_font, large_font, small_font

TINY_BDF = """STARTFONT 2.1
FONT tiny
FONTBOUNDINGBOX 3 3 0 0
FONT_ASCENT 3
FONT_DESCENT 0
CHARS 1
STARTCHAR question
ENCODING 63
DWIDTH 3 0
BBX 3 3 0 0
BITMAP
E0
20
40
ENDCHAR
ENDFONT
"""


def pixels(image: Image.Image) -> list[str]:
    width, height = image.size
    return ["".join(str(image.getpixel((x, y))) for x in range(width)) for y in range(height)]


def test_fonts_have_the_cells_the_layout_assumes() -> None:
    cells = [(f.cell_width, f.cell_height) for f in (small_font(), body_font(), large_font())]
    assert cells == [(5, 8), (6, 10), (10, 20)]
    assert body_font().has("Ж")
    assert body_font().has("\u2026")
    assert not large_font().has("Ж")


def test_glyph_is_drawn_from_its_bitmap_at_the_cell_origin() -> None:
    font = BitmapFont("tiny", TINY_BDF)
    image = Image.new("1", (8, 4), 0)
    font.draw(image, 1, 1, "?x")  # "x" falls back to "?"
    assert pixels(image) == ["00000000", "01111110", "00010010", "00100100"]
    assert font.width("?x") == 6
    assert font.columns(7) == 2


def test_dark_ink_on_a_lit_background() -> None:
    font = BitmapFont("tiny", TINY_BDF)
    image = Image.new("1", (3, 3), 1)
    font.draw(image, 0, 0, "?", 0)
    assert pixels(image) == ["000", "110", "101"]


@pytest.mark.parametrize(
    "broken",
    [
        TINY_BDF.replace("FONT_ASCENT 3\n", ""),
        TINY_BDF.replace("DWIDTH 3 0", "DWIDTH 4 0"),
        TINY_BDF.replace("E0\n20\n40\n", "E0\n"),
        TINY_BDF.replace("ENCODING 63", "ENCODING 65"),
        TINY_BDF.replace("BITMAP\n", ""),
    ],
)
def test_malformed_font_is_refused(broken: str) -> None:
    with pytest.raises(OledError):
        BitmapFont("broken", broken)
