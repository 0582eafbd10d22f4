"""After a conversation with known texts, files, names and keys, no file under either data
directory (databases, WAL, shared memory, key files) and no log line contains any of them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pigeon.messenger.records import PeerRecord
from tests.messenger.helpers import PASSPHRASE, T0, Endpoint, Wire

TEXTS = ["text-marker-meet-at-the-old-mill", "text-marker-bring-the-blue-folder " * 100]
NAMES = ["name-marker-Zebulon-Quartermaine", "name-marker-Ottoline-Vanderpump"]
FILE_NAME = "filename-marker-passport-scan.pdf"
FILE_DATA = b"chunk-marker-holiday-photo-bytes " * 1000


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def _secrets(endpoint: Endpoint, contact_id: str) -> list[bytes]:
    vault = endpoint.keeper.vault
    identity = vault.owner_secret("identity")
    stored = vault.session(contact_id)
    assert identity is not None
    assert stored is not None
    record = PeerRecord.from_bytes(stored.state)
    found = [identity[:32], identity[32:], record.inbound_tag_key]
    return found + ([record.outbound_tag_key] if record.outbound_tag_key else [])


def test_nothing_readable_on_disk_or_in_logs(
    alice: Endpoint, bob: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wire = Wire(alice, bob)
    bob_id = alice.messenger.add_contact(bob.messenger.own_card_text(), NAMES[0], T0).id
    alice_id = bob.messenger.add_contact(alice.messenger.own_card_text(), NAMES[1], T0).id
    alice.messenger.send_text(bob_id, TEXTS[0], T0)
    alice.messenger.send_file(bob_id, FILE_NAME, FILE_DATA, T0)
    wire.pump(T0 + 1)
    bob.messenger.lock(T0 + 2)  # the next envelope waits, still encrypted, in bob's spool
    alice.messenger.send_text(bob_id, TEXTS[1], T0 + 2)
    wire.pump(T0 + 2)
    bob.messenger.unlock(PASSPHRASE, T0 + 3)
    wire.pump(T0 + 3)
    received = [m.text for m in bob.messenger.conversation(alice_id)]
    assert TEXTS[0] in received
    assert TEXTS[1] in received

    markers = [t.encode() for t in TEXTS] + [n.encode() for n in NAMES]
    markers += [FILE_NAME.encode(), FILE_DATA[:64], PASSPHRASE.encode()]
    markers += _secrets(alice, bob_id) + _secrets(bob, alice_id)
    markers = [m[:48] for m in markers]  # a prefix is enough to find any copy

    def scan() -> None:
        for endpoint in (alice, bob):
            for path in _files(endpoint.root):
                content = path.read_bytes()
                for marker in markers:
                    assert marker not in content, f"{path.name} holds a marker"
                    assert marker.hex().encode() not in content, f"{path.name} holds a marker"

    scan()  # while open: the WAL files hold the latest writes
    alice.close()
    bob.close()
    scan()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for marker in markers:
        assert marker.decode("latin-1") not in logged
        assert marker.hex() not in logged
