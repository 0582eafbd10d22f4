"""No file in the data directory (databases, WAL, shared memory, headers) holds a known secret."""

import logging
from pathlib import Path

import pytest

from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import read_vault_header, unwrap_data_key
from pigeon.store.spool_db import SaveSeenCache, Spool, SpooledEnvelope, StoreEnvelope
from pigeon.store.vault_records import (
    Direction,
    FileInfo,
    Message,
    MessageState,
    OutboxEntry,
    SessionState,
)
from tests.store.conftest import CHEAP_ARGON2

PASSPHRASE = "passphrase-marker-Hunter2-xyzzy"
LONG_BODY = "body-marker-the-eagle-lands-at-dawn" * 300  # spills into overflow pages
MARKERS = [
    "body-marker-the-eagle-lands-at-dawn",
    "name-marker-Zebulon-Quartermaine",
    "card-marker-public-card-bytes",
    "secret-marker-identity-private-key",
    "session-marker-ratchet-chain-key",
    "setting-marker-relay-wss-example",
    "chunk-marker-holiday-photo-bytes",
    "filename-marker-passport-scan.pdf",
    "packet-marker-opaque-envelope",
    "tag-marker-recipient-tag",
    "seen-marker-seen-cache-blob",
    "outbox-marker-queued-envelope",
    PASSPHRASE,
]


def write_scenario(data_dir: DataDir) -> tuple[VaultKeeper, Spool]:
    spool = open_spool(data_dir)
    spool.apply(
        [
            StoreEnvelope(
                SpooledEnvelope(
                    packet_id=b"pid-1",
                    recipient_tag=MARKERS[9].encode(),
                    depositor="neighbour",
                    priority=1,
                    expires_at=1e12,
                    receipt_hash=None,
                    packet=MARKERS[8].encode() * 20,
                    stored_at=1.0,
                    held_for_owner=True,
                )
            ),
            SaveSeenCache(MARKERS[10].encode(), 1.0),
        ]
    )
    keeper = VaultKeeper(data_dir, argon2=CHEAP_ARGON2)
    vault = keeper.initialise(PASSPHRASE)
    with vault.transaction() as tx:
        tx.add_contact("c1", MARKERS[1], MARKERS[2].encode(), 1.0)
        tx.put_owner_secret("identity", MARKERS[3].encode(), 1.0)
        tx.save_session("c1", SessionState(1, MARKERS[4].encode(), 1.0))
        tx.put_setting("relay", MARKERS[5])
        tx.append_message(
            Message("m1", "c1", Direction.OUT, MessageState.QUEUED, 1.0, 1.0, body=MARKERS[0])
        )
        tx.append_message(
            Message("m2", "c1", Direction.IN, MessageState.RECEIVED, 2.0, 2.0, body=LONG_BODY)
        )
        tx.add_file(FileInfo("f1", "c1", MARKERS[7], 100, 2, 1.0))
        tx.put_chunk("f1", 0, MARKERS[6].encode() * 100)
        tx.enqueue(OutboxEntry(b"e1", "c1", "m1", 1, MARKERS[11].encode(), 1.0, 1e12, 1.0))
    with vault.transaction() as tx:  # leave deleted content behind too
        tx.delete_message("m1")
    return keeper, spool


def secrets_in(data_dir: DataDir, extra: dict[str, bytes]) -> list[str]:
    needles = {marker: marker.encode() for marker in MARKERS} | extra
    found = []
    for path in sorted(data_dir.root.iterdir()):
        content = path.read_bytes()
        found += [f"{name} in {path.name}" for name, needle in needles.items() if needle in content]
    return found


def key_needles(data_dir: DataDir) -> dict[str, bytes]:
    data_key = unwrap_data_key(read_vault_header(data_dir.vault_header), PASSPHRASE).raw
    return {
        "vault data key": data_key,
        "vault data key (hex)": data_key.hex().encode(),
        "device key (hex)": data_dir.device_key.read_bytes().hex().encode(),
    }


def test_no_secret_reaches_any_file_or_log(
    data_dir: DataDir, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keeper, spool = write_scenario(data_dir)
    assert {p.name for p in data_dir.root.iterdir()} >= {"vault.db-wal", "spool.db-wal"}
    needles = key_needles(data_dir)
    assert secrets_in(data_dir, needles) == []  # while open: WAL and shared memory included
    keeper.lock()
    spool.close()
    assert secrets_in(data_dir, needles) == []
    device_key = data_dir.device_key.read_bytes()
    assert [p.name for p in data_dir.root.iterdir() if device_key in p.read_bytes()] == [
        "device.key"
    ]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert [marker for marker in MARKERS if marker in logged] == []
    assert all(needle.decode(errors="ignore") not in logged for needle in needles.values())


def test_the_checker_finds_plaintext_when_it_is_there(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path)
    (tmp_path / "leak.db").write_bytes(b"xx" + MARKERS[0].encode() + b"yy")
    assert secrets_in(data_dir, {}) == [f"{MARKERS[0]} in leak.db"]
