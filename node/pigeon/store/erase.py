"""Erasing small secret files: overwrite with zeros, sync, then unlink (the identity reset).

A file that held a key is first overwritten in place and synced, so that the file system no
longer maps its old bytes, and only then unlinked; the directory is synced last, so the
deletion survives a power cut. Flash wear levelling may still keep the old physical blocks on
the card: see docs/operations.md ("Data directory, backup and reset").
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Final

from pigeon.store.errors import StoreError
from pigeon.store.keys import fsync_directory, temporary_path

CHUNK_BYTES: Final = 64 * 1024


def shred_file(path: Path) -> bool:
    """Overwrite `path` with zeros, fsync it, unlink it and fsync its directory.

    Returns False if there was no such file. Raises StoreError naming the file (a symlink is
    refused rather than followed).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StoreError(f"{path}: cannot open it to erase it ({_reason(exc)})") from exc
    try:
        _zero(fd)
    except OSError as exc:
        raise StoreError(f"{path}: cannot overwrite it ({_reason(exc)})") from exc
    finally:
        os.close(fd)
    try:
        path.unlink()
        fsync_directory(path.parent)
    except OSError as exc:
        raise StoreError(f"{path}: overwritten but not deleted ({_reason(exc)})") from exc
    return True


def shred_written_file(path: Path) -> None:
    """`shred_file` for a file `atomic_write` wrote: its staged copy (left by a crash) too."""
    shred_file(temporary_path(path))
    shred_file(path)


def _zero(fd: int) -> None:
    left = os.fstat(fd).st_size
    zeros = bytes(min(left, CHUNK_BYTES))
    while left > 0:
        left -= os.write(fd, zeros[: min(left, CHUNK_BYTES)])
    os.fsync(fd)


def _reason(exc: OSError) -> str:
    return exc.strerror or errno.errorcode.get(exc.errno or 0, "error")
