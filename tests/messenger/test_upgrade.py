"""A vault made before the waiting list moved to its own table opens, upgrades and delivers."""

from __future__ import annotations

import shutil
from pathlib import Path

from pigeon.messenger.records import PEER_RECORD_VERSION
from pigeon.store.migrations import VAULT_SCHEMA
from tests.messenger.helpers import T0, Endpoint, Wire

FIXTURES = Path(__file__).parent / "fixtures" / "vault_schema2"
BOB_AT_ALICE = "KVJZ-WM6M-C5V5-5GJ6-KNG7"
ALICE_AT_BOB = "TJJG-UXCL-CWSB-VS3C-LUFE"
QUEUED = [
    "935d406e8fdb72a34980be64d347bdcd",
    "cde91b2a789b7d8f7f796c2d7895723c",
    "e3c6083b30901b064e853d2d35913c53",
]


def endpoint_from_fixture(tmp_path: Path, name: str, seed: int) -> Endpoint:
    root = tmp_path / name
    root.mkdir()
    for file in ("vault.header", "vault.db"):
        shutil.copyfile(FIXTURES / name / file, root / file)
    endpoint = Endpoint(root, seed)
    endpoint.start(T0 + 10)
    return endpoint


def test_a_schema_2_vault_keeps_its_queue_through_the_upgrade(tmp_path: Path) -> None:
    alice = endpoint_from_fixture(tmp_path, "alice", 1)
    bob = endpoint_from_fixture(tmp_path, "bob", 500)
    vault = alice.keeper.vault
    # The store migrated the schema; the messenger moved the list out of the session record.
    assert vault._db.fetchone("PRAGMA user_version") == (VAULT_SCHEMA.latest,)
    assert vault.waiting(BOB_AT_ALICE) == QUEUED
    session = vault.session(BOB_AT_ALICE)
    assert session is not None
    assert session.format_version == PEER_RECORD_VERSION
    assert [m.state for m in alice.messenger.conversation(BOB_AT_ALICE)] == ["queued"] * 3
    # The handshake is retried; the session comes up and the three texts go, in order.
    wire = Wire(alice, bob)
    wire.tick(T0 + 2000, alice)
    wire.pump(T0 + 2000)
    received = [(m.text, m.state) for m in bob.messenger.conversation(ALICE_AT_BOB)]
    assert received == [(f"queued {n} before the upgrade", "received") for n in range(3)]
    assert [m.state for m in alice.messenger.conversation(BOB_AT_ALICE)] == ["delivered"] * 3
    assert vault.waiting(BOB_AT_ALICE) == []
    # A restart finds nothing more to upgrade and nothing waiting.
    alice.close()
    alice.open()
    alice.start(T0 + 2100)
    assert alice.keeper.vault.waiting(BOB_AT_ALICE) == []
    alice.close()
    bob.close()
