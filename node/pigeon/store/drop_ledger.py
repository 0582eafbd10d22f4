"""The gateway's drop ledger in the spool: which bitchat courier envelopes the node parked on
Nostr relays (kind-1401 drops) and which it handed to their recipients, so a restart neither
re-parks an envelope inside its cooldown nor hands a phone the same envelope twice.

Relays keep a drop for its whole 24 h and send it again on every new subscription, and a
throwaway key signs each drop, so the same envelope comes back under several event ids: rows
are keyed by the envelope's identity (the SHA-256 of its ciphertext), never by event id. Each
row expires with its envelope; a parked row goes with its held envelope (`forget_parked`, in
the courier shelf's transaction); delivered rows are also capped, oldest first. Rows hold only
hashes and times.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Final

from pigeon.store.db import Database, Transaction

MAX_DELIVERED: Final = 20_000  # twice the courier's default quota: a day of hand-overs
_UPSERT: Final = (
    "INSERT INTO drop_ledger (identity, kind, at, expires_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (identity, kind) DO UPDATE SET at = excluded.at,"
    " expires_at = excluded.expires_at"
)


class Mark(StrEnum):
    """What the ledger records of an envelope."""

    PARKED = "parked"  # a relay accepted its drop at `at`
    DELIVERED = "delivered"  # it reached its recipient's link at `at`


class DropLedger:
    """The drop ledger of an open spool database. Raises the store room's errors."""

    def __init__(self, database: Database, max_delivered: int = MAX_DELIVERED) -> None:
        self._db = database
        self.max_delivered = max_delivered

    def parked(self, now: float) -> dict[bytes, float]:
        """Envelopes parked and not yet expired: identity -> when a relay accepted the drop."""
        rows = self._db.fetchall(
            "SELECT identity, at FROM drop_ledger WHERE kind = ? AND expires_at > ?",
            (Mark.PARKED.value, now),
        )
        return {bytes(r[0]): float(r[1]) for r in rows}

    def was_delivered(self, identity: bytes, now: float) -> bool:
        """Whether the envelope `identity` was handed to its recipient and has not expired."""
        row = self._db.fetchone(
            "SELECT 1 FROM drop_ledger WHERE identity = ? AND kind = ? AND expires_at > ?",
            (identity, Mark.DELIVERED.value, now),
        )
        return row is not None

    def note(self, mark: Mark, identity: bytes, at: float, expires_at: float) -> None:
        """Record `mark` of the envelope `identity` until `expires_at`, durably."""
        with self._db.transaction() as tx:
            record(tx, mark, [(identity, at, expires_at)], self.max_delivered)

    def count(self, mark: Mark) -> int:
        """How many rows of `mark` the ledger holds (expired ones until the next write)."""
        row = self._db.fetchone("SELECT count(*) FROM drop_ledger WHERE kind = ?", (mark.value,))
        assert row is not None  # an aggregate always returns one row
        return int(row[0])


def record(
    tx: Transaction,
    mark: Mark,
    rows: Iterable[tuple[bytes, float, float]],
    max_delivered: int = MAX_DELIVERED,
) -> None:
    """Inside `tx`: record `mark` for each (identity, at, expires_at), then drop the rows
    expired by the latest `at` and the oldest delivered rows past `max_delivered`."""
    params = [(identity, mark.value, at, expires_at) for identity, at, expires_at in rows]
    if not params:
        return
    tx.executemany(_UPSERT, params)
    now = max(p[2] for p in params)
    tx.execute("DELETE FROM drop_ledger WHERE expires_at <= ?", (now,))
    if mark is Mark.DELIVERED:
        tx.execute(
            "DELETE FROM drop_ledger WHERE rowid IN (SELECT rowid FROM drop_ledger"
            " WHERE kind = ? ORDER BY at DESC, rowid DESC LIMIT -1 OFFSET ?)",
            (Mark.DELIVERED.value, max_delivered),
        )


def forget_parked(tx: Transaction, identities: Iterable[bytes]) -> None:
    """Inside `tx`: the envelopes `identities` are no longer held; their parked rows go."""
    tx.executemany(
        "DELETE FROM drop_ledger WHERE identity = ? AND kind = ?",
        [(identity, Mark.PARKED.value) for identity in identities],
    )
