"""What only SqliteStore does, on real files: WAL with full sync, checkpoints, its schema check.

The storage contract both backends keep is tested in test_store_contract.py."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from pigeon.relay.limits import Quota
from pigeon.relay.storage import DB_FILE_NAME, SCHEMA_VERSION, SqliteStore, StorageError
from tests.card_locks import CardLocks

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


@pytest.mark.parametrize(
    ("at_check", "stored_on_disk"),
    [(1, 0), (2, 1)],  # read-only as the commit was due (rolled back); turned read-only during it
)
async def test_a_deposit_on_a_card_gone_read_only_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at_check: int, stored_on_disk: int
) -> None:
    """ext4 read-only answers fsync with success for files already open: a deposit whose
    commit returned while the card turned read-only is not acknowledged as stored."""
    store = await SqliteStore.open(tmp_path, QUOTA)
    monkeypatch.setattr("pigeon.relay.storage.on_read_only_file_system", CardLocks(at_check))
    with pytest.raises(StorageError):
        await store.deposit(ALICE, eid(1), b"x", 0)
    monkeypatch.undo()
    await store.aclose()
    db = sqlite3.connect(tmp_path / DB_FILE_NAME)
    # Here the disk was writable all along, so the commit of the second case did land; on a
    # real read-only card it stays in memory and is gone at the next boot.
    assert db.execute("SELECT count(*) FROM envelopes").fetchone() == (stored_on_disk,)
    db.close()
