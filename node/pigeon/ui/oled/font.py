"""Monospaced 1-bit bitmap fonts read from BDF files shipped as package data.

Glyphs are blitted with `Image.paste` through a 1-bit mask, so the result depends only on the
BDF bitmaps, never on FreeType or on Pillow's text layout: golden images are identical on every
machine and Pillow version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

from PIL import Image

from pigeon.ui.oled.errors import OledError

_LOGGER = logging.getLogger(__name__)

REPLACEMENT_CHAR: Final = "\ufffd"


@dataclass(frozen=True, slots=True)
class _Glyph:
    width: int
    height: int
    x_offset: int
    y_offset: int
    bits: bytes


class BitmapFont:
    """A fixed-cell font: every glyph advances by `cell_width` pixels."""

    def __init__(self, name: str, bdf_text: str) -> None:
        self.name = name
        self.cell_width, self.cell_height, self.ascent, glyphs = _parse_bdf(name, bdf_text)
        self._glyphs = glyphs
        self._masks: dict[str, Image.Image] = {}
        self.fallback = REPLACEMENT_CHAR if REPLACEMENT_CHAR in glyphs else "?"

    def has(self, char: str) -> bool:
        """Whether the font draws `char` itself (rather than the fallback glyph)."""
        return char in self._glyphs

    def width(self, text: str) -> int:
        """Width of `text` in pixels."""
        return len(text) * self.cell_width

    def columns(self, pixels: int) -> int:
        """How many characters fit in `pixels`."""
        return max(pixels // self.cell_width, 0)

    def draw(self, image: Image.Image, x: int, y: int, text: str, fill: int = 1) -> None:
        """Draw `text` with its cell's top-left corner at (x, y) in colour `fill` (0 or 1)."""
        baseline = y + self.ascent
        for char in text:
            glyph = self._glyphs.get(char) or self._glyphs[self.fallback]
            mask = self._mask(char if char in self._glyphs else self.fallback, glyph)
            if mask is not None:
                top = baseline - glyph.y_offset - glyph.height
                image.paste(fill, (x + glyph.x_offset, top), mask)
            x += self.cell_width

    def _mask(self, char: str, glyph: _Glyph) -> Image.Image | None:
        if glyph.width == 0 or glyph.height == 0:
            return None
        mask = self._masks.get(char)
        if mask is None:
            mask = Image.frombytes("1", (glyph.width, glyph.height), glyph.bits)
            self._masks[char] = mask
        return mask


def _parse_bdf(name: str, text: str) -> tuple[int, int, int, dict[str, _Glyph]]:
    header, _, body = text.partition("\nSTARTCHAR")
    props = dict(
        line.split(None, 1) for line in header.splitlines() if " " in line and line[0].isalpha()
    )
    try:
        cell_width, cell_height = (int(v) for v in props["FONTBOUNDINGBOX"].split()[:2])
        ascent = int(props["FONT_ASCENT"])
        glyphs: dict[str, _Glyph] = {}
        for block in body.split("\nSTARTCHAR"):
            code, glyph = _parse_glyph(block, cell_width)
            if code >= 0:
                glyphs[chr(code)] = glyph
    except (KeyError, ValueError, IndexError) as exc:
        raise OledError(f"font {name} is not a monospaced BDF font") from exc
    if "?" not in glyphs:
        raise OledError(f"font {name} has no '?' glyph")
    _LOGGER.debug("loaded font %s: %d glyphs", name, len(glyphs))
    return cell_width, cell_height, ascent, glyphs


def _parse_glyph(block: str, cell_width: int) -> tuple[int, _Glyph]:
    fields: dict[str, str] = {}
    lines = block.splitlines()
    for index, line in enumerate(lines):
        if line == "BITMAP":
            rows = lines[index + 1 : lines.index("ENDCHAR", index)]
            break
        key, _, value = line.partition(" ")
        fields[key] = value
    else:
        raise ValueError("glyph without BITMAP")
    if int(fields["DWIDTH"].split()[0]) != cell_width:
        raise ValueError("glyph advance differs from the cell width")
    width, height, x_offset, y_offset = (int(v) for v in fields["BBX"].split())
    bits = bytes.fromhex("".join(rows))
    if len(bits) != height * ((width + 7) // 8):
        raise ValueError("glyph bitmap does not match its BBX")
    return int(fields["ENCODING"].split()[0]), _Glyph(width, height, x_offset, y_offset, bits)


def _load(file_name: str) -> BitmapFont:
    text = resources.files(__package__).joinpath("fonts", file_name).read_text("ascii")
    return BitmapFont(file_name, text)


@cache
def small_font() -> BitmapFont:
    """misc-fixed 5x8 (Latin-1): hints and the certificate fingerprint."""
    return _load("5x8.bdf")


@cache
def body_font() -> BitmapFont:
    """misc-fixed 6x10 (1,597 glyphs: Latin, Greek, Cyrillic, symbols): all running text."""
    return _load("6x10.bdf")


@cache
def large_font() -> BitmapFont:
    """misc-fixed 10x20 (ASCII): the pairing code."""
    return _load("10x20.bdf")
