"""One SQLCipher database: raw-key unlock, durable pragmas, explicit transactions, migrations.

The only module that imports sqlcipher3 (lazily, on first open). Every SQLite error leaves as a
typed `StoreError` naming the file. Durability: WAL with `synchronous = FULL`, so a commit that
returned has its WAL frames fsynced and survives SIGKILL and power loss (NORMAL would survive
SIGKILL but could lose the last commits on power loss, which the owner would see as lost mail).

On a read-only file system (an SD card at the end of its life) an existing database opens
read-only instead of not at all: reads work, and every write raises ReadOnlyStore.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import stat
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Protocol

from pigeon.store.errors import (
    Conflict,
    CorruptStore,
    DiskFull,
    Locked,
    NewerSchema,
    ReadOnlyStore,
    StoreError,
    WrongKey,
)
from pigeon.store.keys import FILE_MODE, DatabaseKey, fsync_directory
from pigeon.store.migrations import Schema

_LOGGER = logging.getLogger(__name__)

PLAIN_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
DATABASE_SUFFIXES: Final = ("", "-wal", "-shm", "-journal")
WAL_SIZE_LIMIT_BYTES: Final = 4 << 20
# SQLCipher 4's page size, the one every store had until the vault chose its own: an existing
# file is tried with the configured size first, then with this one (SQLCipher cannot tell).
SQLCIPHER_DEFAULT_PAGE_BYTES: Final = 4096
_SQLITE_CORRUPT: Final = 11
_SQLITE_FULL: Final = 13
_SQLITE_READONLY: Final = 8
_SQLITE_CONSTRAINT: Final = 19
_SQLITE_NOTADB: Final = 26
_SQLITE_CONSTRAINT_DATATYPE: Final = 3091  # a value of the wrong type for a STRICT column

Row = tuple[Any, ...]
Params = Sequence[object]


class _Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    @property
    def lastrowid(self) -> int | None: ...

    def fetchone(self) -> Row | None: ...

    def fetchall(self) -> list[Row]: ...


class _Connection(Protocol):
    @property
    def in_transaction(self) -> bool: ...

    @property
    def total_changes(self) -> int: ...

    def execute(self, sql: str, params: Params = ..., /) -> _Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Params], /) -> _Cursor: ...

    def close(self) -> None: ...


class Queries(Protocol):
    """Read access shared by a `Database` and an open `Transaction`."""

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of `sql`, or None."""

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row of `sql`."""


@functools.cache
def _driver() -> ModuleType:
    import sqlcipher3  # the one place it is imported, and only when a store opens

    return sqlcipher3  # type: ignore[no-any-return]


def translate_error(exc: Exception, path: Path) -> StoreError:
    """The typed store error for a SQLite error on `path` (the message never holds values)."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == _SQLITE_FULL:
        return DiskFull(f"{path}: the disk or the store's size limit is full; nothing was written")
    if primary == _SQLITE_READONLY:
        return ReadOnlyStore(f"{path}: the file system is read-only; nothing was written")
    if primary == _SQLITE_NOTADB:
        return WrongKey(f"{path}: does not open with this key (wrong key, or not a Pigeon store)")
    if primary == _SQLITE_CORRUPT:
        return CorruptStore(f"{path}: the database is damaged ({exc})")
    if primary == _SQLITE_CONSTRAINT and code != _SQLITE_CONSTRAINT_DATATYPE:
        return Conflict(f"{path.name}: {exc}")
    return StoreError(f"{path}: {exc}")


class Transaction:
    """Statements inside one open write transaction; usable only inside `Database.transaction`."""

    def __init__(self, database: Database, connection: _Connection) -> None:
        self._database = database
        self._connection: _Connection | None = connection

    def _live(self) -> _Connection:
        if self._connection is None:
            raise StoreError("the transaction is already finished")
        return self._connection

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        with self._database.translated():
            return self._live().execute(sql, params).rowcount

    def insert(self, sql: str, params: Params = ()) -> int:
        """Run one INSERT; returns the rowid of the new row."""
        with self._database.translated():
            rowid = self._live().execute(sql, params).lastrowid
        if rowid is None:
            raise StoreError("the statement inserted no row")
        return rowid

    def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """Run one statement per row of parameters; returns the rows changed."""
        with self._database.translated():
            return self._live().executemany(sql, rows).rowcount

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of `sql`, or None."""
        with self._database.translated():
            return self._live().execute(sql, params).fetchone()

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row of `sql`."""
        with self._database.translated():
            return self._live().execute(sql, params).fetchall()

    def finish(self) -> None:
        """Make this object unusable (called by `Database.transaction`)."""
        self._connection = None


class Database:
    """A keyed, migrated SQLCipher connection; thread-safe through one lock."""

    def __init__(
        self,
        path: Path,
        connection: _Connection,
        error_type: type[Exception],
        *,
        read_only: bool = False,
    ) -> None:
        self.path = path
        self.read_only = read_only  # opened on a read-only file system: every write refused
        self._connection: _Connection | None = connection
        self._error_type = error_type
        self._lock = threading.RLock()

    @classmethod
    def open(
        cls,
        path: Path,
        key: DatabaseKey,
        schema: Schema,
        *,
        create: bool,
        max_size_bytes: int | None = None,
        memory_security: bool = True,
        page_bytes: int = SQLCIPHER_DEFAULT_PAGE_BYTES,
    ) -> Database:
        """Open (or, if `create`, create) `path` and migrate it to `schema.latest`.

        `page_bytes` is the page size of a new file (every commit writes each page it touches
        whole to the WAL); an existing file keeps the size it was made with.

        `memory_security` wipes SQLCipher's buffers when freed; it roughly halves throughput
        (bench/bench_store.py) and, once on, stays on for the whole process. The spool and the
        vault always keep it on. On a read-only file system an existing database opens
        read-only (`read_only`). Raises WrongKey, CorruptStore (also NewerSchema), DiskFull,
        ReadOnlyStore (nothing to open, or a migration due) or StoreError.
        """
        _refuse_plain_sqlite(path)
        existed = path.exists()
        if not create and not existed:
            raise CorruptStore(f"{path}: the {schema.kind} database is missing")
        read_only = on_read_only_file_system(path.parent)
        if read_only and not existed:
            raise ReadOnlyStore(f"{path}: cannot be created: the file system is read-only")
        if not read_only:
            own_database_files(path, create=not existed)
        sizes = _page_size_candidates(page_bytes) if existed else (page_bytes,)
        database = cls._keyed(path, key, sizes, read_only, max_size_bytes, memory_security)
        try:
            database._check_and_migrate(schema, create=create)
        except BaseException:
            database.close()
            raise
        if not existed:
            fsync_directory(path.parent)
        return database

    @classmethod
    def _keyed(
        cls,
        path: Path,
        key: DatabaseKey,
        sizes: tuple[int, ...],
        read_only: bool,
        max_size_bytes: int | None,
        memory_security: bool,
    ) -> Database:
        """A configured connection: the first page size in `sizes` that the key opens.
        Raises WrongKey if none does."""
        for attempt, size in enumerate(sizes, start=1):
            database = cls._connect(path, read_only=read_only)
            try:
                database._configure(key, size, max_size_bytes, memory_security)
            except WrongKey:
                database.close()
                if attempt == len(sizes):
                    raise
                continue
            except BaseException:
                database.close()
                raise
            return database
        raise WrongKey(f"{path}: no page size to try")

    @classmethod
    def _connect(cls, path: Path, *, read_only: bool) -> Database:
        """An unkeyed connection to `path` (read-only: see `_read_only_uri`)."""
        driver = _driver()
        try:
            connection = driver.connect(
                _read_only_uri(path) if read_only else str(path),
                isolation_level=None,
                check_same_thread=False,
                uri=read_only,
            )
        except driver.Error as exc:
            raise translate_error(exc, path) from exc
        return cls(path, connection, driver.Error, read_only=read_only)

    @classmethod
    def opens_with(
        cls, path: Path, key: DatabaseKey, page_bytes: int = SQLCIPHER_DEFAULT_PAGE_BYTES
    ) -> bool:
        """Whether `key` opens the existing database `path` (a hot journal is rolled back),
        made with `page_bytes` pages or SQLCipher's default.

        Raises CorruptStore if the file is missing or damaged, StoreError otherwise.
        """
        if not path.exists():
            raise CorruptStore(f"{path}: the database is missing")
        for size in _page_size_candidates(page_bytes):
            database = cls._connect(path, read_only=False)
            connection = database._live()
            try:
                with database.translated():
                    connection.execute(_key_pragma(key))
                    connection.execute("PRAGMA cipher_log_level = NONE")
                    connection.execute(f"PRAGMA cipher_page_size = {size}")
                    connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return True
            except WrongKey:
                continue
            finally:
                database.close()
        return False

    def rekey(self, key: DatabaseKey) -> None:
        """Re-encrypt every page under `key` in one transaction: a crash or an error leaves the
        whole file under the old key or the new one. Raises DiskFull or StoreError."""
        with self._lock:
            # SQLCipher 4 cannot re-key a WAL database: a rollback journal makes it one commit.
            mode = self.fetchone("PRAGMA main.journal_mode = DELETE")
            if mode is None or str(mode[0]).lower() != "delete":
                raise StoreError(f"{self.path}: cannot leave WAL journaling to re-key it")
            try:
                self.fetchone(_rekey_pragma(key))
                # The journal's deletion is the commit: make it survive a power cut.
                fsync_directory(self.path.parent)
            except OSError as exc:
                raise StoreError(
                    f"{self.path}: cannot sync its directory ({exc.strerror})"
                ) from exc
            finally:
                self._back_to_wal()

    def _back_to_wal(self) -> None:
        try:
            self.fetchone("PRAGMA main.journal_mode = WAL")
        except StoreError as exc:  # the next open switches to WAL
            _LOGGER.warning("%s: WAL journaling is off until it reopens (%s)", self.path, exc)

    def _configure(
        self, key: DatabaseKey, page_bytes: int, max_size_bytes: int | None, memory_security: bool
    ) -> None:
        connection = self._live()
        with self.translated():
            connection.execute(_key_pragma(key))  # must be the first statement
            connection.execute("PRAGMA cipher_log_level = NONE")
            connection.execute(f"PRAGMA cipher_page_size = {int(page_bytes)}")
            connection.execute(
                f"PRAGMA cipher_memory_security = {'ON' if memory_security else 'OFF'}"
            )
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()  # checks the key
            if self.read_only:
                return  # the file stays as it is: no journal mode, no size limit to set
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL journaling")
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("PRAGMA secure_delete = ON")
            connection.execute("PRAGMA temp_store = MEMORY")
            connection.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
            if max_size_bytes is not None:
                page = self._pragma_int("page_size")
                connection.execute(f"PRAGMA max_page_count = {max(1, max_size_bytes // page)}")

    def _check_and_migrate(self, schema: Schema, *, create: bool) -> None:
        problems = self.quick_check()
        if problems != ["ok"]:
            raise CorruptStore(f"{self.path}: the database is damaged ({problems[0]})")
        if self.read_only:
            self._check_read_only(schema)
            return
        with self.transaction() as tx:
            version = self._pragma_int("user_version")
            application_id = self._pragma_int("application_id")
            has_tables = tx.fetchone("SELECT 1 FROM sqlite_master LIMIT 1") is not None
            if application_id != schema.application_id and (application_id or has_tables):
                raise CorruptStore(f"{self.path}: not a Pigeon {schema.kind} database")
            if version > schema.latest:
                raise NewerSchema(
                    f"{self.path}: written by a newer Pigeon (schema {version},"
                    f" this one knows {schema.latest}); left untouched"
                )
            if version == 0 and not create:
                raise CorruptStore(f"{self.path}: the {schema.kind} database is empty")
            if version == schema.latest:
                return
            for migration in schema.migrations[version:]:
                for statement in migration.statements:
                    tx.execute(statement)
                _LOGGER.info("%s: migrated to schema %d", self.path.name, migration.version)
            tx.execute(f"PRAGMA application_id = {schema.application_id}")
            tx.execute(f"PRAGMA user_version = {schema.latest}")

    def _check_read_only(self, schema: Schema) -> None:
        """The checks of `_check_and_migrate` on a store that cannot be written."""
        version = self._pragma_int("user_version")
        if self._pragma_int("application_id") != schema.application_id:
            raise CorruptStore(f"{self.path}: not a Pigeon {schema.kind} database")
        if version > schema.latest:
            raise NewerSchema(
                f"{self.path}: written by a newer Pigeon (schema {version},"
                f" this one knows {schema.latest}); left untouched"
            )
        if version < schema.latest:
            raise ReadOnlyStore(
                f"{self.path}: needs migrating to schema {schema.latest}, but the file system"
                " is read-only; nothing was written"
            )

    def _pragma_int(self, name: str) -> int:
        row = self.fetchone(f"PRAGMA {name}")
        return int(row[0]) if row else 0

    def _live(self) -> _Connection:
        if self._connection is None:
            raise Locked(f"{self.path.name} is closed")
        return self._connection

    @contextmanager
    def translated(self) -> Iterator[None]:
        """Turn SQLite errors raised inside into typed store errors."""
        try:
            yield
        except self._error_type as exc:
            raise translate_error(exc, self.path) from exc

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One write transaction: committed (durably) on normal exit, rolled back on any error.

        A transaction that changed rows raises ReadOnlyStore when the file system is read-only
        as it is about to commit (rolled back: nothing was written), or turned read-only before
        the commit returned. ext4 remounted read-only (after write errors, or a card that locked
        itself) still takes writes to files already open into memory and answers fsync with
        success, so SQLite's COMMIT would return for a write that never reaches the card and is
        gone at the next boot: `make image-read-only` saw exactly that before these checks. A
        database opened read-only needs neither: SQLite refuses its writes itself."""
        with self._lock:
            connection = self._live()
            if connection.in_transaction:
                raise StoreError("transactions do not nest")
            changes = connection.total_changes
            with self.translated():
                connection.execute("BEGIN IMMEDIATE")
            tx = Transaction(self, connection)
            try:
                yield tx
                changed = connection.total_changes != changes
                if changed:
                    self._refuse_read_only("the file system is read-only; nothing was written")
                with self.translated():
                    connection.execute("COMMIT")
            except BaseException:
                self._rollback(connection)
                raise
            finally:
                tx.finish()
            if changed:
                self._refuse_read_only(
                    "the file system turned read-only during the write; it may be lost"
                )

    def _refuse_read_only(self, why: str) -> None:
        if not self.read_only and on_read_only_file_system(self.path.parent):
            raise ReadOnlyStore(f"{self.path}: {why}")

    def _rollback(self, connection: _Connection) -> None:
        if connection.in_transaction:
            try:
                connection.execute("ROLLBACK")
            except self._error_type:
                _LOGGER.warning("%s: rollback failed; SQLite rolls back on reopen", self.path.name)

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of `sql`, or None (a read outside any transaction)."""
        with self._lock, self.translated():
            return self._live().execute(sql, params).fetchone()

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row of `sql` (a read outside any transaction)."""
        with self._lock, self.translated():
            return self._live().execute(sql, params).fetchall()

    def execute_outside_transaction(self, sql: str) -> None:
        """Run a statement that SQLite refuses inside a transaction (ATTACH, VACUUM)."""
        with self._lock, self.translated():
            self._live().execute(sql)

    def quick_check(self) -> list[str]:
        """SQLite's quick_check rows: ["ok"] when every page decrypts and the b-trees hold."""
        return [str(row[0]) for row in self.fetchall("PRAGMA quick_check")]

    def integrity_check(self) -> list[str]:
        """SQLite's full integrity_check rows: ["ok"] when the database is sound."""
        return [str(row[0]) for row in self.fetchall("PRAGMA integrity_check")]

    @property
    def page_bytes(self) -> int:
        """The file's page size."""
        return self._pragma_int("page_size")

    @property
    def is_open(self) -> bool:
        """Whether the connection is still open."""
        return self._connection is not None

    def close(self) -> None:
        """Close the connection (the last close checkpoints the WAL); idempotent."""
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                try:
                    connection.close()
                except self._error_type as exc:
                    raise translate_error(exc, self.path) from exc


def _page_size_candidates(page_bytes: int) -> tuple[int, ...]:
    """The page sizes to try on an existing file: the configured one, then the old default."""
    return tuple(dict.fromkeys((page_bytes, SQLCIPHER_DEFAULT_PAGE_BYTES)))


def on_read_only_file_system(directory: Path) -> bool:
    """Whether the file system holding `directory` is mounted read-only (statvfs)."""
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError as exc:
        raise StoreError(f"{directory}: cannot examine its file system ({exc.strerror})") from exc


def _read_only_uri(path: Path) -> str:
    """The URI that opens `path` without writing a byte.

    With committed frames in its WAL (the last run was cut short) SQLite reads them through the
    read-only `-shm` left beside it. Without a WAL the file is the whole database and is opened
    `immutable`: SQLite then needs neither the `-shm` it cannot create on a read-only file
    system nor any lock (nobody can change a file there).
    """
    quoted = urllib.parse.quote(str(path.resolve()))
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return f"file:{quoted}?mode=ro"
    return f"file:{quoted}?mode=ro&immutable=1"


def _rekey_pragma(key: DatabaseKey) -> str:
    return f"PRAGMA rekey = \"x'{key.raw.hex()}'\""


def own_database_files(path: Path, *, create: bool) -> None:
    """Make `path` and its companions 0600 whatever the umask (SQLite gives its WAL, shm and
    journal files the mode of the database file, so creating that one 0600 covers them)."""
    try:
        if create:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
        for suffix in DATABASE_SUFFIXES:
            companion = path.with_name(path.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                if stat.S_IMODE(companion.lstat().st_mode) != FILE_MODE:
                    os.chmod(companion, FILE_MODE, follow_symlinks=False)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create it or set its mode ({exc.strerror})") from exc


def limit_clause(limit: int) -> str:
    """`LIMIT n` with `n` written into the SQL: SQLCipher's SQLite (3.53) re-prepares a statement
    whose LIMIT is a bound parameter on every run, and a prepare on a keyed connection costs more
    than the read itself (bench/bench_web.py). One cached statement per distinct `n` instead."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError("a LIMIT is a non-negative int")
    return f"LIMIT {limit}"


def _key_pragma(key: DatabaseKey) -> str:
    return f"PRAGMA key = \"x'{key.raw.hex()}'\""


def _refuse_plain_sqlite(path: Path) -> None:
    try:
        with path.open("rb") as file:
            head = file.read(len(PLAIN_SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"{path}: cannot read it ({exc.strerror})") from exc
    if head == PLAIN_SQLITE_MAGIC:
        raise CorruptStore(f"{path}: is a plain, unencrypted SQLite file, not a Pigeon store")
