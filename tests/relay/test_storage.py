"""What only SqliteStore does, on real files: WAL with full sync, checkpoints, its schema check.

The storage contract both backends keep is tested in test_store_contract.py."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from pigeon.relay.limits import Quota
from pigeon.relay.storage import DB_FILE_NAME, SCHEMA_VERSION, SqliteStore, StorageError

QUOTA = Quota(mailbox_max_envelopes=100, mailbox_max_bytes=10_000, relay_max_bytes=100_000)
ALICE, BOB = b"A" * 32, b"B" * 32


def eid(n: int) -> bytes:
    return n.to_bytes(16, "big")


async def test_unopenable_store_raises(tmp_path: Path) -> None:
    (tmp_path / DB_FILE_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError):
        await SqliteStore.open(tmp_path, QUOTA)


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DB_FILE_NAME)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StorageError):
        await SqliteStore.open(tmp_path, QUOTA)


async def test_store_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path, QUOTA)
    await store.deposit(ALICE, eid(1), b"x", 0)
    db = sqlite3.connect(tmp_path / DB_FILE_NAME)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()
    assert store.synchronous == 2  # FULL: each commit is fsynced
    await store.aclose()


async def test_wal_is_checkpointed_while_the_store_runs(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path, Quota(1000, 10**9, 10**9))
    results = await asyncio.gather(
        *(store.deposit(ALICE, eid(n), bytes(1000), 0) for n in range(60))
    )
    assert all(r.stored for r in results)
    database = tmp_path / DB_FILE_NAME
    for _ in range(100):
        if database.stat().st_size > 60_000:
            break
        await asyncio.sleep(0.05)
    assert database.stat().st_size > 60_000  # copied out of the WAL without a close
    await store.aclose()
