"""Contact cards as QR codes: drawn as SVG for the page, read back from an uploaded photo."""

from __future__ import annotations

import io
import logging
import warnings
from typing import Final

import segno
import zxingcpp
from PIL import Image

from pigeon.ui.web.errors import QrNotFound

_LOGGER = logging.getLogger(__name__)

MAX_PHOTO_BYTES: Final = 12 * 1024 * 1024
MAX_PHOTO_PIXELS: Final = 50_000_000  # a 50-megapixel phone photo; more is a decompression bomb
DECODE_EDGE_PX: Final = 1600  # a card QR fills enough of a photo to survive this downscale
PHOTO_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
# Pillow's decoders raise many builtin types on hostile input; each one means "not a picture".
_PIL_FAILURES: Final = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    MemoryError,
    Image.DecompressionBombError,
)


def card_svg(card_text: str) -> str:
    """An inline SVG of `card_text` (alphanumeric mode, dark modules on a light quiet zone)."""
    code = segno.make(card_text, error="m", micro=False)
    buffer = io.BytesIO()
    code.save(buffer, kind="svg", scale=4, border=4, xmldecl=False, omitsize=True, dark="#111")
    return buffer.getvalue().decode("utf-8")


def decode_photo(data: bytes) -> str:
    """The text of the first QR code in a photo. Raises QrNotFound (also for non-pictures)."""
    if len(data) > MAX_PHOTO_BYTES:
        raise QrNotFound("the picture is too large")
    image = _open(data)
    found = zxingcpp.read_barcodes(
        image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    for barcode in found:
        if barcode.valid and barcode.text:
            return barcode.text
    raise QrNotFound("no QR code found in the picture")


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=PHOTO_FORMATS)
            if image.width * image.height > MAX_PHOTO_PIXELS:
                raise QrNotFound("the picture has too many pixels")
            image.draft("L", (DECODE_EDGE_PX, DECODE_EDGE_PX))  # JPEG: decode at reduced scale
            gray = image.convert("L")
    except (*_PIL_FAILURES, Image.DecompressionBombWarning) as exc:
        raise QrNotFound("not a picture this page can read") from exc
    gray.thumbnail((DECODE_EDGE_PX, DECODE_EDGE_PX))
    return gray
