"""`FilePairingStore`: paired-browser records in one small file, replaced atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class FilePairingStore:
    """A `PairingStore` backed by `path` (mode 0600; it holds token hashes, never tokens)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def load(self) -> bytes | None:
        """The saved blob, or None if the file does not exist yet."""
        try:
            return self._path.read_bytes()
        except FileNotFoundError:
            return None

    def save(self, blob: bytes) -> None:
        """Write to a temporary file, fsync, then rename over the old one."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self._path.parent, prefix=".sessions-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self._path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
