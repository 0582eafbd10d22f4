"""`PngDisplay`: the panel stand-in that keeps the current frame for the web page and tests."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

from PIL import Image

from pigeon.drivers.base import HEIGHT, MODE, WIDTH, check_frame
from pigeon.drivers.errors import DeviceClosed, DeviceIoError

_LOGGER = logging.getLogger(__name__)


class PngDisplay:
    """A display that only remembers the last frame; starts dark."""

    def __init__(self) -> None:
        self._frame = Image.new(MODE, (WIDTH, HEIGHT), 0)
        self._closed = False

    def show(self, image: Image.Image) -> None:
        """Keep a copy of `image`. Raises InvalidFrame, DeviceClosed."""
        if self._closed:
            raise DeviceClosed("display is closed")
        check_frame(image)
        self._frame = image.copy()

    def frame(self) -> Image.Image:
        """A copy of the current frame."""
        return self._frame.copy()

    def frame_png(self) -> bytes:
        """The current frame as PNG bytes (1-bit, 128x64), for the web device panel."""
        buffer = io.BytesIO()
        self._frame.save(buffer, format="PNG", optimize=True)
        return buffer.getvalue()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the current frame to `path` as PNG, atomically. Raises DeviceIoError."""
        target = Path(path)
        temporary = target.with_name(f".{target.name}.tmp")
        try:
            temporary.write_bytes(self.frame_png())
            os.replace(temporary, target)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            raise DeviceIoError(f"cannot write the frame to {target}") from exc

    def close(self) -> None:
        """Go dark and refuse further frames; idempotent."""
        self._frame = Image.new(MODE, (WIDTH, HEIGHT), 0)
        self._closed = True
