"""Vaults made before Olm (a Noise XX / Double Ratchet session each) open, migrate by themselves
and go on: the conversation stays, the old session goes, a new Olm session starts on its own
(a prekey request: the stored cards predate Olm) and the messages the old session left
undelivered are sent."""

from __future__ import annotations

import shutil
from pathlib import Path

from pigeon.messenger.records import PEER_RECORD_VERSION, PeerRecord
from pigeon.messenger.upgrade import OLD_GUARD_SECRET, OLD_RESPONDERS_SECRET
from pigeon.store.migrations import VAULT_SCHEMA
from tests.messenger.helpers import T0, Endpoint, Wire

FIXTURES = Path(__file__).parent / "fixtures" / "vault_noise_era"
BOB_AT_ALICE = "KVJZ-WM6M-C5V5-5GJ6-KNG7"
ALICE_AT_BOB = "TJJG-UXCL-CWSB-VS3C-LUFE"
LOST = ["ca3fe5dbd0233ff63bea1d72b2654329", "d2bf1e76e03ea8a77364c587f38ff93f"]


def endpoint_from_fixture(tmp_path: Path, name: str, seed: int) -> Endpoint:
    root = tmp_path / name
    root.mkdir()
    for file in ("vault.header", "vault.db"):
        shutil.copyfile(FIXTURES / name / file, root / file)
    endpoint = Endpoint(root, seed)
    endpoint.start(T0 + 600)
    return endpoint


def test_a_noise_era_vault_migrates_and_its_undelivered_texts_go_on_olm(tmp_path: Path) -> None:
    alice = endpoint_from_fixture(tmp_path, "alice", 1)
    bob = endpoint_from_fixture(tmp_path, "bob", 500)
    vault = alice.keeper.vault
    assert vault._db.fetchone("PRAGMA user_version") == (VAULT_SCHEMA.latest,)
    stored = vault.session(BOB_AT_ALICE)
    assert stored is not None
    assert stored.format_version == PEER_RECORD_VERSION
    record = PeerRecord.from_bytes(stored.state)
    assert record.sessions == ()  # the ratchet session is gone, the tag keys stay
    assert record.outbound_tag_key is not None
    assert vault.waiting(BOB_AT_ALICE) == LOST  # back in line, in order
    assert vault.outbox_for_contact(BOB_AT_ALICE) == []
    for endpoint in (alice, bob):
        for name in (OLD_GUARD_SECRET, OLD_RESPONDERS_SECRET):
            assert endpoint.keeper.vault.owner_secret(name) is None
    before = [(m.text, m.state) for m in alice.messenger.conversation(BOB_AT_ALICE)]
    assert before == [
        ("before the upgrade", "delivered"),
        ("answered before the upgrade", "received"),
        ("lost 0 before the upgrade", "queued"),
        ("lost 1 before the upgrade", "queued"),
    ]
    wire = Wire(alice, bob)
    wire.tick(T0 + 700, alice)  # nothing for the owner to do: a prekey request goes out
    wire.pump(T0 + 700)
    after = [(m.text, m.state) for m in alice.messenger.conversation(BOB_AT_ALICE)]
    assert after == [(text, "delivered" if "lost" in text else state) for text, state in before]
    received = [m.text for m in bob.messenger.conversation(ALICE_AT_BOB)]
    assert received == [
        "before the upgrade",
        "answered before the upgrade",
        "lost 0 before the upgrade",
        "lost 1 before the upgrade",
    ]
    bob.messenger.send_text(ALICE_AT_BOB, "and back on Olm", T0 + 800)
    wire.pump(T0 + 800)
    assert alice.messenger.conversation(BOB_AT_ALICE)[-1].text == "and back on Olm"
    # A restart finds nothing more to upgrade.
    alice.close()
    alice.open()
    alice.start(T0 + 900)
    assert alice.keeper.vault.waiting(BOB_AT_ALICE) == []
    alice.close()
    bob.close()
