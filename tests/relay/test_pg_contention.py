"""PgStore under contention, on a real PostgreSQL: deposits of several processes do not wait for
each other's commits unless they share a mailbox, the relay-wide cap stays exact although its
counts are spread over shards, and a deposit survives its mailbox row being deleted meanwhile."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from pigeon.relay import pg_schema
from pigeon.relay.limits import Quota
from pigeon.relay.pg_storage import PgStore
from pigeon.relay.protocol import ErrorCode
from tests.relay.pgserver import PgServer

BIG = Quota(mailbox_max_envelopes=100, mailbox_max_bytes=100_000, relay_max_bytes=1_000_000)
ALICE, BOB = b"A" * 32, b"B" * 32
_ANOTHER_PROCESS_DEPOSITS = "SELECT * FROM relay_deposit($1, $2, $3, $4, $5, $6, $7)"


def eid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def key(n: int) -> bytes:
    return n.to_bytes(32, "big")


async def _until_a_backend_waits_for_a_lock(dsn: str) -> None:
    watcher = await asyncpg.connect(dsn)
    try:
        for _ in range(200):
            waiting = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            )
            if waiting:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("no deposit came to wait for the mailbox row")
    finally:
        await watcher.close()


async def test_a_deposit_is_stored_when_its_mailbox_row_is_deleted_while_it_waits(
    pg_server: PgServer,
) -> None:
    dsn = pg_server.create_database()
    store = await PgStore.open(dsn, BIG)
    assert (await store.deposit(ALICE, eid(1), b"read and acked", 0)).stored is not None
    other = await asyncpg.connect(dsn)
    async with other.transaction():  # another process empties the mailbox and drops its row
        await other.execute("SELECT 1 FROM relay_mailboxes WHERE mailbox = $1 FOR UPDATE", ALICE)
        deposit = asyncio.create_task(store.deposit(ALICE, eid(2), b"new", 0))
        await _until_a_backend_waits_for_a_lock(dsn)
        await other.execute("DELETE FROM relay_envelopes WHERE mailbox = $1", ALICE)
        await other.execute("DELETE FROM relay_mailboxes WHERE mailbox = $1", ALICE)
    await other.close()
    result = await deposit  # it was refused with STORAGE_FAILED: the row it locked was gone
    assert result.stored is not None
    assert [e.envelope_id for e in await store.pending(ALICE, 0, 10, 0)] == [eid(2)]
    await store.aclose()


async def test_deposits_into_other_mailboxes_do_not_wait_for_a_deposit_still_committing(
    pg_server: PgServer,
) -> None:
    dsn = pg_server.create_database()
    store = await PgStore.open(dsn, BIG)
    assert (await store.deposit(BOB, eid(1), b"first", 0)).stored is not None
    other = await asyncpg.connect(dsn)
    async with other.transaction():  # another process's batch, between its insert and commit
        rows = await other.fetch(
            _ANOTHER_PROCESS_DEPOSITS,
            [ALICE], [eid(2)], [b"a"], [0], [100], [100_000], [1_000_000],
        )  # fmt: skip
        assert rows[0][0] == pg_schema.OUTCOME_STORED
        # It held the one relay-wide counts row until its commit: this deposit waited for it.
        async with asyncio.timeout(5):
            assert (await store.deposit(BOB, eid(3), b"beside it", 0)).stored is not None
    await other.close()
    assert len(await store.pending(ALICE, 0, 10, 0)) == 1
    assert len(await store.pending(BOB, 0, 10, 0)) == 2
    await store.aclose()


async def test_a_purge_and_its_fold_do_not_wait_for_a_deposit_still_committing(
    pg_server: PgServer,
) -> None:
    dsn = pg_server.create_database()
    store = await PgStore.open(dsn, BIG)
    assert (await store.deposit(ALICE, eid(1), b"acked", 100)).stored is not None
    assert await store.delete(ALICE, (eid(1),)) == 1  # freed, not folded into the counts yet
    other = await asyncpg.connect(dsn)
    async with other.transaction():  # another process's batch into the mailbox, not committed
        await other.fetch(
            _ANOTHER_PROCESS_DEPOSITS,
            [ALICE], [eid(2)], [b"new"], [100], [100], [100_000], [1_000_000],
        )  # fmt: skip
        # The fold after a purge (every process's background fold too) locked every mailbox
        # with freed space, and the counts row: it waited for this commit, and deposits for it.
        async with asyncio.timeout(5):
            assert await store.purge(50) == 0
    await other.close()
    assert [e.envelope_id for e in await store.pending(ALICE, 0, 10, 0)] == [eid(2)]
    await store.aclose()


@pytest.mark.parametrize("relay_max_bytes", [1_000, 16_000])  # 1 and 10 envelopes a shard
async def test_the_relay_cap_is_exact_whichever_processes_and_shards_deposit(
    pg_server: PgServer, relay_max_bytes: int
) -> None:
    dsn = pg_server.create_database()
    quota = Quota(
        mailbox_max_envelopes=100, mailbox_max_bytes=100_000, relay_max_bytes=relay_max_bytes
    )
    stores = [await PgStore.open(dsn, quota) for _ in range(3)]
    fits = relay_max_bytes // 100
    results = await asyncio.gather(
        *(stores[n % 3].deposit(key(n % 50), eid(n), bytes(100), 0) for n in range(fits + 40))
    )
    stored = [n for n, r in enumerate(results) if r.stored is not None]
    assert len(stored) == fits  # never more, and none refused early: nothing was freed yet
    assert {r.refusal for r in results if r.stored is None} == {ErrorCode.RELAY_FULL}
    # Room an ack frees (on any process, not folded yet) takes a deposit on any other.
    gone = stored[0]
    assert await stores[1].delete(key(gone % 50), (eid(gone),)) == 1
    assert (await stores[2].deposit(key(7), eid(10_000), bytes(100), 0)).stored is not None
    assert (await stores[0].deposit(key(8), eid(10_001), bytes(1), 0)).refusal is (
        ErrorCode.RELAY_FULL
    )
    for store in stores:
        await store.aclose()


async def test_a_deposit_past_its_shards_allowance_waits_for_the_shards_others_hold(
    pg_server: PgServer,
) -> None:
    dsn = pg_server.create_database()
    store = await PgStore.open(dsn, BIG)  # a fresh database: no shard has an allowance yet
    other = await asyncpg.connect(dsn)
    async with other.transaction():  # another process's deposit holds shard 0
        await other.execute("SELECT 1 FROM relay_shards WHERE shard = 0 FOR UPDATE")
        deposit = asyncio.create_task(store.deposit(ALICE, eid(1), b"x", 0))
        await _until_a_backend_waits_for_a_lock(dsn)  # called again, waiting for every shard
        assert not deposit.done()
    await other.close()
    assert (await deposit).stored is not None
    assert store.healthy()
    await store.aclose()


async def test_a_schema_1_database_keeps_its_envelopes_and_counts(pg_server: PgServer) -> None:
    dsn = pg_server.create_database()
    db = await asyncpg.connect(dsn)
    await db.execute("CREATE TABLE relay_schema (version INT NOT NULL)")
    await db.execute(pg_schema.MIGRATIONS[0])
    await db.execute("INSERT INTO relay_schema (version) VALUES (1)")
    await db.fetch(
        _ANOTHER_PROCESS_DEPOSITS,
        [ALICE, BOB], [eid(1), eid(2)], [bytes(10), bytes(20)], [0, 0],
        [100, 100], [100_000, 100_000], [1_000_000, 1_000_000],
    )  # fmt: skip
    await db.close()
    store = await PgStore.open(dsn, Quota(100, 100_000, relay_max_bytes=40))
    stats = store.stats()
    assert (stats.envelopes, stats.bytes, stats.mailboxes) == (2, 30, 2)
    assert (await store.deposit(BOB, eid(3), bytes(11), 0)).refusal is ErrorCode.RELAY_FULL
    assert (await store.deposit(BOB, eid(4), bytes(10), 0)).stored is not None
    assert [e.envelope_id for e in await store.pending(ALICE, 0, 10, 0)] == [eid(1)]
    await store.aclose()
