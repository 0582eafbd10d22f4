"""Crash-test writer: commits envelopes and messages in a loop, printing each id once committed.

Run as `python crash_writer.py DATA_DIR RUN_NAME`, or `python crash_writer.py DATA_DIR --rekey N`
to change the vault passphrase from `passphrase(N)` to N+1, N+2, ...; test_crash.py kills it with
SIGKILL. A line is printed only after the write that it reports has returned.
"""

import os
import sys
from pathlib import Path

from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import Argon2Params
from pigeon.store.spool_db import SaveSeenCache, SpooledEnvelope, StoreEnvelope
from pigeon.store.vault_records import Direction, Message, MessageState, OutboxEntry, SessionState

ARGON2 = Argon2Params(opslimit=1, memlimit_bytes=8192)
PASSPHRASE = "crash test passphrase"
CONTACT = "peer"
ENVELOPES_PER_BATCH = 3


def envelope(packet_id: str, n: int) -> SpooledEnvelope:
    return SpooledEnvelope(
        packet_id=packet_id.encode(),
        recipient_tag=b"tag-%d" % (n % 5),
        depositor="neighbour",
        priority=n % 3,
        expires_at=1e12,
        receipt_hash=os.urandom(16),
        packet=os.urandom(600),
        stored_at=float(n),
    )


def main(data_root: str, run: str) -> None:
    data_dir = DataDir(Path(data_root))
    spool = open_spool(data_dir)
    keeper = VaultKeeper(data_dir, argon2=ARGON2)
    vault = keeper.unlock(PASSPHRASE) if keeper.is_initialised else keeper.initialise(PASSPHRASE)
    with vault.transaction() as tx:
        if not tx.contacts():
            tx.add_contact(CONTACT, "Peer", b"card", 0.0)
    for n in range(1, 1_000_000):
        ids = [f"{run}-{n}-{k}" for k in range(ENVELOPES_PER_BATCH)]
        ops: list[StoreEnvelope | SaveSeenCache] = [StoreEnvelope(envelope(i, n)) for i in ids]
        ops.append(SaveSeenCache(f"{run}-{n}".encode(), float(n)))
        spool.apply(ops)
        print("S", *ids, flush=True)
        message_id = f"{run}-m{n}"
        with vault.transaction() as tx:
            session = tx.session(CONTACT)
            steps = int(session.state) + 1 if session else 1
            tx.claim_incoming(message_id.encode(), float(n))
            tx.save_session(CONTACT, SessionState(1, b"%d" % steps, float(n)))
            tx.append_message(
                Message(message_id, CONTACT, Direction.IN, MessageState.RECEIVED, n, n, body="x")
            )
            envelope_bytes = os.urandom(300)
            tx.enqueue(
                OutboxEntry(message_id.encode(), CONTACT, message_id, 1, envelope_bytes, n, 1e12, n)
            )
        print("V", message_id, flush=True)


def passphrase(n: int) -> str:
    """The n-th passphrase of the rekey run (0 is the one the vault was created with)."""
    return PASSPHRASE if n == 0 else f"{PASSPHRASE} {n}"


def rekey(data_root: str, start: int) -> None:
    keeper = VaultKeeper(DataDir(Path(data_root)), argon2=ARGON2)
    for n in range(start + 1, start + 1_000_000):
        keeper.change_passphrase(passphrase(n - 1), passphrase(n))
        print("P", n, flush=True)


if __name__ == "__main__":
    if sys.argv[2] == "--rekey":
        rekey(sys.argv[1], int(sys.argv[3]))
    else:
        main(sys.argv[1], sys.argv[2])
