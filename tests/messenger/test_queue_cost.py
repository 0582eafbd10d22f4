"""Queueing a message for a contact without a session costs the same at any queue length.

Work is counted, not timed: the vault's WAL frames (pages written) of one send.
"""

from __future__ import annotations

from pigeon.store.vault import Vault
from tests.messenger.helpers import T0, Endpoint, befriend

SHORT_QUEUE = 10
LONG_QUEUE = 2_000
SAMPLES = 50  # splits come now and then: a mean over 50 sends, not 10, is steady
GROWING_TREES = 5


def pages_written(vault: Vault, action: object) -> int:
    """The database pages one committed action wrote (WAL frames appended to an empty WAL)."""
    database = vault._db
    database.fetchone("PRAGMA wal_checkpoint(TRUNCATE)")
    assert callable(action)
    action()
    row = database.fetchone("PRAGMA wal_checkpoint(PASSIVE)")
    assert row is not None
    return int(row[1])


def mean_pages_per_send(endpoint: Endpoint, contact_id: str, now: float) -> float:
    vault = endpoint.keeper.vault
    total = 0
    for n in range(SAMPLES):
        total += pages_written(
            vault, lambda n=n: endpoint.messenger.send_text(contact_id, f"sample {n}", now)
        )
    return total / SAMPLES


def test_a_send_writes_as_much_with_2000_queued_as_with_10(alice: Endpoint, bob: Endpoint) -> None:
    bob_id, _ = befriend(alice, bob, T0)  # bob never answers: every text waits for a session
    for n in range(SHORT_QUEUE):
        alice.messenger.send_text(bob_id, f"early {n}", T0)
    short = mean_pages_per_send(alice, bob_id, T0)
    for n in range(LONG_QUEUE - SHORT_QUEUE - SAMPLES):
        alice.messenger.send_text(bob_id, f"later {n}", T0)
    long = mean_pages_per_send(alice, bob_id, T0)
    # Today a send writes a few pages (the message, its index, its place in the queue); the
    # queue's length must not add pages beyond the B-trees' depth (log n: with the vault's
    # 1 KiB pages each of the five growing trees a queued send touches, the messages, their two
    # indexes, the waiting rows and their index, gains a level between 10 and 2,000 rows) and
    # a split now and then. A queue rewritten whole would add tens of pages at 2,000.
    assert long <= short + GROWING_TREES + 1, (
        f"{short:.1f} pages per send at {SHORT_QUEUE}, {long:.1f} at {LONG_QUEUE}"
    )
