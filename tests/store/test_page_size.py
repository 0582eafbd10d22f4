"""The vault's page size: small pages (a text's WAL frames are whole pages); vaults made before
with SQLCipher's 4 KiB pages are repaged when they open, crash-safe (store/repage.py)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pigeon.store.db import SQLCIPHER_DEFAULT_PAGE_BYTES
from pigeon.store.keeper import DataDir, VaultKeeper
from pigeon.store.keys import DatabaseKey
from pigeon.store.repage import repage_path
from pigeon.store.vault import VAULT_PAGE_BYTES, Vault
from pigeon.store.vault_records import (
    Direction,
    FileInfo,
    Message,
    MessageState,
    OutboxEntry,
    SessionState,
)
from tests.store import repage_killer
from tests.store.conftest import CHEAP_ARGON2, PASSPHRASE

# A text as the messenger stores it on the sender's side: the ratchet state (about 2 KiB for
# an Olm session), the message and its envelope in the outbox, in one transaction.
SESSION_BYTES = 2118
BULK_CHUNKS = 64  # 4 MiB
KILLER = Path(__file__).with_name("repage_killer.py")
ENVELOPE_BYTES = 621


def send_one(vault: Vault, n: int) -> None:
    with vault.transaction() as tx:
        tx.save_session("robin", SessionState(1, os.urandom(SESSION_BYTES), float(n)))
        tx.append_message(
            Message(f"m{n}", "robin", Direction.OUT, MessageState.QUEUED, n, n, "x" * 300)
        )
        tx.enqueue(
            OutboxEntry(os.urandom(16), "robin", f"m{n}", 1, os.urandom(ENVELOPE_BYTES), n, 1e12, n)
        )


def page_size(vault: Vault) -> int:
    row = vault._db.fetchone("PRAGMA page_size")
    assert row is not None
    return int(row[0])


def wal_bytes(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_a_new_vault_writes_a_text_in_small_pages(tmp_path: Path) -> None:
    path = tmp_path / "vault.db"
    vault = Vault.open(path, DatabaseKey(os.urandom(32)), create=True)
    with vault.transaction() as tx:
        tx.add_contact("robin", "Robin", b"card", 0.0)
    send_one(vault, 0)  # the tables' first pages exist from here on
    before = wal_bytes(path)
    for n in range(1, 11):
        send_one(vault, n)
    per_text = (wal_bytes(path) - before) / 10
    assert page_size(vault) == VAULT_PAGE_BYTES == 1024
    # 4 KiB pages wrote 38 KB of WAL frames a text here; 1 KiB pages 14 KB.
    assert per_text < 20 * 1024, per_text
    vault.close()


def old_vault(data_dir: DataDir, texts: int = 1, bulk_chunks: int = 0) -> None:
    """A device's vault as every one was made before VAULT_PAGE_BYTES: 4 KiB pages."""
    old = VaultKeeper(data_dir, argon2=CHEAP_ARGON2, page_bytes=SQLCIPHER_DEFAULT_PAGE_BYTES)
    vault = old.initialise(PASSPHRASE)
    with vault.transaction() as tx:
        tx.add_contact("robin", "Robin", b"card", 0.0)
    for n in range(1, texts + 1):
        send_one(vault, n)
    with vault.transaction() as tx:
        for n in range(bulk_chunks):  # enough pages that a repage takes a while
            tx.add_file(FileInfo(f"f{n}", "robin", "bulk", 1, 1, 1.0))
            tx.put_chunk(f"f{n}", 0, os.urandom(64 * 1024))
    assert page_size(vault) == SQLCIPHER_DEFAULT_PAGE_BYTES
    old.lock()


def test_a_vault_made_with_4k_pages_is_repaged_when_it_opens(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path / "data")
    old_vault(data_dir, texts=3)
    keeper = VaultKeeper(data_dir, argon2=CHEAP_ARGON2)  # this version's default
    vault = keeper.unlock(PASSPHRASE)
    assert page_size(vault) == VAULT_PAGE_BYTES
    assert [m.message_id for m in vault.messages("robin")] == ["m1", "m2", "m3"]
    assert len(vault.outbox_for_contact("robin")) == 3
    assert vault.integrity_check() == ["ok"]
    send_one(vault, 4)
    keeper.lock()
    assert not repage_path(data_dir.vault_db).exists()
    keeper.rebind(PASSPHRASE, "a new passphrase")  # re-key and settle as before
    vault = keeper.unlock("a new passphrase")
    assert [m.message_id for m in vault.messages("robin")] == ["m1", "m2", "m3", "m4"]
    keeper.lock()


def test_a_copy_left_by_a_repage_cut_short_is_deleted(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path / "data")
    old_vault(data_dir)
    copy = repage_path(data_dir.vault_db)
    copy.write_bytes(os.urandom(5000))  # a crash mid-export
    keeper = VaultKeeper(data_dir, argon2=CHEAP_ARGON2)
    vault = keeper.unlock(PASSPHRASE)
    assert page_size(vault) == VAULT_PAGE_BYTES
    assert [m.message_id for m in vault.messages("robin")] == ["m1"]
    keeper.lock()
    assert not copy.exists()


@pytest.mark.parametrize("seed", range(10))
def test_a_repage_killed_at_a_random_moment_leaves_the_vault_whole(
    tmp_path: Path, seed: int
) -> None:
    assert (repage_killer.CHEAP_ARGON2, repage_killer.PASSPHRASE) == (CHEAP_ARGON2, PASSPHRASE)
    data_dir = DataDir(tmp_path / "data")
    old_vault(data_dir, texts=3, bulk_chunks=BULK_CHUNKS)
    process = subprocess.Popen(
        [sys.executable, str(KILLER), str(data_dir.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"unlocking\n"
    try:
        process.wait(timeout=random.Random(seed).uniform(0.0, 1.2))
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
    _, errors = process.communicate(timeout=60)
    assert process.returncode in (0, -signal.SIGKILL), errors.decode(errors="replace")
    keeper = VaultKeeper(data_dir, argon2=CHEAP_ARGON2)
    vault = keeper.unlock(PASSPHRASE)
    assert page_size(vault) == VAULT_PAGE_BYTES  # finished now if it was cut short
    assert [m.message_id for m in vault.messages("robin")] == ["m1", "m2", "m3"]
    assert all(vault.missing_chunks(f"f{n}") == [] for n in range(BULK_CHUNKS))
    assert vault.integrity_check() == ["ok"]
    keeper.lock()
    assert not repage_path(data_dir.vault_db).exists()
