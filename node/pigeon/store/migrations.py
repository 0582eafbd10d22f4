"""Schema history of the spool and the vault: ordered migrations, never edited once released.

A database records its version in `PRAGMA user_version` and its kind in `application_id`.
Tables are STRICT, so a value of the wrong type is refused instead of stored.
Version N is reached by applying migrations 1..N in order, each in the same transaction as the
version bump; a new release appends a migration and never rewrites an old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Migration:
    """The statements that take a database from `version - 1` to `version`."""

    version: int
    summary: str
    statements: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Schema:
    """A database kind: its application id and its migrations for versions 1, 2, ..."""

    kind: str
    application_id: int
    migrations: tuple[Migration, ...]

    @property
    def latest(self) -> int:
        """The version a database has after every migration."""
        return len(self.migrations)


_SPOOL_V1: Final = Migration(
    1,
    "envelopes held for other recipients",
    (
        """CREATE TABLE envelopes (
            packet_id BLOB NOT NULL UNIQUE,
            recipient_tag BLOB NOT NULL,
            depositor TEXT NOT NULL,
            priority INTEGER NOT NULL,
            expires_at REAL NOT NULL,
            receipt_hash BLOB,
            packet BLOB NOT NULL,
            stored_at REAL NOT NULL
        ) STRICT""",
        "CREATE INDEX envelopes_by_tag ON envelopes (recipient_tag, priority)",
        "CREATE INDEX envelopes_by_expiry ON envelopes (expires_at)",
    ),
)

_SPOOL_V2: Final = Migration(
    2,
    "owner envelopes held while the vault is locked; the persisted seen-cache",
    (
        "ALTER TABLE envelopes ADD COLUMN held_for_owner INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX envelopes_held ON envelopes (held_for_owner) WHERE held_for_owner = 1",
        """CREATE TABLE seen_cache (
            slot INTEGER PRIMARY KEY CHECK (slot = 1),
            blob BLOB NOT NULL,
            saved_at REAL NOT NULL
        ) STRICT""",
    ),
)

_SPOOL_V3: Final = Migration(
    3,
    "the node's own secrets that work before the owner unlocks (its bitchat identity)",
    (
        """CREATE TABLE node_secrets (
            name TEXT PRIMARY KEY,
            value BLOB NOT NULL,
            updated_at REAL NOT NULL
        ) STRICT""",
    ),
)

_SPOOL_V4: Final = Migration(
    4,
    "bitchat courier envelopes the node carries for absent phones (opaque Noise seals)",
    (
        """CREATE TABLE courier_held (
            identity BLOB PRIMARY KEY,
            recipient_tag BLOB NOT NULL,
            expiry_ms INTEGER NOT NULL,
            ciphertext BLOB NOT NULL,
            copies INTEGER NOT NULL,
            prekey_id INTEGER,
            depositor BLOB NOT NULL,
            stored_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            sprayed_to BLOB NOT NULL
        ) STRICT""",
    ),
)

_SPOOL_V5: Final = Migration(
    5,
    "the gateway's drop ledger: courier envelopes parked on Nostr relays or handed over",
    (
        # Keyed by the envelope's identity (a ciphertext hash): relays send one envelope back
        # under as many event ids as it was parked, each drop signed by a throwaway key.
        """CREATE TABLE drop_ledger (
            identity BLOB NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('parked', 'delivered')),
            at REAL NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (identity, kind)
        ) STRICT""",
        "CREATE INDEX drop_ledger_by_expiry ON drop_ledger (expires_at)",
        "CREATE INDEX drop_ledger_by_kind ON drop_ledger (kind, at)",
    ),
)

SPOOL_SCHEMA: Final = Schema(
    "spool", 0x50474E53, (_SPOOL_V1, _SPOOL_V2, _SPOOL_V3, _SPOOL_V4, _SPOOL_V5)
)

_VAULT_V1: Final = Migration(
    1,
    "identity, contacts, sessions, text history, outbox, incoming dedup, settings",
    (
        """CREATE TABLE owner_secrets (
            name TEXT PRIMARY KEY,
            value BLOB NOT NULL,
            updated_at REAL NOT NULL
        ) STRICT""",
        """CREATE TABLE contacts (
            contact_id TEXT PRIMARY KEY,
            display_name TEXT NOT NULL,
            card BLOB NOT NULL,
            verified_at REAL,
            verified_safety_number TEXT,
            created_at REAL NOT NULL,
            CHECK ((verified_at IS NULL) = (verified_safety_number IS NULL))
        ) STRICT""",
        """CREATE TABLE sessions (
            contact_id TEXT PRIMARY KEY REFERENCES contacts ON DELETE CASCADE,
            format_version INTEGER NOT NULL,
            state BLOB NOT NULL,
            updated_at REAL NOT NULL
        ) STRICT""",
        """CREATE TABLE messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL UNIQUE,
            contact_id TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            body TEXT NOT NULL,
            state TEXT NOT NULL,
            failure_reason TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        ) STRICT""",
        "CREATE INDEX messages_by_contact ON messages (contact_id, seq)",
        """CREATE TABLE outbox (
            envelope_id BLOB PRIMARY KEY,
            contact_id TEXT NOT NULL REFERENCES contacts ON DELETE CASCADE,
            message_id TEXT,
            priority INTEGER NOT NULL,
            envelope BLOB NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            next_attempt_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0
        ) STRICT""",
        "CREATE INDEX outbox_due ON outbox (next_attempt_at)",
        "CREATE INDEX outbox_by_contact ON outbox (contact_id)",
        """CREATE TABLE incoming_seen (
            envelope_id BLOB PRIMARY KEY,
            received_at REAL NOT NULL
        ) STRICT""",
        "CREATE INDEX incoming_seen_by_time ON incoming_seen (received_at)",
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT",
    ),
)

_VAULT_V2: Final = Migration(
    2,
    "file messages with resumable chunks; per-contact check-in interval",
    (
        "ALTER TABLE contacts ADD COLUMN check_in_interval_s REAL NOT NULL DEFAULT 300",
        # SQLite cannot relax NOT NULL in place: rebuild messages so body may be NULL for files.
        """CREATE TABLE messages_v2 (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL UNIQUE,
            contact_id TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            body TEXT,
            file_id TEXT,
            state TEXT NOT NULL,
            failure_reason TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            CHECK ((body IS NULL) <> (file_id IS NULL))
        ) STRICT""",
        """INSERT INTO messages_v2 (seq, message_id, contact_id, direction, body, state,
               failure_reason, created_at, updated_at)
           SELECT seq, message_id, contact_id, direction, body, state,
               failure_reason, created_at, updated_at FROM messages""",
        "DROP TABLE messages",
        "ALTER TABLE messages_v2 RENAME TO messages",
        "CREATE INDEX messages_by_contact ON messages (contact_id, seq)",
        """CREATE TABLE files (
            file_id TEXT PRIMARY KEY,
            contact_id TEXT NOT NULL,
            name TEXT NOT NULL,
            size INTEGER NOT NULL,
            chunk_count INTEGER NOT NULL,
            created_at REAL NOT NULL
        ) STRICT""",
        """CREATE TABLE file_chunks (
            file_id TEXT NOT NULL REFERENCES files ON DELETE CASCADE,
            chunk_index INTEGER NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (file_id, chunk_index)
        ) STRICT""",
    ),
)

_VAULT_V3: Final = Migration(
    3,
    "outgoing messages waiting for a session: one row each, not a list inside the session",
    (
        # Queueing is one insert whatever the queue's length (the list used to be rewritten
        # whole on every send). The messenger moves lists from its older session records.
        """CREATE TABLE waiting (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            contact_id TEXT NOT NULL REFERENCES contacts ON DELETE CASCADE,
            message_id TEXT NOT NULL,
            UNIQUE (contact_id, message_id)
        ) STRICT""",
    ),
)

_VAULT_V4: Final = Migration(
    4,
    "the neighbourhood's public bitchat chat heard by the node (capped; not the owner's history)",
    (
        """CREATE TABLE neighbourhood (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            sender BLOB NOT NULL,
            nickname TEXT NOT NULL,
            body TEXT NOT NULL,
            sent_at_ms INTEGER NOT NULL,
            heard_at REAL NOT NULL,
            mine INTEGER NOT NULL CHECK (mine IN (0, 1))
        ) STRICT""",
    ),
)

VAULT_SCHEMA: Final = Schema("vault", 0x50474E56, (_VAULT_V1, _VAULT_V2, _VAULT_V3, _VAULT_V4))

HISTORY_TABLES: Final = ("messages", "files", "file_chunks")


def history_tables_ddl(schema_name: str) -> tuple[str, ...]:
    """The latest DDL of the history tables, created in `schema_name` (ephemeral mode)."""
    s = schema_name
    return (
        f"""CREATE TABLE {s}.messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id TEXT NOT NULL UNIQUE,
            contact_id TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            body TEXT,
            file_id TEXT,
            state TEXT NOT NULL,
            failure_reason TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            CHECK ((body IS NULL) <> (file_id IS NULL))
        ) STRICT""",
        f"CREATE INDEX {s}.messages_by_contact ON messages (contact_id, seq)",
        f"""CREATE TABLE {s}.files (
            file_id TEXT PRIMARY KEY,
            contact_id TEXT NOT NULL,
            name TEXT NOT NULL,
            size INTEGER NOT NULL,
            chunk_count INTEGER NOT NULL,
            created_at REAL NOT NULL
        ) STRICT""",
        f"""CREATE TABLE {s}.file_chunks (
            file_id TEXT NOT NULL REFERENCES files ON DELETE CASCADE,
            chunk_index INTEGER NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (file_id, chunk_index)
        ) STRICT""",
    )
