"""The relay's PostgreSQL schema and its migrations (plain SQL, no driver).

Quotas are enforced inside the database, so every relay process sharing it sees the same
counts: `relay_deposit` locks the mailbox rows of a batch in key order (so processes never
deadlock), then the one `relay_totals` row, checks each deposit against its quota, inserts it
and NOTIFYs the other processes. Locking a mailbox row before inserting into it also makes the
`seq` order of a mailbox's envelopes their commit order, which readers page by.
"""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 1
NOTIFY_CHANNEL: Final = "pigeon_relay"
PURGE_LOCK_KEY: Final = 0x70_69_67_65_6F_6E  # "pigeon": one purger at a time, across processes
MIGRATION_LOCK_KEY: Final = PURGE_LOCK_KEY + 1  # one process migrates; the others wait

# Outcomes `relay_deposit` returns per deposit (mapped to ErrorCode by pg_storage).
OUTCOME_STORED: Final = 0
OUTCOME_DUPLICATE: Final = 1
OUTCOME_MAILBOX_FULL: Final = 2
OUTCOME_MAILBOX_BYTES_FULL: Final = 3
OUTCOME_RELAY_FULL: Final = 4

_SCHEMA_V1: Final = r"""
CREATE TABLE relay_envelopes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mailbox BYTEA NOT NULL,
    envelope_id BYTEA NOT NULL,
    deposited_s BIGINT NOT NULL,
    ciphertext BYTEA NOT NULL,
    UNIQUE (mailbox, envelope_id)
);
-- Ciphertext does not compress: do not try.
ALTER TABLE relay_envelopes ALTER COLUMN ciphertext SET STORAGE EXTERNAL;
CREATE INDEX relay_envelopes_by_mailbox ON relay_envelopes (mailbox, seq);
CREATE INDEX relay_envelopes_by_age ON relay_envelopes (deposited_s);

CREATE TABLE relay_mailboxes (
    mailbox BYTEA PRIMARY KEY,
    envelopes BIGINT NOT NULL,
    bytes BIGINT NOT NULL
);

CREATE TABLE relay_totals (
    id INT PRIMARY KEY CHECK (id = 1),
    envelopes BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    mailboxes BIGINT NOT NULL
);
INSERT INTO relay_totals VALUES (1, 0, 0, 0);

CREATE FUNCTION relay_deposit(
    p_mailboxes BYTEA[], p_ids BYTEA[], p_cts BYTEA[], p_ts BIGINT[],
    p_max_envelopes BIGINT[], p_max_bytes BIGINT[], p_relay_max_bytes BIGINT[], p_origin TEXT
) RETURNS TABLE (outcome SMALLINT, new_seq BIGINT, envelopes BIGINT, bytes BIGINT, mailboxes BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    k INT;
    seq_k BIGINT;
    outcome_k SMALLINT;
    outcomes SMALLINT[] := '{}';
    seqs BIGINT[] := '{}';
    size BIGINT;
    used_envelopes BIGINT;
    used_bytes BIGINT;
    total_bytes BIGINT;
    added_envelopes BIGINT := 0;
    added_mailboxes BIGINT := 0;
    changed BYTEA[] := '{}';
BEGIN
    INSERT INTO relay_mailboxes (mailbox, envelopes, bytes)
        SELECT DISTINCT m, 0, 0 FROM unnest(p_mailboxes) AS m ORDER BY 1
        ON CONFLICT (mailbox) DO NOTHING;
    PERFORM 1 FROM relay_mailboxes WHERE mailbox = ANY (p_mailboxes)
        ORDER BY mailbox FOR UPDATE;
    SELECT t.bytes INTO total_bytes FROM relay_totals t WHERE t.id = 1 FOR UPDATE;
    FOR k IN 1 .. coalesce(cardinality(p_ids), 0) LOOP
        seq_k := NULL;
        size := length(p_cts[k]);
        IF EXISTS (SELECT 1 FROM relay_envelopes e
                   WHERE e.mailbox = p_mailboxes[k] AND e.envelope_id = p_ids[k]) THEN
            outcome_k := 1;
        ELSE
            SELECT m.envelopes, m.bytes INTO used_envelopes, used_bytes
                FROM relay_mailboxes m WHERE m.mailbox = p_mailboxes[k];
            IF used_envelopes + 1 > p_max_envelopes[k] THEN
                outcome_k := 2;
            ELSIF used_bytes + size > p_max_bytes[k] THEN
                outcome_k := 3;
            ELSIF total_bytes + size > p_relay_max_bytes[k] THEN
                outcome_k := 4;
            ELSE
                INSERT INTO relay_envelopes (mailbox, envelope_id, deposited_s, ciphertext)
                    VALUES (p_mailboxes[k], p_ids[k], p_ts[k], p_cts[k])
                    RETURNING seq INTO seq_k;
                UPDATE relay_mailboxes SET envelopes = envelopes + 1, bytes = bytes + size
                    WHERE mailbox = p_mailboxes[k];
                IF used_envelopes = 0 THEN
                    added_mailboxes := added_mailboxes + 1;
                END IF;
                total_bytes := total_bytes + size;
                added_envelopes := added_envelopes + 1;
                IF NOT p_mailboxes[k] = ANY (changed) THEN
                    changed := changed || p_mailboxes[k];
                END IF;
                outcome_k := 0;
            END IF;
        END IF;
        outcomes := outcomes || outcome_k;
        seqs := seqs || seq_k;
    END LOOP;
    DELETE FROM relay_mailboxes WHERE mailbox = ANY (p_mailboxes) AND envelopes = 0;
    IF added_envelopes > 0 THEN
        UPDATE relay_totals SET envelopes = envelopes + added_envelopes, bytes = total_bytes,
            mailboxes = mailboxes + added_mailboxes WHERE id = 1;
        PERFORM pg_notify('@NOTIFY_CHANNEL@', 'd ' || p_origin || ' ' || encode(m, 'hex'))
            FROM unnest(changed) AS m;
    END IF;
    RETURN QUERY SELECT u.o, u.s, t.envelopes, t.bytes, t.mailboxes
        FROM unnest(outcomes, seqs) WITH ORDINALITY AS u(o, s, n), relay_totals t
        WHERE t.id = 1 ORDER BY u.n;
END
$$;

CREATE FUNCTION relay_forget(p_mailbox BYTEA, p_envelopes BIGINT, p_bytes BIGINT)
RETURNS VOID LANGUAGE plpgsql AS $$
#variable_conflict use_column
#variable_conflict use_column
DECLARE
    emptied BIGINT := 0;
BEGIN
    UPDATE relay_mailboxes SET envelopes = envelopes - p_envelopes, bytes = bytes - p_bytes
        WHERE mailbox = p_mailbox;
    DELETE FROM relay_mailboxes WHERE mailbox = p_mailbox AND envelopes <= 0;
    GET DIAGNOSTICS emptied = ROW_COUNT;
    UPDATE relay_totals SET envelopes = envelopes - p_envelopes, bytes = bytes - p_bytes,
        mailboxes = mailboxes - emptied WHERE id = 1;
END
$$;

CREATE FUNCTION relay_delete(p_mailbox BYTEA, p_ids BYTEA[])
RETURNS TABLE (gone BIGINT, envelopes BIGINT, bytes BIGINT, mailboxes BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n BIGINT;
    freed BIGINT;
BEGIN
    PERFORM 1 FROM relay_mailboxes m WHERE m.mailbox = p_mailbox FOR UPDATE;
    WITH deleted AS (
        DELETE FROM relay_envelopes e WHERE e.mailbox = p_mailbox AND e.envelope_id = ANY (p_ids)
        RETURNING length(e.ciphertext) AS size
    ) SELECT count(*), coalesce(sum(d.size), 0) INTO n, freed FROM deleted d;
    IF n > 0 THEN
        PERFORM relay_forget(p_mailbox, n, freed);
    END IF;
    RETURN QUERY SELECT n, t.envelopes, t.bytes, t.mailboxes FROM relay_totals t WHERE t.id = 1;
END
$$;

CREATE FUNCTION relay_purge(p_older_than_s BIGINT, p_prefix BYTEA)
RETURNS TABLE (gone BIGINT, envelopes BIGINT, bytes BIGINT, mailboxes BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    row RECORD;
    n BIGINT := 0;
BEGIN
    IF NOT pg_try_advisory_xact_lock(@PURGE_LOCK_KEY@) THEN
        -- another relay process is purging now
        RETURN QUERY SELECT 0::BIGINT, t.envelopes, t.bytes, t.mailboxes
            FROM relay_totals t WHERE t.id = 1;
        RETURN;
    END IF;
    PERFORM 1 FROM relay_mailboxes m WHERE m.mailbox IN (
        SELECT DISTINCT e.mailbox FROM relay_envelopes e
        WHERE e.deposited_s < p_older_than_s
            AND substring(e.mailbox FOR length(p_prefix)) = p_prefix
    ) ORDER BY m.mailbox FOR UPDATE;
    FOR row IN
        WITH deleted AS (
            DELETE FROM relay_envelopes e
            WHERE e.deposited_s < p_older_than_s
                AND substring(e.mailbox FOR length(p_prefix)) = p_prefix
            RETURNING e.mailbox, length(e.ciphertext) AS size
        ) SELECT d.mailbox, count(*) AS n, sum(d.size) AS freed FROM deleted d GROUP BY d.mailbox
    LOOP
        PERFORM relay_forget(row.mailbox, row.n, row.freed);
        n := n + row.n;
    END LOOP;
    RETURN QUERY SELECT n, t.envelopes, t.bytes, t.mailboxes FROM relay_totals t WHERE t.id = 1;
END
$$;
"""


def _fill(script: str) -> str:
    return script.replace("@PURGE_LOCK_KEY@", str(PURGE_LOCK_KEY)).replace(
        "@NOTIFY_CHANNEL@", NOTIFY_CHANNEL
    )


# Index i holds the script that takes schema version i to i + 1.
MIGRATIONS: Final = (_fill(_SCHEMA_V1),)
