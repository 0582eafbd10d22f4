"""Small 1-bit icons drawn as string art, so they look the same on every Pillow version."""

from __future__ import annotations

from functools import cache
from typing import Final

from PIL import Image

ENVELOPE: Final = (
    "#########",
    "##.....##",
    "#.#...#.#",
    "#..#.#..#",
    "#...#...#",
    "#.......#",
    "#########",
)
NEIGHBOURS: Final = (
    ".#.....#.",
    "#..#.#..#",
    "#.#...#.#",
    "#.#.#.#.#",
    "#.#...#.#",
    "#..#.#..#",
    ".#.....#.",
)
SPOOL: Final = (
    ".#######.",
    "#.......#",
    "#########",
    "#.......#",
    "#########",
    "#.......#",
    "#########",
)
PHONE: Final = (  # the Pigeon app's phones
    "..#####..",
    "..#...#..",
    "..#...#..",
    "..#...#..",
    "..#...#..",
    "..#####..",
    "..##.##..",
)
GLOBE: Final = (
    "..#####..",
    ".#..#..#.",
    "#########",
    "#...#...#",
    "#########",
    ".#..#..#.",
    "..#####..",
)
LOCK: Final = (
    "....#####....",
    "...#.....#...",
    "..#.......#..",
    "..#.......#..",
    "..#.......#..",
    "#############",
    "#############",
    "######.######",
    "#####...#####",
    "#####...#####",
    "######.######",
    "######.######",
    "#############",
    "#############",
)
WARNING: Final = (
    ".....#.....",
    "....###....",
    "....#.#....",
    "...##.##...",
    "...##.##...",
    "..###.###..",
    "..###.###..",
    ".#########.",
    ".####.####.",
    "###########",
)
DOT: Final = (
    ".##.",
    "####",
    "####",
    ".##.",
)

Icon = tuple[str, ...]


@cache
def _mask(icon: Icon) -> Image.Image:
    mask = Image.new("1", (len(icon[0]), len(icon)), 0)
    mask.putdata([1 if char == "#" else 0 for row in icon for char in row])
    return mask


def size(icon: Icon) -> tuple[int, int]:
    """(width, height) of `icon` in pixels."""
    return len(icon[0]), len(icon)


def draw(image: Image.Image, x: int, y: int, icon: Icon, fill: int = 1) -> None:
    """Draw `icon` with its top-left corner at (x, y) in colour `fill`."""
    image.paste(fill, (x, y), _mask(icon))
