"""The vault: the owner's identity secrets, contacts, sessions, history, outbox and settings.

Reads are methods of `Vault`; every write is a method of the `VaultTransaction` that
`Vault.transaction()` yields, so a ratchet step is stored atomically with what it produced:

    with vault.transaction() as tx:
        if tx.claim_incoming(envelope_id, now):
            tx.save_session(contact_id, new_state)
            tx.append_message(message)

The whole block commits durably when it ends, or not at all if it raises. In ephemeral mode the
history (messages and files) lives in an in-memory database attached to the connection and is
gone when the vault closes; identity, contacts, sessions, outbox, dedup and settings persist.
Errors: NotFound, Conflict, DiskFull, CorruptStore, Locked (after close), StoreError.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from pigeon.store.db import Database, Queries, Row, Transaction, limit_clause
from pigeon.store.errors import Conflict, CorruptStore, NotFound, StoreError, WrongKey
from pigeon.store.keys import DatabaseKey
from pigeon.store.migrations import HISTORY_TABLES, VAULT_SCHEMA, history_tables_ddl
from pigeon.store.repage import remove_repage_copy, repage
from pigeon.store.vault_records import (
    Contact,
    Direction,
    FileInfo,
    Message,
    MessageState,
    OutboxEntry,
    PublicChatLine,
    SessionState,
    Verification,
)

_LOGGER = logging.getLogger(__name__)

EPHEMERAL_SCHEMA: Final = "ephemeral"
# A text touches about ten pages of the vault and each goes whole into the WAL: 1 KiB pages
# instead of SQLCipher's 4 KiB cut a text's writes by more than half (bench_card_writes.py).
VAULT_PAGE_BYTES: Final = 1024
_CONTACT_COLUMNS: Final = (
    "contact_id, display_name, card, created_at, check_in_interval_s,"
    " verified_at, verified_safety_number"
)
_MESSAGE_COLUMNS: Final = (
    "message_id, contact_id, direction, state, created_at, updated_at, body, file_id,"
    " failure_reason, seq"
)
_OUTBOX_COLUMNS: Final = (
    "envelope_id, contact_id, message_id, priority, envelope, created_at, expires_at,"
    " next_attempt_at, attempts"
)


class _VaultReads:
    """Queries shared by the vault and its transactions."""

    def __init__(self, queries: Queries, history: str) -> None:
        self._q = queries
        self._h = history  # the schema holding history tables: "main" or the ephemeral one

    def owner_secret(self, name: str) -> bytes | None:
        """The owner secret stored under `name`, or None."""
        row = self._q.fetchone("SELECT value FROM owner_secrets WHERE name = ?", (name,))
        return bytes(row[0]) if row else None

    def contact(self, contact_id: str) -> Contact:
        """The contact `contact_id`; raises NotFound."""
        row = self._q.fetchone(
            f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE contact_id = ?", (contact_id,)
        )
        if row is None:
            raise NotFound("no such contact")
        return _contact(row)

    def contacts(self) -> list[Contact]:
        """Every contact, in the order they were added."""
        rows = self._q.fetchall(
            f"SELECT {_CONTACT_COLUMNS} FROM contacts ORDER BY created_at, contact_id"
        )
        return [_contact(row) for row in rows]

    def session(self, contact_id: str) -> SessionState | None:
        """The stored session with `contact_id`, or None."""
        row = self._q.fetchone(
            "SELECT format_version, state, updated_at FROM sessions WHERE contact_id = ?",
            (contact_id,),
        )
        return SessionState(int(row[0]), bytes(row[1]), row[2]) if row else None

    def message(self, message_id: str) -> Message:
        """The message `message_id`; raises NotFound."""
        row = self._q.fetchone(
            f"SELECT {_MESSAGE_COLUMNS} FROM {self._h}.messages WHERE message_id = ?",
            (message_id,),
        )
        if row is None:
            raise NotFound("no such message")
        return _message(row)

    def messages(
        self, contact_id: str, *, before_seq: int | None = None, limit: int = 50
    ) -> list[Message]:
        """Up to `limit` latest messages with `contact_id` before `before_seq`, oldest first."""
        rows = self._q.fetchall(
            f"SELECT {_MESSAGE_COLUMNS} FROM {self._h}.messages"
            f" WHERE contact_id = ? AND seq < ? ORDER BY seq DESC {limit_clause(limit)}",
            (contact_id, before_seq if before_seq is not None else 1 << 62),
        )
        return [_message(row) for row in reversed(rows)]

    def incoming_after(self, contact_id: str, after_seq: int) -> int:
        """How many incoming messages from `contact_id` have a seq above `after_seq`."""
        row = self._q.fetchone(
            f"SELECT count(*) FROM {self._h}.messages"
            " WHERE contact_id = ? AND seq > ? AND direction = 'in'",
            (contact_id, after_seq),
        )
        return int(row[0]) if row else 0

    def outbox_due(self, now: float, limit: int = 100) -> list[OutboxEntry]:
        """Unexpired outbox entries whose next attempt is due: highest priority, oldest first."""
        rows = self._q.fetchall(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE next_attempt_at <= ? AND expires_at > ?"
            f" ORDER BY priority DESC, next_attempt_at, created_at {limit_clause(limit)}",
            (now, now),
        )
        return [_outbox(row) for row in rows]

    def outbox_for_contact(self, contact_id: str) -> list[OutboxEntry]:
        """Every outbox entry addressed to `contact_id`, oldest first."""
        rows = self._q.fetchall(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE contact_id = ? ORDER BY created_at",
            (contact_id,),
        )
        return [_outbox(row) for row in rows]

    def waiting(self, contact_id: str) -> list[str]:
        """Ids of the outgoing messages waiting for a session with `contact_id`, oldest first."""
        rows = self._q.fetchall(
            "SELECT message_id FROM waiting WHERE contact_id = ? ORDER BY seq", (contact_id,)
        )
        return [str(row[0]) for row in rows]

    def outbox_entry(self, envelope_id: bytes) -> OutboxEntry | None:
        """The outbox entry `envelope_id`, or None."""
        row = self._q.fetchone(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE envelope_id = ?", (envelope_id,)
        )
        return _outbox(row) if row else None

    def incoming_seen(self, envelope_id: bytes) -> bool:
        """Whether `envelope_id` was already claimed (handed to the owner)."""
        row = self._q.fetchone("SELECT 1 FROM incoming_seen WHERE envelope_id = ?", (envelope_id,))
        return row is not None

    def setting(self, key: str) -> str | None:
        """The setting `key`, or None."""
        row = self._q.fetchone("SELECT value FROM settings WHERE key = ?", (key,))
        return str(row[0]) if row else None

    def neighbourhood(self, limit: int = 200) -> list[PublicChatLine]:
        """The newest `limit` public bitchat lines heard, oldest first."""
        rows = self._q.fetchall(
            "SELECT sender, nickname, body, sent_at_ms, heard_at, mine, seq FROM neighbourhood"
            f" ORDER BY seq DESC {limit_clause(limit)}"
        )
        return [
            PublicChatLine(
                bytes(r[0]), str(r[1]), str(r[2]), int(r[3]), r[4], bool(r[5]), int(r[6])
            )
            for r in reversed(rows)
        ]

    def file_info(self, file_id: str) -> FileInfo | None:
        """The file `file_id`, or None."""
        row = self._q.fetchone(
            "SELECT file_id, contact_id, name, size, chunk_count, created_at"
            f" FROM {self._h}.files WHERE file_id = ?",
            (file_id,),
        )
        if row is None:
            return None
        return FileInfo(str(row[0]), str(row[1]), str(row[2]), int(row[3]), int(row[4]), row[5])

    def missing_chunks(self, file_id: str) -> list[int]:
        """Indices of the chunks of `file_id` not stored yet, ascending; raises NotFound."""
        info = self.file_info(file_id)
        if info is None:
            raise NotFound("no such file")
        rows = self._q.fetchall(
            f"SELECT chunk_index FROM {self._h}.file_chunks WHERE file_id = ?", (file_id,)
        )
        present = {int(row[0]) for row in rows}
        return [i for i in range(info.chunk_count) if i not in present]

    def stored_chunk_count(self, file_id: str) -> int:
        """How many chunks of `file_id` are stored (0 for an unknown file)."""
        row = self._q.fetchone(
            f"SELECT count(*) FROM {self._h}.file_chunks WHERE file_id = ?", (file_id,)
        )
        return int(row[0]) if row else 0

    def chunk(self, file_id: str, index: int) -> bytes | None:
        """Chunk `index` of `file_id`, or None if it is not stored."""
        row = self._q.fetchone(
            f"SELECT data FROM {self._h}.file_chunks WHERE file_id = ? AND chunk_index = ?",
            (file_id, index),
        )
        return bytes(row[0]) if row else None


class VaultTransaction(_VaultReads):
    """Reads and writes inside one vault transaction; committed together or not at all."""

    def __init__(self, tx: Transaction, history: str) -> None:
        super().__init__(tx, history)
        self._tx = tx
        self._existing_contacts: set[str] = set()  # checked in this transaction (a burst)

    def _require_contact(self, contact_id: str) -> None:
        if contact_id in self._existing_contacts:
            return
        if self._tx.fetchone("SELECT 1 FROM contacts WHERE contact_id = ?", (contact_id,)) is None:
            raise NotFound("no such contact")
        self._existing_contacts.add(contact_id)

    def _changed_one(self, sql: str, params: tuple[object, ...], missing: str) -> None:
        if self._tx.execute(sql, params) == 0:
            raise NotFound(missing)

    def append_neighbourhood(self, line: PublicChatLine, keep: int) -> int:
        """Store a public bitchat line and forget all but the newest `keep`; its seq."""
        self._tx.execute(
            "INSERT INTO neighbourhood (sender, nickname, body, sent_at_ms, heard_at, mine)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (line.sender, line.nickname, line.body, line.sent_at_ms, line.heard_at, int(line.mine)),
        )
        row = self._tx.fetchone("SELECT max(seq) FROM neighbourhood")
        assert row is not None
        seq = int(row[0])
        self._tx.execute("DELETE FROM neighbourhood WHERE seq <= ?", (seq - keep,))
        return seq

    def put_owner_secret(self, name: str, value: bytes, at: float) -> None:
        """Store (or replace) the owner secret `name`."""
        self._tx.execute(
            "INSERT OR REPLACE INTO owner_secrets (name, value, updated_at) VALUES (?, ?, ?)",
            (name, value, at),
        )

    def delete_owner_secret(self, name: str) -> None:
        """Forget the owner secret `name` (if any)."""
        self._tx.execute("DELETE FROM owner_secrets WHERE name = ?", (name,))

    def add_contact(
        self,
        contact_id: str,
        display_name: str,
        card: bytes,
        created_at: float,
        check_in_interval_s: float | None = None,
    ) -> Contact:
        """Add an unverified contact; raises Conflict if `contact_id` exists."""
        self._tx.execute(
            "INSERT INTO contacts (contact_id, display_name, card, created_at) VALUES (?, ?, ?, ?)",
            (contact_id, display_name, card, created_at),
        )
        if check_in_interval_s is not None:
            self.set_check_in_interval(contact_id, check_in_interval_s)
        return self.contact(contact_id)

    def rename_contact(self, contact_id: str, display_name: str) -> None:
        """Change a contact's display name; raises NotFound."""
        self._changed_one(
            "UPDATE contacts SET display_name = ? WHERE contact_id = ?",
            (display_name, contact_id),
            "no such contact",
        )

    def replace_card(self, contact_id: str, card: bytes) -> None:
        """Store a new card for a contact and clear its verification; raises NotFound."""
        self._changed_one(
            "UPDATE contacts SET card = ?, verified_at = NULL, verified_safety_number = NULL"
            " WHERE contact_id = ?",
            (card, contact_id),
            "no such contact",
        )

    def mark_verified(self, contact_id: str, safety_number: str, at: float) -> None:
        """Record that the owner confirmed `safety_number` at `at`; raises NotFound."""
        self._changed_one(
            "UPDATE contacts SET verified_at = ?, verified_safety_number = ? WHERE contact_id = ?",
            (at, safety_number, contact_id),
            "no such contact",
        )

    def clear_verification(self, contact_id: str) -> None:
        """Mark a contact unverified again; raises NotFound."""
        self._changed_one(
            "UPDATE contacts SET verified_at = NULL, verified_safety_number = NULL"
            " WHERE contact_id = ?",
            (contact_id,),
            "no such contact",
        )

    def set_check_in_interval(self, contact_id: str, interval_s: float) -> None:
        """Set how often queued envelopes are re-offered to a contact; raises NotFound."""
        if interval_s <= 0:
            raise ValueError("the check-in interval must be positive")
        self._changed_one(
            "UPDATE contacts SET check_in_interval_s = ? WHERE contact_id = ?",
            (interval_s, contact_id),
            "no such contact",
        )

    def remove_contact(self, contact_id: str) -> None:
        """Remove a contact with its session, outbox, history and files; raises NotFound."""
        self._existing_contacts.discard(contact_id)
        # Chunks go with their files (foreign key cascade); history has no foreign key because
        # in ephemeral mode it lives in another database than the contacts.
        self._tx.execute(f"DELETE FROM {self._h}.files WHERE contact_id = ?", (contact_id,))
        self._tx.execute(f"DELETE FROM {self._h}.messages WHERE contact_id = ?", (contact_id,))
        self._changed_one(
            "DELETE FROM contacts WHERE contact_id = ?", (contact_id,), "no such contact"
        )

    def save_session(self, contact_id: str, state: SessionState) -> None:
        """Store (or replace) the session with `contact_id`; raises NotFound without contact."""
        try:
            self._tx.execute(
                "INSERT INTO sessions (contact_id, format_version, state, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (contact_id) DO UPDATE SET"
                " format_version = excluded.format_version, state = excluded.state,"
                " updated_at = excluded.updated_at",
                (contact_id, state.format_version, state.state, state.updated_at),
            )
        except Conflict:  # the foreign key: checked only on failure, off the hot path
            self._require_contact(contact_id)
            raise

    def delete_session(self, contact_id: str) -> None:
        """Forget the session with `contact_id` (if any)."""
        self._tx.execute("DELETE FROM sessions WHERE contact_id = ?", (contact_id,))

    def append_message(self, message: Message) -> int:
        """Add `message` to history; returns its seq. Raises NotFound, Conflict (duplicate id)."""
        self._require_contact(message.contact_id)
        m = message
        return self._tx.insert(
            f"INSERT INTO {self._h}.messages (message_id, contact_id, direction, state,"
            " created_at, updated_at, body, file_id, failure_reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                m.message_id,
                m.contact_id,
                m.direction.value,
                m.state.value,
                m.created_at,
                m.updated_at,
                m.body,
                m.file_id,
                m.failure_reason,
            ),
        )

    def set_message_state(
        self, message_id: str, state: MessageState, at: float, failure_reason: str | None = None
    ) -> None:
        """Move a message to `state` (with a reason when failed); raises NotFound."""
        self._changed_one(
            f"UPDATE {self._h}.messages SET state = ?, failure_reason = ?, updated_at = ?"
            " WHERE message_id = ?",
            (state.value, failure_reason, at, message_id),
            "no such message",
        )

    def delete_message(self, message_id: str) -> None:
        """Remove a message from history; raises NotFound."""
        self._changed_one(
            f"DELETE FROM {self._h}.messages WHERE message_id = ?", (message_id,), "no such message"
        )

    def enqueue(self, entry: OutboxEntry) -> None:
        """Add an envelope to the outbox; raises NotFound without contact, Conflict if queued."""
        self._require_contact(entry.contact_id)
        e = entry
        self._tx.execute(
            f"INSERT INTO outbox ({_OUTBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                e.envelope_id,
                e.contact_id,
                e.message_id,
                e.priority,
                e.envelope,
                e.created_at,
                e.expires_at,
                e.next_attempt_at,
                e.attempts,
            ),
        )

    def add_waiting(self, contact_id: str, message_ids: Iterable[str]) -> None:
        """Queue messages behind those already waiting for a session (each id once)."""
        try:
            self._tx.executemany(
                "INSERT OR IGNORE INTO waiting (contact_id, message_id) VALUES (?, ?)",
                [(contact_id, message_id) for message_id in message_ids],
            )
        except Conflict:  # the foreign key: checked only on failure, off the hot path
            self._require_contact(contact_id)
            raise

    def take_waiting(self, contact_id: str) -> list[str]:
        """Remove and return the messages waiting for a session with `contact_id`, in order."""
        waiting = self.waiting(contact_id)
        self._tx.execute("DELETE FROM waiting WHERE contact_id = ?", (contact_id,))
        return waiting

    def reschedule(self, envelope_id: bytes, next_attempt_at: float) -> None:
        """Count an attempt and set the next one; raises NotFound."""
        self._changed_one(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE envelope_id = ?",
            (next_attempt_at, envelope_id),
            "no such outbox entry",
        )

    def remove_from_outbox(self, envelope_id: bytes) -> bool:
        """Drop an envelope (delivered or expired); returns whether it was there."""
        return self._tx.execute("DELETE FROM outbox WHERE envelope_id = ?", (envelope_id,)) == 1

    def remove_message_from_outbox(self, message_id: str) -> int:
        """Drop every envelope of a message (it was delivered); returns how many there were."""
        return self._tx.execute("DELETE FROM outbox WHERE message_id = ?", (message_id,))

    def expire_outbox(self, now: float) -> list[OutboxEntry]:
        """Remove and return the entries whose `expires_at` is at or before `now`."""
        rows = self._tx.fetchall(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE expires_at <= ? ORDER BY created_at",
            (now,),
        )
        self._tx.execute("DELETE FROM outbox WHERE expires_at <= ?", (now,))
        return [_outbox(row) for row in rows]

    def claim_incoming(self, envelope_id: bytes, received_at: float) -> bool:
        """Record `envelope_id` as handed to the owner; False if it already was (a duplicate)."""
        return (
            self._tx.execute(
                "INSERT OR IGNORE INTO incoming_seen (envelope_id, received_at) VALUES (?, ?)",
                (envelope_id, received_at),
            )
            == 1
        )

    def forget_incoming_before(self, before: float) -> int:
        """Forget claims older than `before` (envelopes that old cannot arrive again)."""
        return self._tx.execute("DELETE FROM incoming_seen WHERE received_at < ?", (before,))

    def put_setting(self, key: str, value: str) -> None:
        """Store (or replace) the setting `key`."""
        self._tx.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))

    def delete_setting(self, key: str) -> None:
        """Forget the setting `key` (if any)."""
        self._tx.execute("DELETE FROM settings WHERE key = ?", (key,))

    def add_file(self, info: FileInfo) -> None:
        """Start a file transfer record; raises NotFound without contact, Conflict if known."""
        self._require_contact(info.contact_id)
        if info.size < 0 or info.chunk_count < 0:
            raise ValueError("file size and chunk count must not be negative")
        i = info
        self._tx.execute(
            f"INSERT INTO {self._h}.files (file_id, contact_id, name, size, chunk_count,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (i.file_id, i.contact_id, i.name, i.size, i.chunk_count, i.created_at),
        )

    def put_chunk(self, file_id: str, index: int, data: bytes) -> bool:
        """Store chunk `index` of `file_id`; returns False if it was already stored.

        Raises NotFound for an unknown file and ValueError for an index out of range.
        """
        info = self.file_info(file_id)
        if info is None:
            raise NotFound("no such file")
        if not 0 <= index < info.chunk_count:
            raise ValueError("chunk index out of range")
        return (
            self._tx.execute(
                f"INSERT OR IGNORE INTO {self._h}.file_chunks (file_id, chunk_index, data)"
                " VALUES (?, ?, ?)",
                (file_id, index, data),
            )
            == 1
        )

    def delete_file(self, file_id: str) -> None:
        """Forget a file and its chunks (if any)."""
        self._tx.execute(f"DELETE FROM {self._h}.files WHERE file_id = ?", (file_id,))


class Vault(_VaultReads):
    """The open vault database (see the module docstring for the write pattern)."""

    def __init__(self, database: Database, *, ephemeral: bool) -> None:
        self._db = database
        self.ephemeral = ephemeral
        super().__init__(database, EPHEMERAL_SCHEMA if ephemeral else "main")

    @classmethod
    def open(
        cls,
        path: Path,
        key: DatabaseKey,
        *,
        create: bool,
        ephemeral: bool = False,
        max_size_bytes: int | None = None,
        page_bytes: int = VAULT_PAGE_BYTES,
    ) -> Vault:
        """Open the vault at `path` with its (already authenticated) data key.

        In ephemeral mode, history persisted by an earlier non-ephemeral run is erased.
        `page_bytes` is the page size: an existing vault made with others (SQLCipher's 4 KiB
        before VAULT_PAGE_BYTES) is repaged once, unless its card is read-only.
        """
        database = _open_database(path, key, create, max_size_bytes, page_bytes)
        if not create and not database.read_only and database.page_bytes != page_bytes:
            database = _repaged(database, key, max_size_bytes, page_bytes)
        if ephemeral:
            try:
                _attach_ephemeral_history(database)
            except BaseException:
                database.close()
                raise
        return cls(database, ephemeral=ephemeral)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._db.path

    @property
    def read_only(self) -> bool:
        """Opened on a read-only file system: reads work, every write raises ReadOnlyStore."""
        return self._db.read_only

    @contextmanager
    def transaction(self) -> Iterator[VaultTransaction]:
        """A transaction for reads and writes, committed durably when the block ends."""
        with self._db.transaction() as tx:
            yield VaultTransaction(tx, self._h)

    def integrity_check(self) -> list[str]:
        """SQLite's integrity_check rows for the file: ["ok"] when it is sound."""
        return self._db.integrity_check()

    def rekey(self, key: DatabaseKey) -> None:
        """Re-encrypt the vault file under `key`, all or nothing; raises DiskFull, StoreError."""
        self._db.rekey(key)

    @staticmethod
    def opens_with(path: Path, key: DatabaseKey) -> bool:
        """Whether `key` opens the vault file `path`; raises CorruptStore, StoreError."""
        return Database.opens_with(path, key, VAULT_PAGE_BYTES)

    @property
    def is_open(self) -> bool:
        """Whether the vault is still open."""
        return self._db.is_open

    def close(self) -> None:
        """Close the vault (ephemeral history is gone); idempotent."""
        self._db.close()


def _open_database(
    path: Path, key: DatabaseKey, create: bool, max_size_bytes: int | None, page_bytes: int
) -> Database:
    try:
        return Database.open(
            path,
            key,
            VAULT_SCHEMA,
            create=create,
            max_size_bytes=max_size_bytes,
            page_bytes=page_bytes,
        )
    except WrongKey as exc:
        raise CorruptStore(
            f"{path}: does not open with the vault's data key: the file is damaged or foreign"
        ) from exc


def _repaged(
    database: Database, key: DatabaseKey, max_size_bytes: int | None, page_bytes: int
) -> Database:
    """The vault reopened in `page_bytes` pages; if that fails (a full card), in its old ones
    (the next open tries again)."""
    path = database.path
    try:
        repage(database, key, page_bytes)
    except StoreError as exc:
        _LOGGER.warning("%s: keeps its old page size for now (%s)", path.name, exc)
        with contextlib.suppress(StoreError):
            remove_repage_copy(path)
    return _open_database(path, key, False, max_size_bytes, page_bytes)


def _attach_ephemeral_history(database: Database) -> None:
    database.execute_outside_transaction(f"ATTACH DATABASE ':memory:' AS {EPHEMERAL_SCHEMA} KEY ''")
    with database.transaction() as tx:
        for statement in history_tables_ddl(EPHEMERAL_SCHEMA):
            tx.execute(statement)
        erased = 0
        for table in HISTORY_TABLES[::-1]:
            erased += tx.execute(f"DELETE FROM main.{table}")
    if erased:
        _LOGGER.info("ephemeral mode: erased %d persisted history rows", erased)


def _contact(row: Row) -> Contact:
    verification = None if row[5] is None else Verification(row[5], str(row[6]))
    return Contact(
        contact_id=str(row[0]),
        display_name=str(row[1]),
        card=bytes(row[2]),
        created_at=row[3],
        check_in_interval_s=row[4],
        verification=verification,
    )


def _message(row: Row) -> Message:
    return Message(
        message_id=str(row[0]),
        contact_id=str(row[1]),
        direction=Direction(row[2]),
        state=MessageState(row[3]),
        created_at=row[4],
        updated_at=row[5],
        body=row[6],
        file_id=row[7],
        failure_reason=row[8],
        seq=int(row[9]),
    )


def _outbox(row: Row) -> OutboxEntry:
    return OutboxEntry(
        envelope_id=bytes(row[0]),
        contact_id=str(row[1]),
        message_id=row[2],
        priority=int(row[3]),
        envelope=bytes(row[4]),
        created_at=row[5],
        expires_at=row[6],
        next_attempt_at=row[7],
        attempts=int(row[8]),
    )
