"""Text made fit for a monospaced bitmap font: cleaned, truncated and word-wrapped."""

from __future__ import annotations

import unicodedata
from typing import Final

from pigeon.ui.oled.font import BitmapFont

ELLIPSIS: Final = "\u2026"
_DROPPED_CATEGORIES: Final = frozenset({"Mn", "Me", "Mc", "Cf"})


def clean(text: str, font: BitmapFont) -> str:
    """`text` in NFC with tabs and controls as spaces, marks dropped, unknown glyphs replaced.

    Newlines are kept; every other character left advances exactly one cell.
    """
    out: list[str] = []
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if char == "\n":
            out.append(char)
        elif category in _DROPPED_CATEGORIES:
            continue
        elif category.startswith(("C", "Z")):
            out.append(" ")
        else:
            out.append(char if font.has(char) else font.fallback)
    return "".join(out)


def fit(text: str, columns: int) -> str:
    """One line of at most `columns` characters, ending in an ellipsis when cut."""
    line = " ".join(text.split())
    if len(line) <= columns:
        return line
    if columns <= 0:
        return ""
    return line[: columns - 1].rstrip() + ELLIPSIS


def wrap(text: str, columns: int) -> tuple[str, ...]:
    """`text` broken into lines of at most `columns` characters, at spaces where possible.

    Explicit newlines start a new line; runs of spaces inside a line collapse to one; a word
    longer than a line is split.
    """
    if columns <= 0:
        raise ValueError("columns must be positive")
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(_wrap_paragraph(paragraph.split(), columns))
    while lines and not lines[-1]:
        lines.pop()
    return tuple(lines)


def _wrap_paragraph(words: list[str], columns: int) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in words:
        if line and len(line) + 1 + len(word) <= columns:
            line = f"{line} {word}"
            continue
        if line:
            lines.append(line)
        while len(word) > columns:
            lines.append(word[:columns])
            word = word[columns:]
        line = word
    lines.append(line)
    return lines
