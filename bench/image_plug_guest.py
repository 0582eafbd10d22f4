"""Traffic and ledger for the pulled-plug test, inside the flashed image (image/pulled-plugs.sh).

`check`: after a boot, open the test's vault and spool (SQLCipher files on the card, key in a
file beside them), run SQLite's integrity check on both, and print every stored text and
envelope id with how often it is stored and whether its bytes are whole (each body and packet is
derived from its id, so a half-written one shows). `traffic`: until QEMU is killed, write texts
(one durable vault transaction each: history + outbox, as the owner's endpoint does) and
envelopes deposited for neighbours (one durable spool transaction per batch, as the daemon's
persist does), and print `ACK` for each only after its transaction returned: the host reads the
serial console as it goes, so what was acknowledged is known outside the machine that dies.
Lines: `PLUG: ACK T|E ID`, `PLUG: HAVE T|E ID COUNT whole|torn`, `PLUG: INTEGRITY vault|spool ok`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sys
import time
from collections import Counter
from pathlib import Path

from pigeon.store.keys import DatabaseKey
from pigeon.store.spool_db import Spool, SpooledEnvelope, StoreEnvelope
from pigeon.store.vault import Vault
from pigeon.store.vault_records import Direction, Message, MessageState, OutboxEntry

DATA = Path("/var/lib/pigeon/plug")
CONTACT = "robin"
ENVELOPE_BYTES = 640
BATCH = 5  # envelopes per spool transaction


def say(line: str) -> None:
    """One line to the serial console, flushed before the next write to the card."""
    with open("/dev/console", "w") as console:
        console.write(f"PLUG: {line}\n")


def derived(ident: str, size: int) -> bytes:
    """The bytes stored under `ident`: a torn write cannot reproduce them."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{ident}/{counter}".encode()).digest()
        counter += 1
    return out[:size]


def key() -> DatabaseKey:
    """The test's database key, made once and kept beside the files."""
    path = DATA / "key"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(secrets.token_bytes(32))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        tmp.rename(path)
    return DatabaseKey(path.read_bytes())


def open_stores() -> tuple[Vault, Spool]:
    """The test's vault (with its one contact) and spool."""
    vault = Vault.open(DATA / "vault.db", key(), create=True)
    with vault.transaction() as tx:
        if not tx.contacts():
            tx.add_contact(CONTACT, "Robin", b"card", time.time())
    return vault, Spool.open(DATA / "spool.db", key())


def check() -> None:
    """Print integrity and every stored id with its count and wholeness."""
    vault, spool = open_stores()
    say(f"INTEGRITY vault {' '.join(vault.integrity_check())}")
    say(f"INTEGRITY spool {' '.join(spool.integrity_check())}")
    texts = Counter(m.message_id for m in vault.messages(CONTACT, limit=1 << 30))
    for message_id, count in sorted(texts.items()):
        body = vault.message(message_id).body or ""
        whole = body == derived(message_id, 24).hex()
        say(f"HAVE T {message_id} {count} {'whole' if whole else 'torn'}")
    envelopes = Counter(e.packet_id.hex() for e in spool.entries())
    for packet_hex, count in sorted(envelopes.items()):
        stored = spool.envelope(bytes.fromhex(packet_hex))
        whole = stored is not None and stored.packet == derived(packet_hex, ENVELOPE_BYTES)
        say(f"HAVE E {packet_hex} {count} {'whole' if whole else 'torn'}")
    say(f"CHECKED {len(texts)} texts {len(envelopes)} envelopes")
    vault.close()
    spool.close()


def text(vault: Vault, message_id: str) -> None:
    """One text written durably, as the owner's endpoint stores a text it was asked to send."""
    now = time.time()
    envelope_id = secrets.token_bytes(16)
    body = derived(message_id, 24).hex()
    with vault.transaction() as tx:
        tx.append_message(
            Message(message_id, CONTACT, Direction.OUT, MessageState.QUEUED, now, now, body)
        )
        tx.enqueue(
            OutboxEntry(
                envelope_id,
                CONTACT,
                message_id,
                1,
                derived(body, ENVELOPE_BYTES),
                now,
                now + 7 * 86400,
                now,
            )
        )


def envelopes(spool: Spool) -> list[str]:
    """A batch of envelopes for neighbours stored in one durable transaction; their ids."""
    now = time.time()
    ids = [secrets.token_bytes(16) for _ in range(BATCH)]
    spool.apply(
        StoreEnvelope(
            SpooledEnvelope(
                packet_id=packet_id,
                recipient_tag=packet_id[:8],
                depositor="mesh",
                priority=1,
                expires_at=now + 7 * 86400,
                receipt_hash=None,
                packet=derived(packet_id.hex(), ENVELOPE_BYTES),
                stored_at=now,
            )
        )
        for packet_id in ids
    )
    return [packet_id.hex() for packet_id in ids]


def traffic(boot: str) -> None:
    """Texts and envelope batches, alternating, each acknowledged once durable; never ends."""
    vault, spool = open_stores()
    n = 0
    while True:
        message_id = f"{boot}-{n}"
        text(vault, message_id)
        say(f"ACK T {message_id}")
        for packet_hex in envelopes(spool):
            say(f"ACK E {packet_hex}")
        n += 1


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check()
    else:
        traffic(sys.argv[2])
