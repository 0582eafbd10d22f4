"""Envelope storage on PostgreSQL, shared by several relay processes (the only asyncpg module).

Deposits queued while the previous batch commits go to the database together as one call of
`relay_deposit` (one transaction, one WAL flush), which enforces quotas for every process at
once; a deposit's future resolves after that transaction committed. Acks are batched the same
way by a writer of their own, so an ack's commit never holds up a deposit's. Pages of a mailbox
take their own pooled connection. A separate connection LISTENs on the
channel of each mailbox a reader of this process watches; `relay_deposit` NOTIFYs it with the
new envelope, so live envelopes reach readers, on any process, in commit order. The listening
connection reconnects by itself; after a gap every local reader pages from the database.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import asyncpg

from pigeon.relay import pg_schema
from pigeon.relay.limits import Quota
from pigeon.relay.protocol import ErrorCode
from pigeon.relay.storage import (
    ChangeListener,
    ClaimListener,
    DepositResult,
    InsertListener,
    StorageError,
    StoredEnvelope,
    StoreStats,
)

_LOGGER = logging.getLogger(__name__)

if TYPE_CHECKING:  # the driver's classes are generic in its stubs only
    _Connection = asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]

MAX_BATCH_OPS: Final = 2_048
POOL_MAX_SIZE: Final = 8
CONNECT_TIMEOUT_S: Final = 5.0
STATS_INTERVAL_S: Final = 1.0
# Every this many stats rounds, what acks freed is folded into the counts in the background
# (deposits fold their own mailboxes, and usage is reported right meanwhile): a fold holds the
# rows it folds until its commit, so a deposit into one of them waits for it.
FOLD_EVERY_ROUNDS: Final = 10
LISTEN_RETRY_S: Final = (0.1, 0.2, 0.5, 1.0, 2.0)  # back-off while the database is away

_REFUSALS: Final = {
    pg_schema.OUTCOME_MAILBOX_FULL: ErrorCode.MAILBOX_FULL,
    pg_schema.OUTCOME_MAILBOX_BYTES_FULL: ErrorCode.MAILBOX_BYTES_FULL,
    pg_schema.OUTCOME_RELAY_FULL: ErrorCode.RELAY_FULL,
}
_DEPOSIT: Final = "SELECT * FROM relay_deposit($1, $2, $3, $4, $5, $6, $7, $8)"
# relay_deposit without waiting found its shard out of room and other deposits holding the rest.
_SHARDS_BUSY: Final = "55P03"  # lock_not_available


class _ShardsBusy(Exception):
    """The statement must run again, waiting for every shard (see `_SHARDS_BUSY`)."""


# Everything the driver or the socket raises when the database fails or goes away.
_DATABASE_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


@dataclass(slots=True)
class _Delete:
    future: asyncio.Future[int]
    mailbox_key: bytes
    envelope_ids: tuple[bytes, ...]


@dataclass(slots=True)
class _Deposit:
    future: asyncio.Future[DepositResult]
    mailbox_key: bytes
    envelope_id: bytes
    ciphertext: bytes
    now_s: int
    quota: Quota


class PgStore:
    """`EnvelopeStore` in a PostgreSQL database that several relay processes share."""

    def __init__(self, dsn: str, quota: Quota) -> None:
        self._dsn = dsn
        self._quota = quota
        self._pool: asyncpg.Pool | None = None
        self._queue: list[_Deposit] = []
        self._deletes: list[_Delete] = []
        self._wakeup = asyncio.Event()
        self._delete_wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: InsertListener | None = None
        self._changes: ChangeListener | None = None
        self._claims: ClaimListener | None = None
        self._origin = secrets.token_hex(8)  # tells our own claims from other processes'
        self._stats = StoreStats(0, 0, 0, 0)
        self._closed = False
        self._last_failed = False
        self._watched: dict[bytes, int] = {}  # mailbox -> local readers
        self._listen_db: asyncpg.Connection[Any] | None = None
        self._listening = asyncio.Event()  # set once the listener first runs
        self._listen_lock = asyncio.Lock()
        self._inbox: asyncio.Queue[tuple[bytes, StoredEnvelope | int]] = asyncio.Queue()
        self.commits = 0

    @classmethod
    async def open(cls, dsn: str, quota: Quota) -> PgStore:
        """Connect, migrate the schema and start the writer; raises StorageError."""
        store = cls(dsn, quota)
        try:
            store._pool = await asyncpg.create_pool(
                dsn, min_size=1, max_size=POOL_MAX_SIZE, timeout=CONNECT_TIMEOUT_S
            )
            async with store._pool.acquire() as db:
                await _migrate(db)
            await store._refresh_stats()
        except BaseException as exc:
            if store._pool is not None:
                await store._pool.close()
            if isinstance(exc, StorageError):
                raise
            if isinstance(exc, (*_DATABASE_ERRORS, ValueError)):  # ValueError: a malformed URL
                raise StorageError(f"cannot open the store: {type(exc).__name__}") from exc
            raise
        store._tasks = [
            asyncio.create_task(store._write_loop(), name="relay-pg-writer"),
            asyncio.create_task(store._delete_loop(), name="relay-pg-deleter"),
            asyncio.create_task(store._listen_loop(), name="relay-pg-listener"),
            asyncio.create_task(store._stats_loop(), name="relay-pg-stats"),
            asyncio.create_task(store._deliver_loop(), name="relay-pg-deliver"),
        ]
        # A store that is open hears every deposit into a mailbox watched from then on: without
        # this wait the first watches of a fresh store raced the listener's connection.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await store._listening.wait()
        return store

    # --- EnvelopeStore -------------------------------------------------------------------

    def set_insert_listener(self, listener: InsertListener) -> None:
        """See `EnvelopeStore.set_insert_listener` (called after the commit here)."""
        self._listener = listener

    def set_change_listener(self, listener: ChangeListener) -> None:
        """See `EnvelopeStore.set_change_listener`."""
        self._changes = listener

    def set_claim_listener(self, listener: ClaimListener) -> None:
        """See `EnvelopeStore.set_claim_listener`."""
        self._claims = listener

    async def claim(self, mailbox_key: bytes) -> None:
        """See `EnvelopeStore.claim`: a notification on the mailbox's channel."""
        payload = f"r {mailbox_key.hex()} {self._origin}"
        try:
            await self._call(
                "execute", "SELECT pg_notify($1, $2)", pg_schema.channel(mailbox_key), payload
            )
        except StorageError:
            _LOGGER.warning("could not tell the other relay processes of a new reader")

    async def deposit(
        self,
        mailbox_key: bytes,
        envelope_id: bytes,
        ciphertext: bytes,
        now_s: int,
        quota: Quota | None = None,
    ) -> DepositResult:
        """See `EnvelopeStore.deposit`."""
        self._check_open()
        future: asyncio.Future[DepositResult] = asyncio.get_running_loop().create_future()
        self._queue.append(
            _Deposit(future, mailbox_key, envelope_id, ciphertext, now_s, quota or self._quota)
        )
        self._wakeup.set()
        return await future

    async def pending(
        self, mailbox_key: bytes, after_seq: int, limit: int, oldest_s: int
    ) -> list[StoredEnvelope]:
        """See `EnvelopeStore.pending`."""
        self._check_open()
        rows = await self._call(
            "fetch",
            "SELECT seq, envelope_id, ciphertext, deposited_s FROM relay_envelopes"
            " WHERE mailbox = $1 AND seq > $2 AND deposited_s >= $3 ORDER BY seq LIMIT $4",
            mailbox_key,
            after_seq,
            oldest_s,
            limit,
        )
        return [StoredEnvelope(r[0], bytes(r[1]), bytes(r[2]), r[3]) for r in rows]

    async def delete(self, mailbox_key: bytes, envelope_ids: tuple[bytes, ...]) -> int:
        """See `EnvelopeStore.delete`."""
        self._check_open()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._deletes.append(_Delete(future, mailbox_key, envelope_ids))
        self._delete_wakeup.set()
        return await future

    async def purge(self, older_than_s: int, mailbox_prefix: bytes = b"") -> int:
        """See `EnvelopeStore.purge`; returns 0 while another process is purging."""
        self._check_open()
        row = await self._call(
            "fetchrow", "SELECT * FROM relay_purge($1, $2)", older_than_s, mailbox_prefix
        )
        self._set_stats(row[1:])
        purged: int = row[0]
        return purged

    def stats(self) -> StoreStats:
        """See `EnvelopeStore.stats` (counts of the whole database, at most a second old)."""
        return StoreStats(
            self._stats.envelopes, self._stats.bytes, self._stats.mailboxes, self.commits
        )

    def queued_writes(self) -> int:
        """See `EnvelopeStore.queued_writes`."""
        return len(self._queue) + len(self._deletes)

    def healthy(self) -> bool:
        """See `EnvelopeStore.healthy`."""
        return not self._closed and not self._last_failed

    async def aclose(self) -> None:
        """See `EnvelopeStore.aclose`: the queued deposits are written first."""
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        self._delete_wakeup.set()
        writers, others = self._tasks[:2], self._tasks[2:]
        for task in others:
            task.cancel()
        await asyncio.gather(*writers, *others, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()

    # --- writer --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the store is closed")

    async def _write_loop(self) -> None:
        """Write the deposits that queued up while the previous batch committed, in one call."""
        while self._queue or not self._closed:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch, self._queue = self._queue[:MAX_BATCH_OPS], self._queue[MAX_BATCH_OPS:]
            await self._commit(batch)

    async def _delete_loop(self) -> None:
        """Delete what the acks that queued up meanwhile name, in one call, on a connection of
        its own: deletions take no lock a deposit waits for, so they run beside deposits."""
        while self._deletes or not self._closed:
            if not self._deletes:
                self._delete_wakeup.clear()
                await self._delete_wakeup.wait()
                continue
            deletes, self._deletes = self._deletes[:MAX_BATCH_OPS], self._deletes[MAX_BATCH_OPS:]
            await self._delete(deletes)

    async def _delete(self, deletes: list[_Delete]) -> None:
        named = [(n, d.mailbox_key, i) for n, d in enumerate(deletes, 1) for i in d.envelope_ids]
        try:
            row = await self._call(
                "fetchrow",
                "SELECT * FROM relay_delete($1, $2, $3, $4)",
                [mailbox_key for _, mailbox_key, _ in named],
                [envelope_id for _, _, envelope_id in named],
                [ack for ack, _, _ in named],
                len(deletes),
            )
        except StorageError as exc:
            _fail(deletes, exc)
            return
        self.commits += 1
        self._set_stats(row[1:])
        for delete, gone in zip(deletes, row[0], strict=True):
            if not delete.future.done():
                delete.future.set_result(gone)

    async def _commit(self, batch: list[_Deposit]) -> None:
        args = (
            [d.mailbox_key for d in batch],
            [d.envelope_id for d in batch],
            [d.ciphertext for d in batch],
            [d.now_s for d in batch],
            [d.quota.mailbox_max_envelopes for d in batch],
            [d.quota.mailbox_max_bytes for d in batch],
            [d.quota.relay_max_bytes for d in batch],
        )
        try:
            try:
                rows = await self._call("fetch", _DEPOSIT, *args, False, retry_on=_SHARDS_BUSY)
            except _ShardsBusy:  # its shard was out of room and others held the rest: wait
                rows = await self._call("fetch", _DEPOSIT, *args, True)
        except StorageError as exc:
            _fail(batch, exc)
            return
        self.commits += 1
        self._set_stats(rows[0][2:])
        # New envelopes reach readers, ours too, by notification: one stream in commit order.
        for deposit, row in zip(batch, rows, strict=True):
            if not deposit.future.done():
                deposit.future.set_result(self._result(deposit, row[0], row[1]))

    @staticmethod
    def _result(deposit: _Deposit, outcome: int, seq: int | None) -> DepositResult:
        if outcome == pg_schema.OUTCOME_STORED and seq is not None:
            stored = StoredEnvelope(seq, deposit.envelope_id, deposit.ciphertext, deposit.now_s)
            return DepositResult(stored=stored)
        if outcome == pg_schema.OUTCOME_DUPLICATE:
            return DepositResult()
        return DepositResult(refusal=_REFUSALS[outcome])

    async def _call(self, method: str, query: str, *args: Any, retry_on: str | None = None) -> Any:
        """Run one statement (its own transaction) on a pooled connection; raises StorageError,
        or _ShardsBusy for an error of SQLSTATE `retry_on`. The writers drain their queues
        through here while the store closes."""
        assert self._pool is not None
        try:
            async with self._pool.acquire(timeout=CONNECT_TIMEOUT_S) as db:
                result = await getattr(db, method)(query, *args)
        except asyncpg.PostgresError as exc:
            if retry_on is not None and exc.sqlstate == retry_on:
                raise _ShardsBusy from exc
            self._last_failed = True
            _LOGGER.error("store statement failed: %s", type(exc).__name__)
            raise StorageError("the store statement failed") from exc
        except _DATABASE_ERRORS as exc:
            self._last_failed = True
            _LOGGER.error("store statement failed: %s", type(exc).__name__)
            raise StorageError("the store statement failed") from exc
        self._last_failed = False
        return result

    # --- readers' notifications ---------------------------------------------------------

    async def watch(self, mailbox_key: bytes) -> None:
        """See `EnvelopeStore.watch`: LISTEN on the mailbox's channel (again after a reconnect)."""
        count = self._watched.get(mailbox_key, 0)
        self._watched[mailbox_key] = count + 1
        if count == 0:
            await self._on_listener("add_listener", mailbox_key)

    async def unwatch(self, mailbox_key: bytes) -> None:
        """See `EnvelopeStore.unwatch`."""
        count = self._watched.pop(mailbox_key, 0) - 1
        if count > 0:
            self._watched[mailbox_key] = count
        elif count == 0:
            await self._on_listener("remove_listener", mailbox_key)

    async def _on_listener(self, method: str, mailbox_key: bytes) -> None:
        async with self._listen_lock:  # one operation at a time on the listening connection
            db = self._listen_db
            if db is None:
                return  # not connected: the reconnect LISTENs on every watched mailbox
            try:
                if method == "add_listener":
                    await _listen_on(db, mailbox_key, self._on_notify)
                else:
                    await db.execute(
                        "DELETE FROM relay_watchers WHERE mailbox = $1 AND pid = pg_backend_pid()",
                        mailbox_key,
                    )
                    await db.remove_listener(pg_schema.channel(mailbox_key), self._on_notify)
            except _DATABASE_ERRORS as exc:  # the connection is going: the reconnect catches up
                _LOGGER.warning("cannot change what the store listens to: %s", type(exc).__name__)

    @property
    def listening(self) -> bool:
        """True while the store hears deposits into the watched mailboxes."""
        return self._listen_db is not None

    async def _listen_loop(self) -> None:
        failures = 0
        while True:
            try:
                db = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_S)
            except _DATABASE_ERRORS as exc:
                _LOGGER.warning("cannot listen for deposits: %s", type(exc).__name__)
                await asyncio.sleep(LISTEN_RETRY_S[min(failures, len(LISTEN_RETRY_S) - 1)])
                failures += 1
                continue
            failures = 0
            try:
                await self._listen(db)
            except _DATABASE_ERRORS as exc:
                _LOGGER.warning("lost the deposit listener: %s", type(exc).__name__)
            finally:
                self._listen_db = None
                with contextlib.suppress(*_DATABASE_ERRORS):
                    await db.close(timeout=1.0)

    async def _listen(self, db: asyncpg.Connection[Any]) -> None:
        lost = asyncio.Event()
        db.add_termination_listener(lambda _db: lost.set())
        async with self._listen_lock:
            for mailbox_key in list(self._watched):
                await _listen_on(db, mailbox_key, self._on_notify)
            self._listen_db = db
        self._listening.set()
        if self._changes is not None:  # deposits made while not listening went unheard
            self._changes(None)
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STATS_INTERVAL_S):
                    await lost.wait()
            if not lost.is_set():
                async with self._listen_lock:
                    await db.execute("SELECT 1")  # finds a dead socket that sent no FIN

    def _on_notify(self, _db: _Connection, _pid: int, _channel: str, payload: object) -> None:
        kind, _, rest = str(payload).partition(" ")
        if kind == "r":
            self._on_claim(rest)
            return
        try:
            mailbox_key, envelope = _parse_notification(str(payload))
        except ValueError:
            _LOGGER.warning("ignored a malformed deposit notification")
            return
        if mailbox_key in self._watched:  # else another mailbox on the channel, or one gone
            self._inbox.put_nowait((mailbox_key, envelope))

    async def _deliver_loop(self) -> None:
        """Hand notified envelopes to the insert listener in the order they came; one too big
        for its notification is fetched first, so none overtakes another."""
        while True:
            mailbox_key, envelope = await self._inbox.get()
            if isinstance(envelope, int):
                try:
                    rows = await self._call(
                        "fetch",
                        "SELECT seq, envelope_id, ciphertext, deposited_s FROM relay_envelopes"
                        " WHERE seq = $1",
                        envelope,
                    )
                except StorageError:
                    if self._changes is not None:  # its readers page it instead
                        self._changes({mailbox_key})
                    continue
                if not rows:
                    continue  # acknowledged or purged already
                row = rows[0]
                envelope = StoredEnvelope(row[0], bytes(row[1]), bytes(row[2]), row[3])
            if self._listener is not None:
                self._listener([(mailbox_key, envelope)])

    def _on_claim(self, rest: str) -> None:
        mailbox_hex, _, origin = rest.partition(" ")
        try:
            mailbox_key = bytes.fromhex(mailbox_hex)
        except ValueError:
            _LOGGER.warning("ignored a malformed reader notification")
            return
        if origin != self._origin and mailbox_key in self._watched and self._claims is not None:
            self._claims(mailbox_key)

    async def _stats_loop(self) -> None:
        for count in itertools.count(1):
            await asyncio.sleep(STATS_INTERVAL_S)
            with contextlib.suppress(StorageError):
                await self._refresh_stats(fold=count % FOLD_EVERY_ROUNDS == 0)

    async def _refresh_stats(self, *, fold: bool = True) -> None:
        if fold:  # what acks freed, into the counts of the mailboxes no deposit holds now
            await self._call("execute", "SELECT relay_fold(NULL, NULL)")
        await self._call("execute", "SELECT relay_sweep_watchers()")
        self._set_stats(await self._call("fetchrow", "SELECT * FROM relay_usage()"))

    def _set_stats(self, totals: Any) -> None:
        """Keep the database's totals (envelopes, bytes, mailboxes) for `stats`."""
        envelopes, size, mailboxes = totals
        self._stats = StoreStats(envelopes, size, mailboxes, self.commits)


async def _listen_on(
    db: asyncpg.Connection[Any], mailbox_key: bytes, callback: Callable[..., None]
) -> None:
    """LISTEN on the mailbox's channel, then register as its watcher (deposits NOTIFY it)."""
    await db.add_listener(pg_schema.channel(mailbox_key), callback)
    await db.execute("SELECT relay_watch($1)", mailbox_key)


def _parse_notification(payload: str) -> tuple[bytes, StoredEnvelope | int]:
    """`e MAILBOX SEQ TS ID CIPHERTEXT` (hex, base64) or `p MAILBOX SEQ` (too big: fetch it)."""
    kind, mailbox_hex, *fields = payload.split(" ")
    mailbox_key = bytes.fromhex(mailbox_hex)
    if kind == "p" and len(fields) == 1:
        return mailbox_key, int(fields[0])
    if kind != "e" or len(fields) != 4:
        raise ValueError("not a deposit notification")
    seq, deposited_s, envelope_id, ciphertext = fields
    envelope = StoredEnvelope(
        int(seq),
        bytes.fromhex(envelope_id),
        base64.b64decode(ciphertext, validate=True),
        int(deposited_s),
    )
    return mailbox_key, envelope


def _fail(waiting: list[_Deposit] | list[_Delete], exc: StorageError) -> None:
    for op in waiting:
        if not op.future.done():
            op.future.set_exception(StorageError(str(exc)))


async def _migrate(db: _Connection) -> None:
    """Bring the schema to SCHEMA_VERSION; one process at a time (an advisory lock)."""
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1)", pg_schema.MIGRATION_LOCK_KEY)
        await db.execute("CREATE TABLE IF NOT EXISTS relay_schema (version INT NOT NULL)")
        version = await db.fetchval("SELECT max(version) FROM relay_schema") or 0
        if version > pg_schema.SCHEMA_VERSION:
            raise StorageError(f"store schema {version} is newer than this relay")
        for target in range(version + 1, pg_schema.SCHEMA_VERSION + 1):
            await db.execute(pg_schema.MIGRATIONS[target - 1])
            await db.execute("INSERT INTO relay_schema (version) VALUES ($1)", target)
