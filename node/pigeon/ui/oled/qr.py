"""The pairing QR code: the web page's URL as a module matrix sized for a 64x64 pixel square."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final
from urllib.parse import urlsplit

import segno

from pigeon.ui.oled.errors import InvalidView

AREA_PX: Final = 64
MIN_QUIET_MODULES: Final = 2
# Version 10 (57 modules) is the largest that fits at 1 pixel per module with a quiet zone;
# it carries at most 311 alphanumeric characters at level M. Longer text is refused unencoded.
MAX_TEXT_CHARS: Final = 311
_SCALES: Final = (2, 1)


@dataclass(frozen=True, slots=True)
class QrMatrix:
    """A QR symbol without its quiet zone: `rows[y][x]` is 1 for a dark module."""

    text: str
    rows: tuple[bytes, ...] = field(repr=False)
    scale: int

    @property
    def modules(self) -> int:
        """Modules per side."""
        return len(self.rows)

    @property
    def size_px(self) -> int:
        """Pixels per side at `scale`."""
        return self.modules * self.scale


def qr_text(url: str) -> str:
    """`url` with scheme and host upper-cased (both are case-insensitive).

    Upper case lets the QR use alphanumeric mode, which fits a `https://pigeon-xxxx.local:8443/`
    URL into a version-2 symbol that can be drawn at 2 pixels per module. The path, which is
    case-sensitive, is left alone (lower case there falls back to byte mode).
    """
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc or "@" in parts.netloc:
        return url
    rest = url[len(parts.scheme) + 3 + len(parts.netloc) :]
    return f"{parts.scheme.upper()}://{parts.netloc.upper()}{rest}"


@lru_cache(maxsize=8)
def encode(url: str) -> QrMatrix:
    """The QR of `url` (error correction M or better) at the largest scale that fits.

    Raises InvalidView when the URL cannot be encoded or even one pixel per module does not
    fit the 64x64 square.
    """
    text = qr_text(url)
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidView("URL too long for a QR code")
    try:
        symbol = segno.make_qr(text, error="m", boost_error=True)
    except segno.DataOverflowError as exc:
        raise InvalidView("URL too long for a QR code") from exc
    except ValueError as exc:
        # e.g. a lone surrogate, which no QR encoding can carry
        raise InvalidView("URL cannot be encoded as a QR code") from exc
    rows = tuple(bytes(row) for row in symbol.matrix)
    for scale in _SCALES:
        if (len(rows) + 2 * MIN_QUIET_MODULES) * scale <= AREA_PX:
            return QrMatrix(text, rows, scale)
    raise InvalidView("URL too long for a QR code on a 64-pixel screen")
