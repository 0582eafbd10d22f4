"""Every earlier schema version migrates to the latest with its data intact."""

import dataclasses
from pathlib import Path

import pytest

from pigeon.store.db import Database
from pigeon.store.keeper import DataDir, VaultKeeper
from pigeon.store.keys import DatabaseKey, read_vault_header, unwrap_data_key
from pigeon.store.migrations import (
    HISTORY_TABLES,
    SPOOL_SCHEMA,
    VAULT_SCHEMA,
    Schema,
    history_tables_ddl,
)
from pigeon.store.spool_db import Spool
from pigeon.store.vault import EPHEMERAL_SCHEMA, Vault
from pigeon.store.vault_records import Direction, Message, MessageState, PublicChatLine
from tests.store.conftest import CHEAP_ARGON2, PASSPHRASE

KEY = DatabaseKey(b"\x33" * 32)
NEW_MESSAGE = Message("new", "alice", Direction.IN, MessageState.RECEIVED, 20.0, 20.0, body="hi")

# Rows written with the SQL of each old version (the API of that release).
SPOOL_ROWS = {
    1: [
        "INSERT INTO envelopes (packet_id, recipient_tag, depositor, priority, expires_at,"
        " receipt_hash, packet, stored_at) VALUES (x'01', x'aa', 'peer', 2, 5000.0, x'cc',"
        " x'deadbeef', 10.0)"
    ],
    2: [
        "INSERT INTO envelopes (packet_id, recipient_tag, depositor, priority, expires_at,"
        " receipt_hash, packet, stored_at, held_for_owner) VALUES (x'02', x'bb', 'peer2', 1,"
        " 6000.0, NULL, x'beef', 11.0, 1)",
        "INSERT INTO seen_cache (slot, blob, saved_at) VALUES (1, x'5eed', 12.0)",
    ],
    3: ["INSERT INTO node_secrets VALUES ('bitchat', x'b1c4', 13.0)"],
    4: [
        "INSERT INTO courier_held VALUES (x'1d', x'7a', 99000, x'c1', 4, NULL, x'de', 14.0,"
        " 99.0, x'')"
    ],
    5: ["INSERT INTO drop_ledger VALUES (x'1d', 'parked', 15.0, 99.0)"],
}
VAULT_ROWS = {
    1: [
        "INSERT INTO owner_secrets VALUES ('identity', x'1d', 1.0)",
        "INSERT INTO contacts (contact_id, display_name, card, verified_at,"
        " verified_safety_number, created_at) VALUES ('alice', 'Alice', x'ca', 3.0, '12345', 2.0)",
        "INSERT INTO sessions VALUES ('alice', 1, x'5e', 4.0)",
        "INSERT INTO messages (message_id, contact_id, direction, body, state, created_at,"
        " updated_at) VALUES ('m1', 'alice', 'out', 'hello v1', 'delivered', 5.0, 6.0)",
        "INSERT INTO outbox VALUES (x'e1', 'alice', 'm1', 1, x'0e', 5.0, 99.0, 7.0, 2)",
        "INSERT INTO incoming_seen VALUES (x'f1', 8.0)",
        "INSERT INTO settings VALUES ('theme', 'dark')",
    ],
    2: [
        "INSERT INTO files VALUES ('f1', 'alice', 'photo.jpg', 10, 2, 9.0)",
        "INSERT INTO file_chunks VALUES ('f1', 0, x'00112233445566778899')",
        "INSERT INTO messages (message_id, contact_id, direction, file_id, state, created_at,"
        " updated_at) VALUES ('m2', 'alice', 'in', 'f1', 'received', 9.0, 9.0)",
    ],
    3: [
        "INSERT INTO waiting (contact_id, message_id) VALUES ('alice', 'w1')",
        "INSERT INTO waiting (contact_id, message_id) VALUES ('alice', 'w0')",
    ],
    4: ["INSERT INTO neighbourhood VALUES (NULL, x'0102030405060708', 'juno', 'hi', 5, 6.0, 0)"],
}


def at_version(schema: Schema, version: int) -> Schema:
    return dataclasses.replace(schema, migrations=schema.migrations[:version])


def make_old_database(path: Path, schema: Schema, version: int, rows: dict[int, list[str]]) -> None:
    database = Database.open(path, KEY, at_version(schema, version), create=True)
    with database.transaction() as tx:
        for v in range(1, version + 1):
            for statement in rows[v]:
                tx.execute(statement)
    database.close()


def test_every_version_has_sample_rows() -> None:
    assert sorted(SPOOL_ROWS) == list(range(1, SPOOL_SCHEMA.latest + 1))
    assert sorted(VAULT_ROWS) == list(range(1, VAULT_SCHEMA.latest + 1))
    for schema in (SPOOL_SCHEMA, VAULT_SCHEMA):
        assert [m.version for m in schema.migrations] == list(range(1, schema.latest + 1))


@pytest.mark.parametrize("version", range(SPOOL_SCHEMA.latest + 1))
def test_spool_migrates_from_version(tmp_path: Path, version: int) -> None:
    path = tmp_path / "spool.db"
    if version:
        make_old_database(path, SPOOL_SCHEMA, version, SPOOL_ROWS)
    spool = Spool.open(path, KEY)
    assert spool._db.fetchone("PRAGMA user_version") == (SPOOL_SCHEMA.latest,)
    first = spool.envelope(b"\x01")
    if version >= 1:
        assert first is not None
        assert (first.recipient_tag, first.packet, first.held_for_owner) == (
            b"\xaa",
            b"\xde\xad\xbe\xef",
            False,
        )
        assert first.receipt_hash == b"\xcc"
    if version >= 2:
        assert [e.packet_id for e in spool.owner_held()] == [b"\x02"]
        assert spool.seen_cache() == b"\x5e\xed"
    if version >= 3:
        assert spool.node_secret("bitchat") == b"\xb1\xc4"
    if version >= 4:
        [held] = spool.courier_shelf().load()
        assert (held.identity, held.copies, held.sprayed_to) == (b"\x1d", 4, frozenset())
    assert spool.courier_shelf().stats().held == (1 if version >= 4 else 0)
    assert spool.drop_ledger().parked(16.0) == ({b"\x1d": 15.0} if version >= 5 else {})
    spool.put_node_secret("other", b"\x01", 14.0)
    assert spool.node_secret("other") == b"\x01"
    assert spool.integrity_check() == ["ok"]
    spool.close()


@pytest.mark.parametrize("version", range(VAULT_SCHEMA.latest + 1))
def test_vault_migrates_from_version(tmp_path: Path, version: int) -> None:
    path = tmp_path / "vault.db"
    if version:
        make_old_database(path, VAULT_SCHEMA, version, VAULT_ROWS)
    vault = Vault.open(path, KEY, create=version == 0)
    assert vault._db.fetchone("PRAGMA user_version") == (VAULT_SCHEMA.latest,)
    if version >= 1:
        alice = vault.contact("alice")
        assert alice.verification is not None
        assert (alice.verification.safety_number, alice.check_in_interval_s) == ("12345", 300.0)
        assert vault.owner_secret("identity") == b"\x1d"
        assert vault.session("alice") is not None
        m1 = vault.message("m1")
        assert (m1.body, m1.state) == ("hello v1", MessageState.DELIVERED)
        assert m1.direction is Direction.OUT
        entry = vault.outbox_entry(b"\xe1")
        assert entry is not None
        assert entry.attempts == 2
        assert vault.incoming_seen(b"\xf1")
        assert vault.setting("theme") == "dark"
        with vault.transaction() as tx:  # the rebuilt messages table keeps numbering onwards
            seq = tx.append_message(NEW_MESSAGE)
        assert seq > max(m.seq for m in vault.messages("alice") if m.message_id != "new")
    if version >= 2:
        assert vault.message("m2").file_id == "f1"
        assert vault.missing_chunks("f1") == [1]
    if version >= 3:
        assert vault.waiting("alice") == ["w1", "w0"]  # queue order, not id order
    elif version:
        assert vault.waiting("alice") == []
    heard = [(line.nickname, line.body) for line in vault.neighbourhood()]
    assert heard == ([("juno", "hi")] if version >= 4 else [])
    with vault.transaction() as tx:
        for n in range(3):
            tx.append_neighbourhood(PublicChatLine(bytes(8), "kai", f"line {n}", n, 7.0), keep=2)
    assert [line.body for line in vault.neighbourhood()] == ["line 1", "line 2"]  # capped
    assert vault.integrity_check() == ["ok"]
    vault.close()


def test_ephemeral_history_tables_match_the_migrated_ones(tmp_path: Path) -> None:
    keeper = VaultKeeper(DataDir(tmp_path), argon2=CHEAP_ARGON2)
    keeper.initialise(PASSPHRASE)
    keeper.lock()
    key = unwrap_data_key(read_vault_header(DataDir(tmp_path).vault_header), PASSPHRASE)
    vault = Vault.open(DataDir(tmp_path).vault_db, key, create=False, ephemeral=True)
    for table in HISTORY_TABLES:
        persistent = vault._db.fetchall(f"PRAGMA main.table_xinfo({table})")
        ephemeral = vault._db.fetchall(f"PRAGMA {EPHEMERAL_SCHEMA}.table_xinfo({table})")
        assert persistent == ephemeral, table
        strict = [
            vault._db.fetchone(
                "SELECT strict FROM pragma_table_list WHERE name = ? AND schema = ?",
                (table, schema),
            )
            for schema in ("main", EPHEMERAL_SCHEMA)
        ]
        assert strict == [(1,), (1,)], table
        for pragma in ("index_list", "foreign_key_list"):
            main_rows = vault._db.fetchall(f"PRAGMA main.{pragma}({table})")
            eph_rows = vault._db.fetchall(f"PRAGMA {EPHEMERAL_SCHEMA}.{pragma}({table})")
            assert main_rows == eph_rows, (table, pragma)
    assert len(history_tables_ddl("x")) >= len(HISTORY_TABLES)
    vault.close()
