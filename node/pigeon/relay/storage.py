"""Envelope storage of the relay: an interface, and SQLite (WAL) with group commit.

`SqliteStore` runs every statement on one writer thread. Operations that arrive while the
previous transaction is being flushed are committed together in the next one, so a burst of
deposits costs one fsync (`synchronous=FULL` makes each WAL commit durable). A deposit's future
resolves only after its transaction committed. Nothing about depositors (addresses, connection
ids) is stored: a row holds the mailbox key, the envelope id, the ciphertext and the deposit
second, which expiry needs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from pigeon.relay.limits import Quota, quota_refusal
from pigeon.relay.protocol import ErrorCode

_LOGGER = logging.getLogger(__name__)

DB_FILE_NAME: Final = "relay.sqlite3"
SCHEMA_VERSION: Final = 1
MAX_BATCH_OPS: Final = 2_048
CHECKPOINT_INTERVAL_S: Final = 0.5
WAL_SIZE_LIMIT_BYTES: Final = 64 * 1024 * 1024

_SCHEMA_V1: Final = """
CREATE TABLE envelopes (
    seq INTEGER PRIMARY KEY,  -- assigned by the writer, increasing within a process
    mailbox BLOB NOT NULL,
    envelope_id BLOB NOT NULL,
    deposited_s INTEGER NOT NULL,
    ciphertext BLOB NOT NULL,
    UNIQUE (mailbox, envelope_id)
);
CREATE INDEX envelopes_by_mailbox ON envelopes (mailbox, seq);
CREATE INDEX envelopes_by_age ON envelopes (deposited_s);
"""
# Index i holds the script that takes user_version i to i + 1.
_MIGRATIONS: Final = (_SCHEMA_V1,)


class StorageError(Exception):
    """The store could not complete an operation; nothing of it was committed."""


@dataclass(frozen=True, slots=True)
class StoredEnvelope:
    """An envelope held for a mailbox; `seq` orders a mailbox's envelopes by arrival."""

    seq: int
    envelope_id: bytes
    ciphertext: bytes
    deposited_s: int = 0  # the deposit second (the Pigeon app's `ts`)


@dataclass(frozen=True, slots=True)
class DepositResult:
    """Outcome of a deposit: refused with a code, a duplicate of a stored one, or newly stored."""

    refusal: ErrorCode | None = None
    stored: StoredEnvelope | None = None


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counts for metrics (`commits`: transactions since start); no keys."""

    envelopes: int
    bytes: int
    mailboxes: int
    commits: int


InsertListener = Callable[[list[tuple[bytes, "StoredEnvelope"]]], None]
# Watched mailboxes whose new envelopes must be paged from the store (the store could not
# report them); None: any may have changed.
ChangeListener = Callable[[set[bytes] | None], None]
# A mailbox whose reader another process now serves.
ClaimListener = Callable[[bytes], None]


class EnvelopeStore(Protocol):
    """What the relay needs from storage; every write returns only once durable."""

    def set_insert_listener(self, listener: InsertListener) -> None:
        """Call `listener([(mailbox_key, envelope), ...])` on the event loop for new envelopes
        of every watched mailbox (a store may report others too), in `seq` order per mailbox.

        It may run before the transaction commits (readers need not wait for the disk; the
        depositor does), so a listener can see an envelope that a failed commit then drops.
        """

    async def watch(self, mailbox_key: bytes) -> None:
        """A reader of `mailbox_key` is here: report its new envelopes from now on (what was
        committed before this returns is the reader's to page). Calls nest; never raises."""

    async def unwatch(self, mailbox_key: bytes) -> None:
        """One `watch` of `mailbox_key` ended."""

    def set_claim_listener(self, listener: ClaimListener) -> None:
        """Call `listener(mailbox_key)` when a reader claimed a watched mailbox through another
        process sharing the store (see `claim`)."""

    async def claim(self, mailbox_key: bytes) -> None:
        """Tell the other processes sharing the store that a reader now holds `mailbox_key`
        (their readers of it are replaced); never raises."""

    def set_change_listener(self, listener: ChangeListener) -> None:
        """Call `listener(mailbox_keys)` on the event loop when watched mailboxes have new
        envelopes the insert listener does not carry, or `listener(None)` when the store may
        have missed some (their readers then page from the store)."""

    async def deposit(
        self,
        mailbox_key: bytes,
        envelope_id: bytes,
        ciphertext: bytes,
        now_s: int,
        quota: Quota | None = None,
    ) -> DepositResult:
        """Store an envelope unless a quota (`quota`, else the store's) refuses it; a known id is
        a duplicate, not an error."""

    async def pending(
        self, mailbox_key: bytes, after_seq: int, limit: int, oldest_s: int
    ) -> list[StoredEnvelope]:
        """Up to `limit` envelopes of a mailbox with `seq` above `after_seq`, oldest first.

        Envelopes deposited before `oldest_s` are expired: they are skipped even before a purge.
        """

    async def delete(self, mailbox_key: bytes, envelope_ids: tuple[bytes, ...]) -> int:
        """Delete envelopes of one mailbox; unknown ids are ignored; returns how many went."""

    async def purge(self, older_than_s: int, mailbox_prefix: bytes = b"") -> int:
        """Delete every envelope deposited before `older_than_s` whose mailbox key starts with
        `mailbox_prefix`; returns how many went."""

    def stats(self) -> StoreStats:
        """Current counts."""

    def queued_writes(self) -> int:
        """Operations waiting for the writer (back-pressure signal)."""

    def healthy(self) -> bool:
        """False once the store cannot serve operations, or while its last transaction failed."""

    async def aclose(self) -> None:
        """Finish queued operations and close; idempotent."""


_DepositArgs = tuple[bytes, bytes, bytes, int, Quota | None]


@dataclass(slots=True)
class _Op:
    future: asyncio.Future[Any]
    run: Callable[[sqlite3.Connection], Any] | None = None
    deposit: _DepositArgs | None = None  # deposits are inserted in groups


_INSERT: Final = (
    "INSERT INTO envelopes (seq, mailbox, envelope_id, deposited_s, ciphertext)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (mailbox, envelope_id) DO NOTHING"
)


class SqliteStore:
    """`EnvelopeStore` in one SQLite file in WAL mode, written by one group-committing thread."""

    def __init__(self, path: Path, quota: Quota) -> None:
        self._path = path
        self._quota = quota
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._queued = 0
        self._usage: dict[bytes, list[int]] = {}  # mailbox -> [count, bytes]; writer thread only
        self._total_count = 0
        self._total_bytes = 0
        self._last_seq = 0  # writer thread only
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._failed = False
        self._last_commit_failed = False  # cleared by the next transaction that commits
        self._inserted: list[tuple[bytes, StoredEnvelope]] = []  # writer thread only
        self._listener: InsertListener | None = None
        self.commits = 0
        self.synchronous = -1  # PRAGMA synchronous as the connection reports it (2 = FULL)

    @classmethod
    async def open(cls, data_dir: Path, quota: Quota) -> SqliteStore:
        """Open (creating or migrating) the store in `data_dir`; raises StorageError."""
        store = cls(data_dir / DB_FILE_NAME, quota)
        store._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = store._loop.create_future()
        store._thread = threading.Thread(
            target=store._run, args=(ready,), name="relay-store-writer", daemon=True
        )
        store._thread.start()
        await ready
        return store

    async def deposit(
        self,
        mailbox_key: bytes,
        envelope_id: bytes,
        ciphertext: bytes,
        now_s: int,
        quota: Quota | None = None,
    ) -> DepositResult:
        """See `EnvelopeStore.deposit`."""
        result: DepositResult = await self._submit(
            deposit=(mailbox_key, envelope_id, ciphertext, now_s, quota)
        )
        return result

    async def pending(
        self, mailbox_key: bytes, after_seq: int, limit: int, oldest_s: int
    ) -> list[StoredEnvelope]:
        """See `EnvelopeStore.pending`."""
        rows = await self._submit(
            run=lambda db: db.execute(
                "SELECT seq, envelope_id, ciphertext, deposited_s FROM envelopes"
                " WHERE mailbox = ? AND seq > ? AND deposited_s >= ? ORDER BY seq LIMIT ?",
                (mailbox_key, after_seq, oldest_s, limit),
            ).fetchall()
        )
        return [StoredEnvelope(seq, bytes(eid), bytes(ct), ts) for seq, eid, ct, ts in rows]

    async def delete(self, mailbox_key: bytes, envelope_ids: tuple[bytes, ...]) -> int:
        """See `EnvelopeStore.delete`."""
        deleted: int = await self._submit(
            run=lambda db: self._delete(db, mailbox_key, envelope_ids)
        )
        return deleted

    async def purge(self, older_than_s: int, mailbox_prefix: bytes = b"") -> int:
        """See `EnvelopeStore.purge`."""
        purged: int = await self._submit(
            run=lambda db: self._purge(db, older_than_s, mailbox_prefix)
        )
        return purged

    def set_insert_listener(self, listener: InsertListener) -> None:
        """See `EnvelopeStore.set_insert_listener`."""
        self._listener = listener

    def set_change_listener(self, listener: ChangeListener) -> None:
        """See `EnvelopeStore.set_change_listener`: never called, as one relay process owns the
        file (its writer thread numbers the envelopes)."""

    async def watch(self, mailbox_key: bytes) -> None:
        """See `EnvelopeStore.watch`: every mailbox is reported, as every writer is here."""

    async def unwatch(self, mailbox_key: bytes) -> None:
        """See `EnvelopeStore.unwatch`."""

    def set_claim_listener(self, listener: ClaimListener) -> None:
        """See `EnvelopeStore.set_claim_listener`: never called (no other process)."""

    async def claim(self, mailbox_key: bytes) -> None:
        """See `EnvelopeStore.claim`: nobody else to tell."""

    def stats(self) -> StoreStats:
        """See `EnvelopeStore.stats`."""
        return StoreStats(self._total_count, self._total_bytes, len(self._usage), self.commits)

    def queued_writes(self) -> int:
        """See `EnvelopeStore.queued_writes`."""
        return self._queued

    def healthy(self) -> bool:
        """See `EnvelopeStore.healthy`."""
        return self._usable() and not self._last_commit_failed

    def _usable(self) -> bool:
        alive = self._thread is not None and self._thread.is_alive()
        return alive and not self._closed and not self._failed

    async def aclose(self) -> None:
        """See `EnvelopeStore.aclose`."""
        if self._closed or self._thread is None:
            return
        self._closed = True
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    async def _submit(
        self,
        run: Callable[[sqlite3.Connection], Any] | None = None,
        deposit: _DepositArgs | None = None,
    ) -> Any:
        if not self._usable():  # a failed commit does not stop the next one from trying
            raise StorageError("the store is closed or failed")
        assert self._loop is not None
        op = _Op(self._loop.create_future(), run, deposit)
        self._queued += 1
        self._queue.put(op)
        return await op.future

    # --- writer thread -------------------------------------------------------------------

    def _run(self, ready: asyncio.Future[None]) -> None:
        try:
            db = self._connect()
        except (sqlite3.Error, OSError) as exc:
            self._failed = True
            self._call_soon(_settle, [(ready, StorageError(f"cannot open the store: {exc}"))])
            return
        self._call_soon(_settle, [(ready, None)])
        checkpointer = _Checkpointer(self._path)
        try:
            while (batch := self._next_batch()) is not None:
                self._commit(db, batch)
        finally:
            checkpointer.stop()
            db.close()

    def _connect(self) -> sqlite3.Connection:
        self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=True)
        self._path.chmod(0o600)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA wal_autocheckpoint = 0")  # _Checkpointer does it off the commit path
        db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
        (self.synchronous,) = db.execute("PRAGMA synchronous").fetchone()
        _migrate(db)
        self._reload_usage(db)
        (last_seq,) = db.execute("SELECT max(seq) FROM envelopes").fetchone()
        self._last_seq = last_seq or 0
        return db

    def _next_batch(self) -> list[_Op] | None:
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < MAX_BATCH_OPS:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                break
            if op is None:
                self._queue.put(None)  # finish this batch, then stop
                break
            batch.append(op)
        return batch

    def _commit(self, db: sqlite3.Connection, batch: list[_Op]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], object]] = []
        try:
            changes = db.total_changes
            db.execute("BEGIN IMMEDIATE")
            outcomes = self._run_ops(db, batch)
            if self._inserted and self._listener is not None:
                self._call_soon(self._listener, self._inserted)
            self._inserted = []
            changed = db.total_changes != changes
            if changed and on_read_only_file_system(self._path.parent):
                raise StorageError("the file system is read-only")
            db.execute("COMMIT")
            # ext4 turned read-only (a failing card) takes writes to open files into memory and
            # answers fsync with success: a COMMIT that returned then is not a stored deposit.
            if changed and on_read_only_file_system(self._path.parent):
                raise StorageError("the file system turned read-only during the commit")
            self.commits += 1
            self._last_commit_failed = False
        except Exception as exc:  # the writer must answer every waiter, whatever went wrong
            _LOGGER.error("store transaction failed: %s", type(exc).__name__)
            self._last_commit_failed = True
            self._inserted = []
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._reload_usage(db)
            error = StorageError("the store transaction failed")
            outcomes = [(op.future, error) for op in batch]
        self._call_soon(self._finish_batch, outcomes)

    def _finish_batch(self, outcomes: list[tuple[asyncio.Future[Any], object]]) -> None:
        self._queued -= len(outcomes)
        _settle(outcomes)

    def _call_soon(self, callback: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            _LOGGER.debug("event loop closed before the store could answer")

    def _run_ops(
        self, db: sqlite3.Connection, batch: list[_Op]
    ) -> list[tuple[asyncio.Future[Any], object]]:
        outcomes: list[tuple[asyncio.Future[Any], object]] = []
        deposits: list[_Op] = []
        for op in batch:
            if op.deposit is not None:
                deposits.append(op)
                continue
            if deposits:
                outcomes += self._deposit_group(db, deposits)
                deposits = []
            assert op.run is not None
            outcomes.append((op.future, op.run(db)))
        if deposits:
            outcomes += self._deposit_group(db, deposits)
        return outcomes

    def _deposit_group(
        self, db: sqlite3.Connection, ops: list[_Op]
    ) -> list[tuple[asyncio.Future[Any], DepositResult]]:
        """Insert consecutive deposits with one executemany; quotas are checked one by one."""
        rows: list[tuple[int, bytes, bytes, int, bytes]] = []
        planned: list[tuple[asyncio.Future[Any], DepositResult | int]] = []
        for op in ops:
            assert op.deposit is not None
            mailbox_key, envelope_id, ciphertext, now_s, quota = op.deposit
            usage = self._usage.get(mailbox_key, (0, 0))
            size = len(ciphertext)
            refusal = quota_refusal(
                quota or self._quota, usage[0], usage[1], self._total_bytes, size
            )
            if refusal is not None:
                planned.append((op.future, self._refused(db, mailbox_key, envelope_id, refusal)))
                continue
            self._last_seq += 1
            self._count(mailbox_key, 1, size)
            planned.append((op.future, len(rows)))
            rows.append((self._last_seq, mailbox_key, envelope_id, now_s, ciphertext))
        before = db.total_changes
        db.executemany(_INSERT, rows)
        present: set[int] | None = None
        if rows and db.total_changes - before != len(rows):  # some were already stored
            present = {
                seq
                for (seq,) in db.execute(
                    "SELECT seq FROM envelopes WHERE seq BETWEEN ? AND ?", (rows[0][0], rows[-1][0])
                )
            }
        return [(future, self._settle_row(plan, rows, present)) for future, plan in planned]

    def _refused(
        self, db: sqlite3.Connection, mailbox_key: bytes, envelope_id: bytes, refusal: ErrorCode
    ) -> DepositResult:
        known = db.execute(
            "SELECT 1 FROM envelopes WHERE mailbox = ? AND envelope_id = ?",
            (mailbox_key, envelope_id),
        ).fetchone()
        return DepositResult() if known else DepositResult(refusal=refusal)

    def _settle_row(
        self,
        planned: DepositResult | int,
        rows: list[tuple[int, bytes, bytes, int, bytes]],
        present: set[int] | None,
    ) -> DepositResult:
        if isinstance(planned, DepositResult):
            return planned
        seq, mailbox_key, envelope_id, deposited_s, ciphertext = rows[planned]
        if present is not None and seq not in present:
            self._count(mailbox_key, -1, -len(ciphertext))
            return DepositResult()
        stored = StoredEnvelope(seq, envelope_id, ciphertext, deposited_s)
        self._inserted.append((mailbox_key, stored))
        return DepositResult(stored=stored)

    def _delete(
        self, db: sqlite3.Connection, mailbox_key: bytes, envelope_ids: tuple[bytes, ...]
    ) -> int:
        deleted = 0
        for envelope_id in envelope_ids:
            row = db.execute(
                "DELETE FROM envelopes WHERE mailbox = ? AND envelope_id = ?"
                " RETURNING length(ciphertext)",
                (mailbox_key, envelope_id),
            ).fetchone()
            if row is not None:
                self._count(mailbox_key, -1, -row[0])
                deleted += 1
        return deleted

    def _purge(self, db: sqlite3.Connection, older_than_s: int, mailbox_prefix: bytes) -> int:
        rows = db.execute(
            "DELETE FROM envelopes WHERE deposited_s < ? AND substr(mailbox, 1, ?) = ?"
            " RETURNING mailbox, length(ciphertext)",
            (older_than_s, len(mailbox_prefix), mailbox_prefix),
        ).fetchall()
        for mailbox_key, size in rows:
            self._count(bytes(mailbox_key), -1, -size)
        return len(rows)

    def _count(self, mailbox_key: bytes, count: int, size: int) -> None:
        usage = self._usage.setdefault(mailbox_key, [0, 0])
        usage[0] += count
        usage[1] += size
        if usage[0] <= 0:
            del self._usage[mailbox_key]
        self._total_count += count
        self._total_bytes += size

    def _reload_usage(self, db: sqlite3.Connection) -> None:
        rows = db.execute(
            "SELECT mailbox, count(*), sum(length(ciphertext)) FROM envelopes GROUP BY mailbox"
        ).fetchall()
        self._usage = {bytes(key): [count, size] for key, count, size in rows}
        self._total_count = sum(usage[0] for usage in self._usage.values())
        self._total_bytes = sum(usage[1] for usage in self._usage.values())


class _Checkpointer:
    """Copies the WAL into the database file from its own thread and connection.

    Automatic checkpoints would run inside a deposit's COMMIT and add a database fsync to its
    latency; a PASSIVE checkpoint here runs beside the writer without blocking it.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="relay-store-checkpoint", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current checkpoint, if any."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self._path, isolation_level=None)
            db.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            _LOGGER.error("store checkpointer cannot start: %s", exc)
            return
        try:
            while not self._stop.wait(CHECKPOINT_INTERVAL_S):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # busy or I/O trouble: the next round tries again
                    _LOGGER.warning("store checkpoint failed: %s", exc)
        finally:
            db.close()


def _migrate(db: sqlite3.Connection) -> None:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(f"store schema {version} is newer than this relay")
    for target in range(version + 1, SCHEMA_VERSION + 1):
        script = _MIGRATIONS[target - 1]
        db.executescript(f"BEGIN; {script} PRAGMA user_version = {target}; COMMIT;")


def on_read_only_file_system(directory: Path) -> bool:
    """Whether the file system holding `directory` is mounted read-only (statvfs)."""
    return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)


def _settle(outcomes: list[tuple[asyncio.Future[Any], object]]) -> None:
    for future, outcome in outcomes:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
