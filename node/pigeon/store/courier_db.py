"""The bitchat courier's shelf in the spool: envelopes carried for absent phones.

Each row is an opaque one-way Noise seal to a phone the node cannot read, with the bitchat
routing fields around it (tag, expiry, copy budget) and the bookkeeping the courier's quotas
need after a restart (depositor key, times, couriers already sprayed). It lives in the spool,
under the device key, so the node carries mail before the owner unlocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from pigeon.store.db import Database, Row
from pigeon.store.drop_ledger import DropLedger, Mark, forget_parked, record

_COLUMNS: Final = (
    "identity, recipient_tag, expiry_ms, ciphertext, copies, prekey_id, depositor, stored_at,"
    " expires_at, sprayed_to"
)
_UPSERT: Final = (
    f"INSERT INTO courier_held ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (identity) DO UPDATE SET copies = excluded.copies,"
    " sprayed_to = excluded.sprayed_to"
)
KEY_SIZE: Final = 32


@dataclass(frozen=True, slots=True)
class HeldRow:
    """One carried envelope as stored; `sprayed_to` holds 32-byte Noise keys."""

    identity: bytes
    recipient_tag: bytes
    expiry_ms: int
    ciphertext: bytes = field(repr=False)
    copies: int
    prekey_id: int | None
    depositor: bytes
    stored_at: float
    expires_at: float
    sprayed_to: frozenset[bytes] = frozenset()


@dataclass(frozen=True, slots=True)
class ShelfStats:
    """Counts for the status views."""

    held: int
    ciphertext_bytes: int


class CourierShelf:
    """The courier table of an open spool database. Raises the store room's errors."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def apply(
        self,
        keep: Iterable[HeldRow],
        forget: Iterable[bytes],
        delivered: Iterable[tuple[bytes, float, float]] = (),
    ) -> None:
        """Store or update `keep`, delete `forget`, and record `delivered` (identity, when,
        until: envelopes handed to their recipients, among `forget`) in the drop ledger, in one
        durable transaction."""
        rows = [_row(r) for r in keep]
        gone = [(identity,) for identity in forget]
        with self._db.transaction() as tx:
            if rows:
                tx.executemany(_UPSERT, rows)
            if gone:
                tx.executemany("DELETE FROM courier_held WHERE identity = ?", gone)
                forget_parked(tx, (identity for (identity,) in gone))
            record(tx, Mark.DELIVERED, delivered)

    def was_delivered(self, identity: bytes, now: float) -> bool:
        """Whether the envelope `identity` was handed to its recipient (the drop ledger)."""
        return DropLedger(self._db).was_delivered(identity, now)

    def load(self) -> list[HeldRow]:
        """Every carried envelope, oldest first."""
        rows = self._db.fetchall(f"SELECT {_COLUMNS} FROM courier_held ORDER BY stored_at, rowid")
        return [_held(r) for r in rows]

    def stats(self) -> ShelfStats:
        """How many envelopes and ciphertext bytes are carried."""
        row = self._db.fetchone(
            "SELECT count(*), coalesce(sum(length(ciphertext)), 0) FROM courier_held"
        )
        assert row is not None  # an aggregate always returns one row
        return ShelfStats(int(row[0]), int(row[1]))


def _row(r: HeldRow) -> tuple[object, ...]:
    sprayed = b"".join(sorted(r.sprayed_to))
    return (
        r.identity, r.recipient_tag, r.expiry_ms, r.ciphertext, r.copies, r.prekey_id,
        r.depositor, r.stored_at, r.expires_at, sprayed,
    )  # fmt: skip


def _held(r: Row) -> HeldRow:
    sprayed = bytes(r[9])
    keys = frozenset(sprayed[i : i + KEY_SIZE] for i in range(0, len(sprayed), KEY_SIZE))
    return HeldRow(
        bytes(r[0]), bytes(r[1]), int(r[2]), bytes(r[3]), int(r[4]),
        None if r[5] is None else int(r[5]), bytes(r[6]), r[7], r[8], keys,
    )  # fmt: skip
