"""The store sets its own file modes: under umask 022 every file is 0600, directories 0700."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pigeon.store.db import Database
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import DatabaseKey, atomic_write
from pigeon.store.spool_db import SaveSeenCache
from tests.store.conftest import CHEAP_ARGON2, PASSPHRASE


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The umask of a shell or a service without systemd's UMask=0077."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, int]:
    """The permission bits of the directory and of everything in it, by name."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for entry in root.iterdir():
        found[entry.name] = stat.S_IMODE(entry.lstat().st_mode)
    return found


def assert_private(root: Path, expected: set[str]) -> None:
    found = modes(root)
    assert expected <= set(found), f"{sorted(found)} lacks some of {sorted(expected)}"
    loose = {
        name: f"{mode:o}"
        for name, mode in found.items()
        if mode != (0o700 if name == "." else 0o600)
    }
    assert not loose, f"files or directories open to others under umask 022: {loose}"


def test_every_store_file_is_private_under_umask_022(loose_umask: None, tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path / "nested" / "data")
    spool = open_spool(data_dir)
    keeper = VaultKeeper(data_dir, argon2=CHEAP_ARGON2)
    vault = keeper.initialise(PASSPHRASE)
    with vault.transaction() as tx:
        tx.add_contact("alice", "Alice", b"alice-card", 1.0)
    spool.apply([SaveSeenCache(b"seen", 1.0)])
    # While open, both databases have their WAL and shared-memory files.
    databases = {"spool.db", "vault.db"}
    companions = {name + suffix for name in databases for suffix in ("-wal", "-shm")}
    assert_private(data_dir.root, {"device.key", "vault.header"} | databases | companions)
    assert stat.S_IMODE((tmp_path / "nested").stat().st_mode) == 0o700
    keeper.lock()
    spool.close()
    assert_private(data_dir.root, {"device.key", "vault.header"} | databases)


def test_a_rebind_under_umask_022_leaves_only_private_files(
    loose_umask: None, data_dir: DataDir
) -> None:
    data_dir.ensure()
    atomic_write(data_dir.auto_unlock, b"device passphrase")
    keeper = VaultKeeper(data_dir, argon2=CHEAP_ARGON2)
    keeper.initialise("device passphrase")
    seen: dict[str, int] = {}

    def rekey_and_look(database: Database, key: DatabaseKey) -> None:
        original_rekey(database, key)
        seen.update(modes(data_dir.root))  # the intent is there, the vault re-keyed

    original_rekey = Database.rekey
    Database.rekey = rekey_and_look  # type: ignore[method-assign]
    try:
        keeper.rebind("device passphrase", PASSPHRASE)
    finally:
        Database.rekey = original_rekey  # type: ignore[method-assign]
    assert seen["vault.header.next"] == 0o600
    assert all(mode == 0o600 for name, mode in seen.items() if name != "."), seen
    keeper.lock()
    assert_private(data_dir.root, {"vault.header", "vault.db"})


def test_opening_tightens_database_files_left_open_by_older_code(
    loose_umask: None, data_dir: DataDir
) -> None:
    open_spool(data_dir).close()
    os.chmod(data_dir.spool_db, 0o644)  # as a node under umask 022 made it before this fix
    spool = open_spool(data_dir)
    spool.apply([SaveSeenCache(b"seen", 1.0)])
    assert_private(data_dir.root, {"spool.db", "spool.db-wal", "spool.db-shm"})
    spool.close()
