"""The relay's PostgreSQL schema and its migrations (plain SQL, no driver).

Quotas are enforced inside the database, so every relay process sharing it sees the same
counts: `relay_deposit` locks (creating where missing) the mailbox rows of a batch in key order
(so processes never deadlock), then one of the `relay_shards` rows no other transaction holds,
checks each deposit against its quota, inserts it and NOTIFYs the processes with a reader of the
mailbox. Locking a mailbox row before inserting into it also makes the `seq` order of a
mailbox's envelopes their commit order, which readers page by and notifications arrive in.

The relay-wide byte cap is kept without one row that every deposit locks until its commit
(which made the processes' commits take turns): the usage counts are spread over SHARDS rows,
and each shard holds an allowance, bytes it may add without looking at the others. The
allowances never add up to more than the cap leaves free; a deposit that does not fit its
shard's allowance locks every shard, decides on the exact relay-wide usage and shares out what
is left again. So the cap is exact, and only a relay close to it pays for locking every shard.
Acks and purges take no such lock: they log what they freed in `relay_freed`, which a deposit
folds in for its mailboxes (and the relays fold for all, in the background, skipping what a
deposit holds); until then usage is counted high, so a quota can refuse early but is never
exceeded.
"""

from __future__ import annotations

import hashlib
from typing import Final

SCHEMA_VERSION: Final = 2
# Rows the relay-wide usage counts are spread over (see the module docstring); a deposit batch
# locks one, so this many processes commit side by side without waiting for each other.
SHARDS: Final = 16
# A reader's process LISTENs on its mailbox's channel: the prefix and md5 of the mailbox key
# (channel names are short; a collision only wakes a process that then checks the key).
CHANNEL_PREFIX: Final = "pigeon_"
# Envelopes up to this size travel in the notification itself (8000 bytes at most, in base64).
MAX_NOTIFIED_BYTES: Final = 5_700
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
    seq BIGINT PRIMARY KEY,  -- from relay_seq, drawn with the mailbox's row locked
    mailbox BYTEA NOT NULL,
    envelope_id BYTEA NOT NULL,
    deposited_s BIGINT NOT NULL,
    ciphertext BYTEA NOT NULL,
    UNIQUE (mailbox, envelope_id)
);
-- Ciphertext does not compress: do not try.
ALTER TABLE relay_envelopes ALTER COLUMN ciphertext SET STORAGE EXTERNAL;
CREATE SEQUENCE relay_seq;
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

-- What acks and purges freed, not yet taken off relay_mailboxes and relay_totals. Deleting
-- only appends here, so an ack never waits for a deposit's locks (nor a deposit for an ack's);
-- the next deposit into the mailbox, or the periodic fold, applies it under the row locks.
CREATE TABLE relay_freed (
    mailbox BYTEA NOT NULL,
    envelopes BIGINT NOT NULL,
    bytes BIGINT NOT NULL
);
CREATE INDEX relay_freed_by_mailbox ON relay_freed (mailbox);

-- Which listening connections (backend pids) have a reader of which mailbox: relay_deposit
-- NOTIFYs only those mailboxes, so a deposit nobody reads live takes no notification lock (a
-- NOTIFY serializes commits across the whole database). Rows of connections that are gone are
-- swept by relay_sweep_watchers; one left meanwhile costs only a notification nobody hears.
CREATE UNLOGGED TABLE relay_watchers (
    mailbox BYTEA NOT NULL,
    pid INT NOT NULL,
    PRIMARY KEY (mailbox, pid)
);

CREATE FUNCTION relay_watch(p_mailbox BYTEA) RETURNS VOID
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    -- Wait for a deposit into the mailbox in flight (it holds the row, or is creating it):
    -- what it stores is then in the reader's first page, and every later deposit sees us.
    INSERT INTO relay_mailboxes (mailbox, envelopes, bytes) VALUES (p_mailbox, 0, 0)
        ON CONFLICT (mailbox) DO UPDATE SET envelopes = relay_mailboxes.envelopes;
    INSERT INTO relay_watchers (mailbox, pid) VALUES (p_mailbox, pg_backend_pid())
        ON CONFLICT DO NOTHING;
    DELETE FROM relay_mailboxes m WHERE m.mailbox = p_mailbox AND m.envelopes = 0;
END
$$;

CREATE FUNCTION relay_sweep_watchers() RETURNS VOID
LANGUAGE sql AS $$
    DELETE FROM relay_watchers w
    WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = w.pid)
$$;

-- The totals with what was freed and not yet folded taken off (read-only, takes no lock).
CREATE FUNCTION relay_usage() RETURNS TABLE (envelopes BIGINT, bytes BIGINT, mailboxes BIGINT)
LANGUAGE sql STABLE AS $$
    SELECT t.envelopes - coalesce((SELECT sum(f.envelopes) FROM relay_freed f), 0),
           t.bytes - coalesce((SELECT sum(f.bytes) FROM relay_freed f), 0),
           t.mailboxes - (SELECT count(*) FROM relay_mailboxes m JOIN (
               SELECT f.mailbox, sum(f.envelopes) AS e FROM relay_freed f GROUP BY f.mailbox
           ) AS g ON g.mailbox = m.mailbox WHERE m.envelopes - g.e <= 0)
    FROM relay_totals t WHERE t.id = 1
$$;

-- Apply what was freed in `p_mailboxes` (NULL: in every mailbox) to the counts. Locks those
-- mailbox rows in key order, then relay_totals, as relay_deposit does.
CREATE FUNCTION relay_fold(p_mailboxes BYTEA[]) RETURNS VOID
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    boxes BYTEA[];
    f_boxes BYTEA[];
    f_envelopes BIGINT[];
    f_bytes BIGINT[];
    emptied BIGINT;
BEGIN
    SELECT array_agg(DISTINCT f.mailbox) INTO boxes FROM relay_freed f
        WHERE p_mailboxes IS NULL OR f.mailbox = ANY (p_mailboxes);
    IF boxes IS NULL THEN
        RETURN;
    END IF;
    PERFORM 1 FROM relay_mailboxes m WHERE m.mailbox = ANY (boxes) ORDER BY m.mailbox FOR UPDATE;
    WITH taken AS (
        DELETE FROM relay_freed f WHERE f.mailbox = ANY (boxes)
        RETURNING f.mailbox, f.envelopes, f.bytes
    ) SELECT array_agg(x.mailbox), array_agg(x.e), array_agg(x.b)
        INTO f_boxes, f_envelopes, f_bytes
        FROM (SELECT t.mailbox, sum(t.envelopes) AS e, sum(t.bytes) AS b
              FROM taken t GROUP BY t.mailbox) AS x;
    IF f_boxes IS NULL THEN
        RETURN;  -- another transaction folded them first
    END IF;
    UPDATE relay_mailboxes m SET envelopes = m.envelopes - u.e, bytes = m.bytes - u.b
        FROM unnest(f_boxes, f_envelopes, f_bytes) AS u(x, e, b) WHERE m.mailbox = u.x;
    SELECT count(*) INTO emptied FROM relay_mailboxes m
        WHERE m.mailbox = ANY (f_boxes) AND m.envelopes <= 0;
    IF p_mailboxes IS NULL THEN  -- a deposit keeps its mailboxes' rows and removes empty ones
        DELETE FROM relay_mailboxes m WHERE m.mailbox = ANY (f_boxes) AND m.envelopes <= 0;
    END IF;
    UPDATE relay_totals SET envelopes = envelopes - (SELECT sum(e) FROM unnest(f_envelopes) AS e),
        bytes = bytes - (SELECT sum(b) FROM unnest(f_bytes) AS b),
        mailboxes = mailboxes - emptied WHERE id = 1;
END
$$;

CREATE FUNCTION relay_deposit(
    p_mailboxes BYTEA[], p_ids BYTEA[], p_cts BYTEA[], p_ts BIGINT[],
    p_max_envelopes BIGINT[], p_max_bytes BIGINT[], p_relay_max_bytes BIGINT[]
) RETURNS TABLE (outcome SMALLINT, new_seq BIGINT, envelopes BIGINT, bytes BIGINT, mailboxes BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
-- Set-based where it can be: one statement locks, one reads usage, one finds known ids, one
-- inserts, one updates the counts. The loop between them decides each deposit in arrival order
-- on arrays only, with no statement per deposit.
DECLARE
    n INT := coalesce(cardinality(p_ids), 0);
    k INT;
    j INT;
    size BIGINT;
    boxes BYTEA[];
    box_envelopes BIGINT[];
    box_bytes BIGINT[];
    box_was_empty BOOLEAN[];
    known BOOLEAN[];
    first_of INT[];
    box_of INT[];
    outcomes SMALLINT[] := array_fill(1::SMALLINT, ARRAY[n]);
    seqs BIGINT[] := array_fill(NULL::BIGINT, ARRAY[n]);
    ins INT[] := '{}';
    total_bytes BIGINT;
    added_envelopes BIGINT := 0;
    added_bytes BIGINT := 0;
    added_mailboxes BIGINT := 0;
BEGIN
    INSERT INTO relay_mailboxes (mailbox, envelopes, bytes)
        SELECT DISTINCT m, 0, 0 FROM unnest(p_mailboxes) AS m ORDER BY 1
        ON CONFLICT (mailbox) DO NOTHING;
    PERFORM 1 FROM relay_mailboxes m WHERE m.mailbox = ANY (p_mailboxes)
        ORDER BY m.mailbox FOR UPDATE;
    PERFORM relay_fold(p_mailboxes);
    SELECT array_agg(m.mailbox ORDER BY m.mailbox), array_agg(m.envelopes ORDER BY m.mailbox),
           array_agg(m.bytes ORDER BY m.mailbox), array_agg(m.envelopes = 0 ORDER BY m.mailbox)
        INTO boxes, box_envelopes, box_bytes, box_was_empty
        FROM (SELECT * FROM relay_mailboxes WHERE mailbox = ANY (p_mailboxes)
              ORDER BY mailbox FOR UPDATE) AS m;
    SELECT t.bytes INTO total_bytes FROM relay_totals t WHERE t.id = 1 FOR UPDATE;
    -- Freed in other mailboxes, not folded yet: counts for the relay-wide cap now.
    total_bytes := total_bytes - coalesce((SELECT sum(f.bytes) FROM relay_freed f), 0);
    -- Per deposit: is it stored already, the first deposit of the batch with its mailbox and
    -- id, and its mailbox's index in `boxes` (a hash join, not a search per deposit).
    SELECT array_agg(x.known ORDER BY x.o), array_agg(x.first_o ORDER BY x.o),
           array_agg(x.idx ORDER BY x.o)
        INTO known, first_of, box_of
        FROM (SELECT u.o, b.idx, min(u.o) OVER (PARTITION BY u.m, u.i)::INT AS first_o,
                     EXISTS (SELECT 1 FROM relay_envelopes e
                             WHERE e.mailbox = u.m AND e.envelope_id = u.i) AS known
              FROM unnest(p_mailboxes, p_ids) WITH ORDINALITY AS u(m, i, o)
              JOIN unnest(boxes) WITH ORDINALITY AS b(x, idx) ON b.x = u.m) AS x;
    FOR k IN 1 .. n LOOP
        -- Stored before, or just now by the batch's first deposit of it: a duplicate (1).
        CONTINUE WHEN known[k] OR (first_of[k] <> k AND outcomes[first_of[k]] = 0);
        j := box_of[k];
        size := length(p_cts[k]);
        IF box_envelopes[j] + 1 > p_max_envelopes[k] THEN
            outcomes[k] := 2;
        ELSIF box_bytes[j] + size > p_max_bytes[k] THEN
            outcomes[k] := 3;
        ELSIF total_bytes + size > p_relay_max_bytes[k] THEN
            outcomes[k] := 4;
        ELSE
            outcomes[k] := 0;
            seqs[k] := nextval('relay_seq');
            ins := ins || k;
            box_envelopes[j] := box_envelopes[j] + 1;
            box_bytes[j] := box_bytes[j] + size;
            total_bytes := total_bytes + size;
            added_bytes := added_bytes + size;
            added_envelopes := added_envelopes + 1;
        END IF;
    END LOOP;
    INSERT INTO relay_envelopes (seq, mailbox, envelope_id, deposited_s, ciphertext)
        SELECT seqs[k], p_mailboxes[k], p_ids[k], p_ts[k], p_cts[k] FROM unnest(ins) AS k;
    UPDATE relay_mailboxes m SET envelopes = u.c, bytes = u.b
        FROM unnest(boxes, box_envelopes, box_bytes) AS u(x, c, b)
        WHERE m.mailbox = u.x AND m.envelopes <> u.c;
    SELECT count(*) INTO added_mailboxes
        FROM unnest(box_was_empty, box_envelopes) AS u(was_empty, c) WHERE u.was_empty AND u.c > 0;
    DELETE FROM relay_mailboxes WHERE mailbox = ANY (boxes) AND envelopes = 0;
    IF added_envelopes > 0 THEN
        UPDATE relay_totals SET envelopes = envelopes + added_envelopes,
            bytes = bytes + added_bytes,
            mailboxes = mailboxes + added_mailboxes WHERE id = 1;
        -- To the processes with a reader of the mailbox (they LISTEN on its channel), in commit
        -- order: the envelope itself, or only its seq when it would not fit a notification.
        PERFORM pg_notify('@CHANNEL_PREFIX@' || md5(p_mailboxes[k]),
            CASE WHEN length(p_cts[k]) <= @MAX_NOTIFIED_BYTES@ THEN
                'e ' || encode(p_mailboxes[k], 'hex') || ' ' || seqs[k] || ' ' || p_ts[k] || ' '
                || encode(p_ids[k], 'hex') || ' '
                || translate(encode(p_cts[k], 'base64'), E'\n', '')
            ELSE 'p ' || encode(p_mailboxes[k], 'hex') || ' ' || seqs[k] END)
            FROM unnest(ins) AS k
            WHERE EXISTS (SELECT 1 FROM relay_watchers w WHERE w.mailbox = p_mailboxes[k]);
    END IF;
    RETURN QUERY SELECT u.o, u.s, t.envelopes, t.bytes, t.mailboxes
        FROM unnest(outcomes, seqs) WITH ORDINALITY AS u(o, s, n), relay_usage() t
        ORDER BY u.n;
END
$$;

CREATE FUNCTION relay_delete(p_mailboxes BYTEA[], p_ids BYTEA[], p_acks INT[], p_ack_count INT)
RETURNS TABLE (gone BIGINT[], envelopes BIGINT, bytes BIGINT, mailboxes BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
-- Deletes the envelopes of a batch of acks at once: p_acks[k] says which ack named
-- (p_mailboxes[k], p_ids[k]); gone[a] is how many envelopes ack a deleted (an id named twice
-- counts for the first ack only, as if the acks ran one after the other). Takes no mailbox or
-- totals lock: what it freed goes to relay_freed.
DECLARE
    counts BIGINT[] := array_fill(0::BIGINT, ARRAY[p_ack_count]);
    d_acks INT[];
    d_boxes BYTEA[];
    d_sizes BIGINT[];
    per_ack RECORD;
BEGIN
    WITH targets AS (
        SELECT DISTINCT ON (u.m, u.i) u.m, u.i, u.a
        FROM unnest(p_mailboxes, p_ids, p_acks) AS u(m, i, a) ORDER BY u.m, u.i, u.a
    ), deleted AS (
        DELETE FROM relay_envelopes e USING targets t
        WHERE e.mailbox = t.m AND e.envelope_id = t.i
        RETURNING t.a AS ack, e.mailbox AS box, length(e.ciphertext)::BIGINT AS size
    ) SELECT array_agg(d.ack), array_agg(d.box), array_agg(d.size)
        INTO d_acks, d_boxes, d_sizes FROM deleted d;
    IF d_acks IS NOT NULL THEN
        FOR per_ack IN SELECT a, count(*) AS c FROM unnest(d_acks) AS a GROUP BY a LOOP
            counts[per_ack.a] := per_ack.c;
        END LOOP;
        INSERT INTO relay_freed (mailbox, envelopes, bytes)
            SELECT u.box, count(*), sum(u.size) FROM unnest(d_boxes, d_sizes) AS u(box, size)
            GROUP BY u.box;
    END IF;
    RETURN QUERY SELECT counts, u.envelopes, u.bytes, u.mailboxes FROM relay_usage() u;
END
$$;

CREATE FUNCTION relay_purge(p_older_than_s BIGINT, p_prefix BYTEA)
RETURNS TABLE (gone BIGINT, envelopes BIGINT, bytes BIGINT, mailboxes BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n BIGINT := 0;
BEGIN
    IF pg_try_advisory_xact_lock(@PURGE_LOCK_KEY@) THEN  -- else another process purges now
        WITH deleted AS (
            DELETE FROM relay_envelopes e
            WHERE e.deposited_s < p_older_than_s
                AND substring(e.mailbox FOR length(p_prefix)) = p_prefix
            RETURNING e.mailbox, length(e.ciphertext)::BIGINT AS size
        ), freed AS (
            INSERT INTO relay_freed (mailbox, envelopes, bytes)
                SELECT d.mailbox, count(*), sum(d.size) FROM deleted d GROUP BY d.mailbox
                RETURNING relay_freed.envelopes
        ) SELECT coalesce(sum(f.envelopes), 0) INTO n FROM freed f;
        PERFORM relay_fold(NULL);
    END IF;
    RETURN QUERY SELECT n, u.envelopes, u.bytes, u.mailboxes FROM relay_usage() u;
END
$$;
"""


# Schema 2: the relay-wide counts spread over SHARDS rows with allowances (no row that every
# deposit locks), and mailbox rows locked in one statement that creates the missing ones.
_SCHEMA_V2: Final = r"""
CREATE TABLE relay_shards (
    shard INT PRIMARY KEY,
    envelopes BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    mailboxes BIGINT NOT NULL,
    -- Bytes this shard may hold without looking at the others: the allowances beyond the
    -- shards' bytes never add up to more than `cap` left free when they were shared out.
    allowance BIGINT NOT NULL,
    cap BIGINT NOT NULL
);
INSERT INTO relay_shards (shard, envelopes, bytes, mailboxes, allowance, cap)
    SELECT g, 0, 0, 0, 0, -1 FROM generate_series(0, @SHARDS@ - 1) AS g;
UPDATE relay_shards s SET envelopes = t.envelopes, bytes = t.bytes, mailboxes = t.mailboxes,
    allowance = t.bytes FROM relay_totals t WHERE s.shard = 0 AND t.id = 1;
DROP FUNCTION relay_deposit(BYTEA[], BYTEA[], BYTEA[], BIGINT[], BIGINT[], BIGINT[], BIGINT[]);
DROP FUNCTION relay_fold(BYTEA[]);
DROP TABLE relay_totals;

CREATE OR REPLACE FUNCTION relay_usage()
RETURNS TABLE (envelopes BIGINT, bytes BIGINT, mailboxes BIGINT)
LANGUAGE sql STABLE AS $$
    SELECT (sum(s.envelopes) - coalesce((SELECT sum(f.envelopes) FROM relay_freed f), 0))::BIGINT,
           (sum(s.bytes) - coalesce((SELECT sum(f.bytes) FROM relay_freed f), 0))::BIGINT,
           (sum(s.mailboxes) - (SELECT count(*) FROM relay_mailboxes m JOIN (
               SELECT f.mailbox, sum(f.envelopes) AS e FROM relay_freed f GROUP BY f.mailbox
           ) AS g ON g.mailbox = m.mailbox WHERE m.envelopes - g.e <= 0))::BIGINT
    FROM relay_shards s
$$;

-- The relay's exact usage in bytes; exact only while the caller holds every shard.
CREATE FUNCTION relay_used() RETURNS BIGINT
LANGUAGE sql STABLE AS $$
    SELECT ((SELECT sum(s.bytes) FROM relay_shards s)
        - coalesce((SELECT sum(f.bytes) FROM relay_freed f), 0))::BIGINT
$$;

-- Apply what was freed in `p_mailboxes` to their rows and to shard `p_shard`, which the caller
-- (a deposit) holds with those mailbox rows. With NULLs, in the background: the mailboxes and a
-- shard no transaction holds now, so it never waits for a deposit; a later round folds the rest.
CREATE FUNCTION relay_fold(p_mailboxes BYTEA[], p_shard INT) RETURNS VOID
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    boxes BYTEA[] := p_mailboxes;
    into_shard INT := p_shard;
    f_boxes BYTEA[];
    f_envelopes BIGINT[];
    f_bytes BIGINT[];
    freed_bytes BIGINT;
    emptied BIGINT;
BEGIN
    IF p_mailboxes IS NULL THEN
        SELECT s.shard INTO into_shard FROM relay_shards s FOR UPDATE SKIP LOCKED LIMIT 1;
        IF into_shard IS NULL THEN
            RETURN;
        END IF;
        SELECT array_agg(x.mailbox) INTO boxes FROM (
            SELECT m.mailbox FROM relay_mailboxes m
            WHERE m.mailbox IN (SELECT f.mailbox FROM relay_freed f)
            ORDER BY m.mailbox FOR UPDATE SKIP LOCKED) AS x;
        IF boxes IS NULL THEN
            RETURN;
        END IF;
    END IF;
    WITH taken AS (
        DELETE FROM relay_freed f WHERE f.mailbox = ANY (boxes)
        RETURNING f.mailbox, f.envelopes, f.bytes
    ) SELECT array_agg(x.mailbox), array_agg(x.e), array_agg(x.b)
        INTO f_boxes, f_envelopes, f_bytes
        FROM (SELECT t.mailbox, sum(t.envelopes) AS e, sum(t.bytes) AS b
              FROM taken t GROUP BY t.mailbox) AS x;
    IF f_boxes IS NULL THEN
        RETURN;
    END IF;
    UPDATE relay_mailboxes m SET envelopes = m.envelopes - u.e, bytes = m.bytes - u.b
        FROM unnest(f_boxes, f_envelopes, f_bytes) AS u(x, e, b) WHERE m.mailbox = u.x;
    SELECT count(*) INTO emptied FROM relay_mailboxes m
        WHERE m.mailbox = ANY (f_boxes) AND m.envelopes <= 0;
    IF p_mailboxes IS NULL THEN  -- a deposit keeps its mailboxes' rows and removes empty ones
        DELETE FROM relay_mailboxes m WHERE m.mailbox = ANY (f_boxes) AND m.envelopes <= 0;
    END IF;
    -- The allowance moves with the bytes: folding frees no room in the shard (the acks' room
    -- comes back when the shards are shared out again), or the cap could be overrun.
    freed_bytes := (SELECT sum(b) FROM unnest(f_bytes) AS b);
    UPDATE relay_shards s SET
        envelopes = s.envelopes - (SELECT sum(e) FROM unnest(f_envelopes) AS e),
        bytes = s.bytes - freed_bytes, allowance = s.allowance - freed_bytes,
        mailboxes = s.mailboxes - emptied
        WHERE s.shard = into_shard;
END
$$;

CREATE FUNCTION relay_deposit(
    p_mailboxes BYTEA[], p_ids BYTEA[], p_cts BYTEA[], p_ts BIGINT[],
    p_max_envelopes BIGINT[], p_max_bytes BIGINT[], p_relay_max_bytes BIGINT[],
    p_every_shard BOOLEAN DEFAULT false
) RETURNS TABLE (outcome SMALLINT, new_seq BIGINT, envelopes BIGINT, bytes BIGINT, mailboxes BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
-- Set-based where it can be: one statement locks the mailboxes, one reads their usage, one finds
-- known ids, one inserts, one updates the counts. The loop between them decides each deposit in
-- arrival order on arrays only. p_every_shard: lock every shard from the start (a call without
-- it raised lock_not_available: its shard had no room and the others were busy).
DECLARE
    n INT := coalesce(cardinality(p_ids), 0);
    k INT;
    j INT;
    size BIGINT;
    boxes BYTEA[];
    start_envelopes BIGINT[];
    start_bytes BIGINT[];
    box_envelopes BIGINT[];
    box_bytes BIGINT[];
    box_was_empty BOOLEAN[];
    known BOOLEAN[];
    first_of INT[];
    box_of INT[];
    outcomes SMALLINT[];
    seqs BIGINT[] := array_fill(NULL::BIGINT, ARRAY[n]);
    ins INT[];
    my_shard INT;
    every_shard BOOLEAN := p_every_shard;
    shard_cap BIGINT;
    room BIGINT;  -- what this shard may still add (while it is the only one held)
    used BIGINT;  -- the relay's exact usage (while every shard is held)
    relay_cap BIGINT;
    free BIGINT;
    short BOOLEAN;
    added_envelopes BIGINT;
    added_bytes BIGINT;
    added_mailboxes BIGINT;
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    -- Lock the batch's mailbox rows in key order, creating the missing ones, in one statement:
    -- a row that another transaction deletes meanwhile (its mailbox emptied) is made again, not
    -- skipped (looking the rows up, then locking them, missed such a row).
    WITH locked AS (
        INSERT INTO relay_mailboxes AS m (mailbox, envelopes, bytes)
            SELECT DISTINCT u.x, 0::BIGINT, 0::BIGINT FROM unnest(p_mailboxes) AS u(x) ORDER BY 1
            ON CONFLICT (mailbox) DO UPDATE SET envelopes = m.envelopes
            RETURNING m.mailbox
    ) SELECT array_agg(l.mailbox ORDER BY l.mailbox) INTO boxes FROM locked l;
    -- Then one shard that no other transaction holds (or every shard, in shard order).
    IF every_shard THEN
        PERFORM 1 FROM relay_shards s ORDER BY s.shard FOR UPDATE;
        my_shard := pg_backend_pid() % @SHARDS@;
    ELSE
        SELECT s.shard INTO my_shard FROM relay_shards s
            ORDER BY (s.shard + @SHARDS@ - pg_backend_pid() % @SHARDS@) % @SHARDS@
            FOR UPDATE SKIP LOCKED LIMIT 1;
        IF my_shard IS NULL THEN  -- all held: wait for one (a holder waits only in shard order)
            my_shard := pg_backend_pid() % @SHARDS@;
            PERFORM 1 FROM relay_shards s WHERE s.shard = my_shard FOR UPDATE;
        END IF;
    END IF;
    PERFORM relay_fold(boxes, my_shard);
    SELECT array_agg(m.envelopes ORDER BY m.mailbox), array_agg(m.bytes ORDER BY m.mailbox),
           array_agg(m.envelopes = 0 ORDER BY m.mailbox)
        INTO start_envelopes, start_bytes, box_was_empty
        FROM relay_mailboxes m WHERE m.mailbox = ANY (boxes);
    -- Per deposit: is it stored already, the first deposit of the batch with its mailbox and
    -- id, and its mailbox's index in `boxes` (a hash join, not a search per deposit).
    SELECT array_agg(x.known ORDER BY x.o), array_agg(x.first_o ORDER BY x.o),
           array_agg(x.idx ORDER BY x.o)
        INTO known, first_of, box_of
        FROM (SELECT u.o, b.idx, min(u.o) OVER (PARTITION BY u.m, u.i)::INT AS first_o,
                     EXISTS (SELECT 1 FROM relay_envelopes e
                             WHERE e.mailbox = u.m AND e.envelope_id = u.i) AS known
              FROM unnest(p_mailboxes, p_ids) WITH ORDINALITY AS u(m, i, o)
              JOIN unnest(boxes) WITH ORDINALITY AS b(x, idx) ON b.x = u.m) AS x;
    SELECT s.allowance - s.bytes, s.cap INTO room, shard_cap
        FROM relay_shards s WHERE s.shard = my_shard;
    IF every_shard THEN
        used := relay_used();
    END IF;
    LOOP
        box_envelopes := start_envelopes;
        box_bytes := start_bytes;
        outcomes := array_fill(1::SMALLINT, ARRAY[n]);
        ins := '{}';
        added_envelopes := 0;
        added_bytes := 0;
        short := false;
        FOR k IN 1 .. n LOOP
            -- Stored before, or just now by the batch's first deposit of it: a duplicate (1).
            CONTINUE WHEN known[k] OR (first_of[k] <> k AND outcomes[first_of[k]] = 0);
            j := box_of[k];
            size := length(p_cts[k]);
            IF box_envelopes[j] + 1 > p_max_envelopes[k] THEN
                outcomes[k] := 2;
            ELSIF box_bytes[j] + size > p_max_bytes[k] THEN
                outcomes[k] := 3;
            ELSIF every_shard AND used + added_bytes + size > p_relay_max_bytes[k] THEN
                outcomes[k] := 4;
            ELSIF NOT every_shard
                    AND (shard_cap <> p_relay_max_bytes[k] OR added_bytes + size > room) THEN
                short := true;
                EXIT;
            ELSE
                outcomes[k] := 0;
                ins := ins || k;
                box_envelopes[j] := box_envelopes[j] + 1;
                box_bytes[j] := box_bytes[j] + size;
                added_bytes := added_bytes + size;
                added_envelopes := added_envelopes + 1;
            END IF;
        END LOOP;
        EXIT WHEN NOT short;
        -- Past this shard's allowance: take every other shard too, without waiting (a holder of
        -- a shard never waits for one out of shard order, or two could wait for each other),
        -- and decide again on the relay's exact usage; or have the caller call again, waiting.
        SELECT count(*) INTO k FROM (
            SELECT 1 FROM relay_shards s WHERE s.shard <> my_shard FOR UPDATE SKIP LOCKED
        ) AS x;
        IF k < @SHARDS@ - 1 THEN
            RAISE EXCEPTION 'other deposits hold the relay''s usage shards'
                USING ERRCODE = 'lock_not_available';
        END IF;
        every_shard := true;
        used := relay_used();
    END LOOP;
    FOREACH k IN ARRAY ins LOOP
        seqs[k] := nextval('relay_seq');
    END LOOP;
    INSERT INTO relay_envelopes (seq, mailbox, envelope_id, deposited_s, ciphertext)
        SELECT seqs[k], p_mailboxes[k], p_ids[k], p_ts[k], p_cts[k] FROM unnest(ins) AS k;
    UPDATE relay_mailboxes m SET envelopes = u.c, bytes = u.b
        FROM unnest(boxes, box_envelopes, box_bytes) AS u(x, c, b)
        WHERE m.mailbox = u.x AND m.envelopes <> u.c;
    SELECT count(*) INTO added_mailboxes
        FROM unnest(box_was_empty, box_envelopes) AS u(was_empty, c) WHERE u.was_empty AND u.c > 0;
    DELETE FROM relay_mailboxes WHERE mailbox = ANY (boxes) AND envelopes = 0;
    IF added_envelopes > 0 THEN
        UPDATE relay_shards s SET envelopes = s.envelopes + added_envelopes,
            bytes = s.bytes + added_bytes, mailboxes = s.mailboxes + added_mailboxes
            WHERE s.shard = my_shard;
    END IF;
    IF every_shard THEN  -- share out what the cap leaves free; the remainder to this shard
        relay_cap := (SELECT min(c) FROM unnest(p_relay_max_bytes) AS c);
        free := greatest(relay_cap - used - added_bytes, 0);
        UPDATE relay_shards s SET allowance = s.bytes + free / @SHARDS@
            + CASE WHEN s.shard = my_shard THEN free % @SHARDS@ ELSE 0 END, cap = relay_cap;
    END IF;
    IF added_envelopes > 0 THEN
        -- To the processes with a reader of the mailbox (they LISTEN on its channel), in commit
        -- order: the envelope itself, or only its seq when it would not fit a notification.
        PERFORM pg_notify('@CHANNEL_PREFIX@' || md5(p_mailboxes[k]),
            CASE WHEN length(p_cts[k]) <= @MAX_NOTIFIED_BYTES@ THEN
                'e ' || encode(p_mailboxes[k], 'hex') || ' ' || seqs[k] || ' ' || p_ts[k] || ' '
                || encode(p_ids[k], 'hex') || ' '
                || translate(encode(p_cts[k], 'base64'), E'\n', '')
            ELSE 'p ' || encode(p_mailboxes[k], 'hex') || ' ' || seqs[k] END)
            FROM unnest(ins) AS k
            WHERE EXISTS (SELECT 1 FROM relay_watchers w WHERE w.mailbox = p_mailboxes[k]);
    END IF;
    RETURN QUERY SELECT u.o, u.s, t.envelopes, t.bytes, t.mailboxes
        FROM unnest(outcomes, seqs) WITH ORDINALITY AS u(o, s, n), relay_usage() t
        ORDER BY u.n;
END
$$;

CREATE OR REPLACE FUNCTION relay_purge(p_older_than_s BIGINT, p_prefix BYTEA)
RETURNS TABLE (gone BIGINT, envelopes BIGINT, bytes BIGINT, mailboxes BIGINT)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    n BIGINT := 0;
BEGIN
    IF pg_try_advisory_xact_lock(@PURGE_LOCK_KEY@) THEN  -- else another process purges now
        WITH deleted AS (
            DELETE FROM relay_envelopes e
            WHERE e.deposited_s < p_older_than_s
                AND substring(e.mailbox FOR length(p_prefix)) = p_prefix
            RETURNING e.mailbox, length(e.ciphertext)::BIGINT AS size
        ), freed AS (
            INSERT INTO relay_freed (mailbox, envelopes, bytes)
                SELECT d.mailbox, count(*), sum(d.size) FROM deleted d GROUP BY d.mailbox
                RETURNING relay_freed.envelopes
        ) SELECT coalesce(sum(f.envelopes), 0) INTO n FROM freed f;
        PERFORM relay_fold(NULL, NULL);
    END IF;
    RETURN QUERY SELECT n, u.envelopes, u.bytes, u.mailboxes FROM relay_usage() u;
END
$$;
"""


def channel(mailbox_key: bytes) -> str:
    """The notification channel of a mailbox, as relay_deposit names it."""
    return CHANNEL_PREFIX + hashlib.md5(mailbox_key, usedforsecurity=False).hexdigest()


def _fill(script: str) -> str:
    for name, value in (
        ("@PURGE_LOCK_KEY@", PURGE_LOCK_KEY),
        ("@CHANNEL_PREFIX@", CHANNEL_PREFIX),
        ("@MAX_NOTIFIED_BYTES@", MAX_NOTIFIED_BYTES),
        ("@SHARDS@", SHARDS),
    ):
        script = script.replace(name, str(value))
    return script


# Index i holds the script that takes schema version i to i + 1.
MIGRATIONS: Final = (_fill(_SCHEMA_V1), _fill(_SCHEMA_V2))
