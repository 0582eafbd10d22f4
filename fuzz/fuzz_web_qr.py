"""Fuzz the QR photo reader behind "add a contact from a photo": only QrNotFound may escape."""

import sys

import atheris

with atheris.instrument_imports():
    from pigeon.ui.web.errors import QrNotFound
    from pigeon.ui.web.qr import decode_photo


def fuzz_one_input(data: bytes) -> None:
    """Decode `data` as an uploaded picture."""
    try:
        text = decode_photo(data)
    except QrNotFound:
        return
    if not isinstance(text, str) or not text:
        raise RuntimeError("a decoded QR code must give non-empty text")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
