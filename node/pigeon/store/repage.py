"""Give an existing database a new page size: a copy with the new pages put in its place.

SQLCipher cannot change a file's page size in place, so the database is exported (its key
unchanged) into `NAME.repage` beside it, which then replaces it by one rename. Crash-safe at
every step: until the rename the old file is whole and checkpointed, and a copy left by a crash
is deleted by the next attempt; the rename happens only once the copy is synced and the old
file's WAL is gone for good (a stale WAL must never meet the new file).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Final

from pigeon.store.db import DATABASE_SUFFIXES, Database, own_database_files
from pigeon.store.errors import StoreError
from pigeon.store.keys import DatabaseKey, fsync_directory

_LOGGER = logging.getLogger(__name__)

REPAGE_SUFFIX: Final = ".repage"
_SCHEMA: Final = "repage"


def repage_path(path: Path) -> Path:
    """Where the copy of `path` is made."""
    return path.with_name(path.name + REPAGE_SUFFIX)


def remove_repage_copy(path: Path) -> None:
    """Delete a copy of `path` left by an interrupted repage (with its journal, if any)."""
    copy = repage_path(path)
    try:
        for suffix in DATABASE_SUFFIXES:
            copy.with_name(copy.name + suffix).unlink(missing_ok=True)
    except OSError as exc:
        raise StoreError(f"{copy}: cannot delete it ({exc.strerror})") from exc


def repage(database: Database, key: DatabaseKey, page_bytes: int) -> None:
    """Put a copy of `database` with `page_bytes` pages in its place; closes `database` in all
    cases (reopen the path). Raises DiskFull or StoreError, leaving the old file as it was."""
    path = database.path
    copy = repage_path(path)
    try:
        _export(database, key, copy, page_bytes)
    finally:
        database.close()  # the last close deletes the (checkpointed, empty) WAL
    try:
        _install(path, copy)
    except OSError as exc:
        raise StoreError(f"{path}: cannot put the repaged copy in place ({exc.strerror})") from exc
    _LOGGER.info("%s: now in %d-byte pages", path.name, page_bytes)


def _export(database: Database, key: DatabaseKey, copy: Path, page_bytes: int) -> None:
    remove_repage_copy(database.path)
    busy = database.fetchone("PRAGMA wal_checkpoint(TRUNCATE)")
    if busy is None or int(busy[0]) != 0:
        raise StoreError(f"{database.path}: busy; its WAL could not be checkpointed")
    version, application = _pragma(database, "user_version"), _pragma(database, "application_id")
    own_database_files(copy, create=True)
    quoted = str(copy).replace("'", "''")
    database.execute_outside_transaction(
        f"ATTACH DATABASE '{quoted}' AS {_SCHEMA} KEY \"x'{key.raw.hex()}'\""
    )
    try:
        database.execute_outside_transaction(f"PRAGMA {_SCHEMA}.cipher_page_size = {page_bytes}")
        database.fetchone(f"SELECT sqlcipher_export('{_SCHEMA}')")
        database.execute_outside_transaction(f"PRAGMA {_SCHEMA}.user_version = {version}")
        database.execute_outside_transaction(f"PRAGMA {_SCHEMA}.application_id = {application}")
    finally:
        database.execute_outside_transaction(f"DETACH DATABASE {_SCHEMA}")


def _pragma(database: Database, name: str) -> int:
    row = database.fetchone(f"PRAGMA {name}")
    return int(row[0]) if row else 0


def _install(path: Path, copy: Path) -> None:
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreError(f"{path}: its WAL is still there; the copy is not put in place")
    wal.unlink(missing_ok=True)
    path.with_name(path.name + "-shm").unlink(missing_ok=True)
    fd = os.open(copy, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_directory(path.parent)  # the old WAL's deletion is durable before the rename
    os.replace(copy, path)
    fsync_directory(path.parent)
