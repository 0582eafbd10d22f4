"""Leaving device-bound mode: a fresh data key for the vault, crash-safe at every step.

While device-bound, `vault.autounlock` holds a random passphrase that opens `vault.header` at
each start. When the owner sets a first passphrase, deleting that file is not enough: ext4 keeps
its blocks until they are reused, and the old header (whose blocks are freed too) wraps the data
key under it. So the vault gets a fresh data key that the device passphrase never wrapped
(`VaultKeeper.rebind`), in steps each durable before the next:

1. `vault.header.next` := the fresh key wrapped under the new passphrase (the intent);
2. the database is re-encrypted under the fresh key in one SQLite transaction (the commit);
3. `vault.autounlock` is shredded (zeroed, synced, unlinked, directory synced);
4. `vault.header.next` replaces `vault.header` (rename, directory synced).

A run cut short at any point is settled by the next unlock, with whichever passphrase it gets:
one that unwraps the intent (the new) or the header (the device's or the owner's old one) gives
a key to try on the database, which tells whether step 2 committed. If it did, steps 3 and 4 are
done; if not, the intent is shredded and nothing happened.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Final

from pigeon.store.erase import shred_file, shred_written_file
from pigeon.store.errors import CorruptStore, StoreError
from pigeon.store.keys import (
    VaultHeader,
    atomic_write,
    fsync_directory,
    parse_vault_header,
    temporary_path,
)

_LOGGER = logging.getLogger(__name__)

_MAX_AUTO_UNLOCK_BYTES: Final = 256


def read_auto_passphrase(path: Path) -> str | None:
    """The device passphrase in `path`; None if there is none (or only a shred's zeros)."""
    data = _read(path, _MAX_AUTO_UNLOCK_BYTES, "the auto-unlock file")
    if data is None or not data.strip(b"\x00"):
        return None
    return data.decode("ascii", errors="replace").strip()


def write_intent(path: Path, header: VaultHeader) -> None:
    """Step 1: the fresh key wrapped under the new passphrase, beside the current header."""
    atomic_write(path, header.encode())


def read_intent(path: Path) -> VaultHeader | None:
    """The intent of an unfinished run, or None; leftovers that never were one are shredded.

    Raises CorruptStore if it is damaged (it may hold the only wrap of the database's key).
    """
    shred_file(temporary_path(path))  # a crash inside step 1: the database was never touched
    data = _read(path, 1024, "the vault's next header")
    if data is None:
        return None
    if not data.strip(b"\x00"):  # a crash while shredding it (an undone run)
        shred_file(path)
        return None
    try:
        return parse_vault_header(data)
    except CorruptStore as exc:
        raise CorruptStore(f"{path}: {exc}") from None


def shred_auto_unlock(path: Path) -> None:
    """Step 3: zero, sync and delete the device passphrase (and a staged copy)."""
    shred_written_file(path)


def install_intent(intent: Path, header: Path) -> None:
    """Step 4: the intent becomes the header, atomically and durably."""
    try:
        os.replace(intent, header)
        fsync_directory(header.parent)
    except OSError as exc:
        raise StoreError(f"{header}: cannot replace it ({exc.strerror})") from exc


def abandon(intent: Path) -> None:
    """Undo an unfinished run whose database was never re-encrypted: shred the intent."""
    shred_written_file(intent)


def _read(path: Path, limit: int, what: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read {what} ({exc.strerror})") from exc
    try:
        return os.read(fd, limit)
    finally:
        os.close(fd)
