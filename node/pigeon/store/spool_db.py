"""The spool: envelopes held for others (and for the locked owner) plus the mesh seen-cache.

Only opaque ciphertext, routing tags and timing live here. The router works in batches: it hands
`Spool.apply` a list of operations (store, drop, expire, save the seen-cache) that commit in one
durable transaction. Envelopes for the owner that arrive while the vault is locked are stored
with `held_for_owner=True`: they never expire and are never offered to others, and the messenger
drops them only after the vault has recorded them (so a crash in between replays, never loses).
Times are epoch seconds on the caller's clock.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pigeon.store.courier_db import CourierShelf
from pigeon.store.db import Database, Row, limit_clause
from pigeon.store.drop_ledger import DropLedger
from pigeon.store.errors import CorruptStore, WrongKey
from pigeon.store.keys import DatabaseKey
from pigeon.store.migrations import SPOOL_SCHEMA

_LOGGER = logging.getLogger(__name__)

MAX_TAGS_PER_QUERY: Final = 10_000
_COLUMNS: Final = (
    "packet_id, recipient_tag, depositor, priority, expires_at, receipt_hash, packet,"
    " stored_at, held_for_owner"
)
_INSERT: Final = f"INSERT OR IGNORE INTO envelopes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_DELETE: Final = "DELETE FROM envelopes WHERE packet_id = ?"
_EXPIRE: Final = "DELETE FROM envelopes WHERE expires_at <= ? AND held_for_owner = 0"
_SAVE_SEEN: Final = "INSERT OR REPLACE INTO seen_cache (slot, blob, saved_at) VALUES (1, ?, ?)"


@dataclass(frozen=True, slots=True)
class SpooledEnvelope:
    """An encoded mesh packet held for its recipient, with what the router sorts it by."""

    packet_id: bytes
    recipient_tag: bytes
    depositor: str
    priority: int
    expires_at: float
    receipt_hash: bytes | None
    packet: bytes = field(repr=False)
    stored_at: float
    held_for_owner: bool = False


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """An envelope's bookkeeping without its bytes (to rebuild the router's view at start)."""

    packet_id: bytes
    recipient_tag: bytes
    depositor: str
    priority: int
    expires_at: float
    size_bytes: int
    stored_at: float
    held_for_owner: bool


@dataclass(frozen=True, slots=True)
class StoreEnvelope:
    """Keep `envelope`; a packet id already stored is counted as a duplicate and left alone."""

    envelope: SpooledEnvelope


@dataclass(frozen=True, slots=True)
class DropEnvelope:
    """Forget the envelope `packet_id` (delivered, evicted, or processed by the owner)."""

    packet_id: bytes


@dataclass(frozen=True, slots=True)
class ExpireEnvelopes:
    """Forget every envelope for others whose `expires_at` is at or before `now`."""

    now: float


@dataclass(frozen=True, slots=True)
class SaveSeenCache:
    """Replace the persisted seen-cache with `blob` (the mesh's own encoding)."""

    blob: bytes = field(repr=False)
    saved_at: float


SpoolOp = StoreEnvelope | DropEnvelope | ExpireEnvelopes | SaveSeenCache


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What one batch did."""

    stored: int = 0
    duplicates: int = 0
    dropped: int = 0
    expired: int = 0


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """Totals for quotas and the status screen."""

    envelopes: int
    packet_bytes: int
    held_for_owner: int


class Spool:
    """The spool database. Raises the room's errors: CorruptStore, DiskFull, Locked, StoreError."""

    def __init__(self, database: Database) -> None:
        self._db = database

    @classmethod
    def open(cls, path: Path, key: DatabaseKey, *, max_size_bytes: int | None = None) -> Spool:
        """Open or create the spool at `path` with the device key."""
        try:
            database = Database.open(
                path, key, SPOOL_SCHEMA, create=True, max_size_bytes=max_size_bytes
            )
        except WrongKey as exc:
            raise CorruptStore(
                f"{path}: does not open with the device key: the spool is damaged or foreign,"
                " or the device key file was replaced"
            ) from exc
        return cls(database)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._db.path

    def apply(self, ops: Iterable[SpoolOp]) -> ApplyResult:
        """Run `ops` in order in one durable transaction: all of them happen, or none."""
        stored = duplicates = dropped = expired = 0
        with self._db.transaction() as tx:
            for _, run in itertools.groupby(ops, key=type):  # runs of one kind go as one call
                group = list(run)
                inserts = [_row(op.envelope) for op in group if isinstance(op, StoreEnvelope)]
                if inserts:
                    changed = tx.executemany(_INSERT, inserts)
                    stored += changed
                    duplicates += len(inserts) - changed
                drops = [(op.packet_id,) for op in group if isinstance(op, DropEnvelope)]
                if drops:
                    dropped += tx.executemany(_DELETE, drops)
                for op in group:
                    if isinstance(op, ExpireEnvelopes):
                        expired += tx.execute(_EXPIRE, (op.now,))
                    elif isinstance(op, SaveSeenCache):
                        tx.execute(_SAVE_SEEN, (op.blob, op.saved_at))
        return ApplyResult(stored, duplicates, dropped, expired)

    def envelope(self, packet_id: bytes) -> SpooledEnvelope | None:
        """The stored envelope `packet_id`, or None."""
        row = self._db.fetchone(
            f"SELECT {_COLUMNS} FROM envelopes WHERE packet_id = ?", (packet_id,)
        )
        return _envelope(row) if row else None

    def by_tags(
        self, tags: Collection[bytes], now: float, limit: int = 100
    ) -> list[SpooledEnvelope]:
        """Unexpired envelopes for others addressed to `tags`: highest priority, oldest first."""
        if not tags:
            return []
        if len(tags) > MAX_TAGS_PER_QUERY:
            raise ValueError(f"at most {MAX_TAGS_PER_QUERY} tags per query")
        marks = ", ".join("?" * len(tags))
        rows = self._db.fetchall(
            f"SELECT {_COLUMNS} FROM envelopes WHERE recipient_tag IN ({marks})"
            " AND held_for_owner = 0 AND expires_at > ?"
            f" ORDER BY priority DESC, stored_at, rowid {limit_clause(limit)}",
            (*tags, now),
        )
        return [_envelope(row) for row in rows]

    def owner_held(self, limit: int = 100) -> list[SpooledEnvelope]:
        """Envelopes held for the owner while the vault was locked, oldest first."""
        rows = self._db.fetchall(
            f"SELECT {_COLUMNS} FROM envelopes WHERE held_for_owner = 1"
            f" ORDER BY stored_at, rowid {limit_clause(limit)}",
        )
        return [_envelope(row) for row in rows]

    def entries(self) -> list[SpoolEntry]:
        """Bookkeeping of every stored envelope, oldest first."""
        rows = self._db.fetchall(
            "SELECT packet_id, recipient_tag, depositor, priority, expires_at, length(packet),"
            " stored_at, held_for_owner FROM envelopes ORDER BY stored_at, rowid"
        )
        return [
            SpoolEntry(
                bytes(r[0]), bytes(r[1]), str(r[2]), int(r[3]), r[4], int(r[5]), r[6], bool(r[7])
            )
            for r in rows
        ]

    def stats(self) -> SpoolStats:
        """How many envelopes and packet bytes are stored, and how many wait for the owner."""
        row = self._db.fetchone(
            "SELECT count(*), coalesce(sum(length(packet)), 0),"
            " coalesce(sum(held_for_owner), 0) FROM envelopes"
        )
        assert row is not None  # an aggregate always returns one row
        return SpoolStats(int(row[0]), int(row[1]), int(row[2]))

    def seen_cache(self) -> bytes | None:
        """The last saved seen-cache blob, or None."""
        row = self._db.fetchone("SELECT blob FROM seen_cache WHERE slot = 1")
        return bytes(row[0]) if row else None

    def node_secret(self, name: str) -> bytes | None:
        """The node's own secret `name` (never the owner's), or None."""
        row = self._db.fetchone("SELECT value FROM node_secrets WHERE name = ?", (name,))
        return bytes(row[0]) if row else None

    def put_node_secret(self, name: str, value: bytes, at: float) -> None:
        """Store or replace the node's secret `name`, durably."""
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO node_secrets (name, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
                " updated_at = excluded.updated_at",
                (name, value, at),
            )

    def courier_shelf(self) -> CourierShelf:
        """The bitchat courier's envelopes, in this spool's database."""
        return CourierShelf(self._db)

    def drop_ledger(self) -> DropLedger:
        """The gateway's record of courier drops parked and handed over, in this database."""
        return DropLedger(self._db)

    def integrity_check(self) -> list[str]:
        """SQLite's integrity_check rows: ["ok"] when the database is sound."""
        return self._db.integrity_check()

    def close(self) -> None:
        """Close the database; idempotent."""
        self._db.close()


def _row(e: SpooledEnvelope) -> tuple[object, ...]:
    return (
        e.packet_id,
        e.recipient_tag,
        e.depositor,
        e.priority,
        e.expires_at,
        e.receipt_hash,
        e.packet,
        e.stored_at,
        int(e.held_for_owner),
    )


def _envelope(row: Row) -> SpooledEnvelope:
    return SpooledEnvelope(
        packet_id=bytes(row[0]),
        recipient_tag=bytes(row[1]),
        depositor=str(row[2]),
        priority=int(row[3]),
        expires_at=row[4],
        receipt_hash=None if row[5] is None else bytes(row[5]),
        packet=bytes(row[6]),
        stored_at=row[7],
        held_for_owner=bool(row[8]),
    )
