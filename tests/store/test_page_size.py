"""The vault's page size: small pages for new vaults (a text's WAL frames are whole pages), and
vaults made before with SQLCipher's 4 KiB pages open, read, write and re-key as they are."""

from __future__ import annotations

import os
from pathlib import Path

from pigeon.store.db import SQLCIPHER_DEFAULT_PAGE_BYTES
from pigeon.store.keeper import DataDir, VaultKeeper
from pigeon.store.keys import DatabaseKey
from pigeon.store.vault import VAULT_PAGE_BYTES, Vault
from pigeon.store.vault_records import (
    Direction,
    Message,
    MessageState,
    OutboxEntry,
    SessionState,
)
from tests.store.conftest import CHEAP_ARGON2, PASSPHRASE

# A text as the messenger stores it on the sender's side: the ratchet state (about 2 KiB for
# an Olm session), the message and its envelope in the outbox, in one transaction.
SESSION_BYTES = 2118
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


def test_a_vault_made_with_4k_pages_opens_and_works_as_it_is(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path / "data")
    old = VaultKeeper(data_dir, argon2=CHEAP_ARGON2, page_bytes=SQLCIPHER_DEFAULT_PAGE_BYTES)
    vault = old.initialise(PASSPHRASE)
    with vault.transaction() as tx:
        tx.add_contact("robin", "Robin", b"card", 0.0)
    send_one(vault, 1)
    old.lock()
    keeper = VaultKeeper(data_dir, argon2=CHEAP_ARGON2)  # this version's default
    vault = keeper.unlock(PASSPHRASE)
    assert page_size(vault) == SQLCIPHER_DEFAULT_PAGE_BYTES
    assert [m.message_id for m in vault.messages("robin")] == ["m1"]
    send_one(vault, 2)
    keeper.lock()
    keeper.rebind(PASSPHRASE, "a new passphrase")  # re-key and settle find the file's size
    vault = keeper.unlock("a new passphrase")
    assert [m.message_id for m in vault.messages("robin")] == ["m1", "m2"]
    assert vault.integrity_check() == ["ok"]
    keeper.lock()
