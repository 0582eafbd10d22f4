"""The SQLCipher connection layer against real files: keys, damage, transactions, full disks."""

import dataclasses
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pigeon.store.db import Database
from pigeon.store.errors import (
    Conflict,
    CorruptStore,
    DiskFull,
    Locked,
    NewerSchema,
    ReadOnlyStore,
    StoreError,
    WrongKey,
)
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import DatabaseKey
from pigeon.store.migrations import SPOOL_SCHEMA, VAULT_SCHEMA, Migration
from pigeon.store.spool_db import DropEnvelope, SpooledEnvelope, StoreEnvelope
from tests.card_locks import CardLocks
from tests.store.conftest import CHEAP_ARGON2, PASSPHRASE

KEY = DatabaseKey(b"\x11" * 32)
OTHER_KEY = DatabaseKey(b"\x22" * 32)


def envelope(n: int, size: int = 500) -> SpooledEnvelope:
    return SpooledEnvelope(
        packet_id=n.to_bytes(16, "big"),
        recipient_tag=b"tag-%d" % (n % 7),
        depositor="peer",
        priority=n % 3,
        expires_at=1_000_000.0 + n,
        receipt_hash=None,
        packet=os.urandom(size),
        stored_at=float(n),
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "spool.db"
    database = Database.open(path, KEY, SPOOL_SCHEMA, create=True)
    with database.transaction() as tx:
        for n in range(200):
            e = envelope(n)
            tx.execute(
                "INSERT INTO envelopes (packet_id, recipient_tag, depositor, priority, expires_at,"
                " packet, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (e.packet_id, e.recipient_tag, e.depositor, e.priority, e.expires_at, e.packet, 0),
            )
    database.close()
    return path


def test_reopens_with_its_key_and_is_sound(db_path: Path) -> None:
    database = Database.open(db_path, KEY, SPOOL_SCHEMA, create=False)
    assert database.fetchone("SELECT count(*) FROM envelopes") == (200,)
    assert database.integrity_check() == ["ok"]
    assert database.fetchone("PRAGMA journal_mode") == ("wal",)
    assert database.fetchone("PRAGMA synchronous") == (2,)  # FULL
    assert database.fetchone("PRAGMA foreign_keys") == (1,)
    assert database.fetchone("PRAGMA secure_delete") == (1,)
    assert database.fetchone("PRAGMA cipher_memory_security") == ("1",)
    database.close()


def test_wrong_key_raises_wrong_key_naming_the_file_not_the_key(db_path: Path) -> None:
    with pytest.raises(WrongKey, match=r"spool\.db") as info:
        Database.open(db_path, OTHER_KEY, SPOOL_SCHEMA, create=False)
    text = f"{info.value!r} {info.value} {info.value.__cause__}"
    assert OTHER_KEY.raw.hex() not in text
    assert KEY.raw.hex() not in text


def test_random_bytes_are_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    path.write_bytes(os.urandom(64 * 1024))
    with pytest.raises(WrongKey):
        Database.open(path, KEY, SPOOL_SCHEMA, create=True)


@pytest.mark.parametrize("cut", [4096, 4096 * 3, 4096 * 3 + 100])
def test_truncated_file_is_corrupt(db_path: Path, cut: int) -> None:
    os.truncate(db_path, cut)
    with pytest.raises(CorruptStore, match=r"spool\.db"):
        Database.open(db_path, KEY, SPOOL_SCHEMA, create=False)


def test_flipped_bit_in_a_data_page_is_found_at_open(db_path: Path) -> None:
    data = bytearray(db_path.read_bytes())
    data[4096 * 20 + 1234] ^= 0x04
    db_path.write_bytes(bytes(data))
    with pytest.raises(CorruptStore, match="damaged"):
        Database.open(db_path, KEY, SPOOL_SCHEMA, create=False)


def test_plain_sqlite_file_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    plain = sqlite3.connect(path)
    plain.execute("CREATE TABLE t (x)")
    plain.commit()
    plain.close()
    with pytest.raises(CorruptStore, match="plain, unencrypted SQLite"):
        Database.open(path, KEY, SPOOL_SCHEMA, create=True)


def test_a_vault_is_not_accepted_as_a_spool(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    Database.open(path, KEY, VAULT_SCHEMA, create=True).close()
    with pytest.raises(CorruptStore, match="not a Pigeon spool"):
        Database.open(path, KEY, SPOOL_SCHEMA, create=True)


def test_newer_schema_is_refused_and_left_untouched(db_path: Path) -> None:
    future = dataclasses.replace(
        SPOOL_SCHEMA,
        migrations=(*SPOOL_SCHEMA.migrations, Migration(3, "future", ("CREATE TABLE f (x)",))),
    )
    Database.open(db_path, KEY, future, create=False).close()
    before = db_path.read_bytes()
    with pytest.raises(NewerSchema, match="newer Pigeon"):
        Database.open(db_path, KEY, SPOOL_SCHEMA, create=False)
    assert db_path.read_bytes() == before


def test_missing_or_empty_database_without_create_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(CorruptStore, match="missing"):
        Database.open(tmp_path / "v.db", KEY, VAULT_SCHEMA, create=False)
    (tmp_path / "v.db").touch()
    with pytest.raises(CorruptStore, match="empty"):
        Database.open(tmp_path / "v.db", KEY, VAULT_SCHEMA, create=False)


def test_transaction_rolls_back_on_error(db_path: Path) -> None:
    database = Database.open(db_path, KEY, SPOOL_SCHEMA, create=False)

    def delete_then_fail() -> None:
        with database.transaction() as tx:
            tx.execute("DELETE FROM envelopes")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        delete_then_fail()
    assert database.fetchone("SELECT count(*) FROM envelopes") == (200,)
    with database.transaction() as tx:
        assert tx.execute("DELETE FROM envelopes WHERE priority = 0") > 0
    database.close()


def count_envelopes(path: Path) -> int:
    database = Database.open(path, KEY, SPOOL_SCHEMA, create=False)
    try:
        row = database.fetchone("SELECT count(*) FROM envelopes")
        return int(row[0]) if row else -1
    finally:
        database.close()


def insert_one(database: Database) -> None:
    e = envelope(999)
    with database.transaction() as tx:
        tx.execute(
            "INSERT INTO envelopes (packet_id, recipient_tag, depositor, priority, expires_at,"
            " packet, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (e.packet_id, e.recipient_tag, e.depositor, e.priority, e.expires_at, e.packet, 0),
        )


def test_a_card_gone_read_only_refuses_a_write_before_its_commit_and_still_reads(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database.open(db_path, KEY, SPOOL_SCHEMA, create=False)
    monkeypatch.setattr("pigeon.store.db.on_read_only_file_system", CardLocks(at_check=1))
    with pytest.raises(ReadOnlyStore, match="nothing was written"):
        insert_one(database)
    with database.transaction() as tx:  # one that changes nothing still runs: reads work
        assert tx.fetchone("SELECT count(*) FROM envelopes") == (200,)
    monkeypatch.undo()
    database.close()
    assert count_envelopes(db_path) == 200  # rolled back, not committed


def test_a_card_that_turns_read_only_during_a_commit_is_not_a_stored_write(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ext4 read-only answers fsync with success for files already open: a commit that
    returned while the card turned read-only must not be reported as stored."""
    database = Database.open(db_path, KEY, SPOOL_SCHEMA, create=False)
    locks = CardLocks(at_check=2)  # writable as the transaction begins, read-only after COMMIT
    monkeypatch.setattr("pigeon.store.db.on_read_only_file_system", locks)
    with pytest.raises(ReadOnlyStore, match="turned read-only during the write"):
        insert_one(database)
    assert locks.checks == 2
    monkeypatch.undo()
    database.close()


def test_constraint_violation_is_a_conflict_and_rolls_back(db_path: Path) -> None:
    database = Database.open(db_path, KEY, SPOOL_SCHEMA, create=False)

    def delete_then_duplicate() -> None:
        with database.transaction() as tx:
            tx.execute("DELETE FROM envelopes WHERE priority = 1")
            tx.execute(
                "INSERT INTO envelopes (packet_id, recipient_tag, depositor, priority,"
                " expires_at, packet, stored_at) SELECT packet_id, recipient_tag, depositor,"
                " priority, expires_at, packet, stored_at FROM envelopes LIMIT 1"
            )

    with pytest.raises(Conflict):
        delete_then_duplicate()
    assert database.fetchone("SELECT count(*) FROM envelopes") == (200,)
    database.close()


def test_transactions_do_not_nest_and_finished_ones_are_unusable(db_path: Path) -> None:
    database = Database.open(db_path, KEY, SPOOL_SCHEMA, create=False)

    def nested() -> None:
        with database.transaction(), database.transaction():
            pass

    with pytest.raises(StoreError, match="nest"):
        nested()
    with database.transaction() as tx:
        pass
    with pytest.raises(StoreError, match="finished"):
        tx.execute("SELECT 1")
    database.close()


def test_closed_database_raises_locked(db_path: Path) -> None:
    database = Database.open(db_path, KEY, SPOOL_SCHEMA, create=False)
    database.close()
    database.close()
    with pytest.raises(Locked):
        database.fetchone("SELECT 1")
    with pytest.raises(Locked), database.transaction():
        pass


def fill_until_full(data_dir: DataDir, max_size_bytes: int | None) -> tuple[int, DiskFull]:
    spool = open_spool(data_dir, max_size_bytes=max_size_bytes)
    stored = 0
    try:
        for n in range(100_000):
            spool.apply([StoreEnvelope(envelope(n, size=2000))])
            stored += 1
    except DiskFull as exc:
        return stored, exc
    finally:
        spool.close()
    raise AssertionError("the spool never filled up")


def check_full_spool_keeps_its_data(data_dir: DataDir, stored: int) -> None:
    spool = open_spool(data_dir, max_size_bytes=256 * 1024)
    assert spool.integrity_check() == ["ok"]
    assert spool.stats().envelopes == stored
    assert all(spool.envelope(envelope(n).packet_id) for n in range(stored))


def test_size_limit_refuses_new_work_and_keeps_what_is_stored(data_dir: DataDir) -> None:
    stored, error = fill_until_full(data_dir, max_size_bytes=256 * 1024)
    assert stored > 10
    assert "spool.db" in str(error)
    check_full_spool_keeps_its_data(data_dir, stored)
    spool = open_spool(data_dir, max_size_bytes=256 * 1024)
    with pytest.raises(DiskFull):  # a whole batch is refused, not half of it
        spool.apply([StoreEnvelope(envelope(n, size=2000)) for n in range(stored, stored + 50)])
    assert spool.stats().envelopes == stored
    spool.apply([DropEnvelope(envelope(n).packet_id) for n in range(20)])
    assert spool.apply([StoreEnvelope(envelope(stored, size=2000))]).stored == 1
    spool.close()


def test_full_vault_refuses_a_message_and_keeps_history(data_dir: DataDir) -> None:
    keeper = VaultKeeper(data_dir, argon2=CHEAP_ARGON2, max_size_bytes=200 * 1024)
    vault = keeper.initialise(PASSPHRASE)
    with vault.transaction() as tx:
        tx.add_contact("c", "C", b"card", 0.0)
    with pytest.raises(DiskFull), vault.transaction() as tx:
        tx.put_owner_secret("big", os.urandom(400 * 1024), 0.0)
    assert vault.contact("c").display_name == "C"
    assert vault.owner_secret("big") is None
    keeper.lock()
    assert keeper.unlock(PASSPHRASE).integrity_check() == ["ok"]


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the size-limit test covers the same path")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("this machine does not allow mounting a tmpfs")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_full_filesystem_refuses_new_work_and_keeps_what_is_stored(tiny_filesystem: Path) -> None:
    data_dir = DataDir(tiny_filesystem / "data")
    stored, error = fill_until_full(data_dir, max_size_bytes=None)
    assert stored > 10
    assert "full" in str(error)
    check_full_spool_keeps_its_data(data_dir, stored)
    copy = tiny_filesystem.parent / "copy"
    shutil.copytree(data_dir.root, copy)  # the files are whole: they open elsewhere too
    spool = open_spool(DataDir(copy))
    assert spool.stats().envelopes == stored
    spool.close()
