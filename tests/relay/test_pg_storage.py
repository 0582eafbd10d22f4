"""What only PgStore does, on a real PostgreSQL: several stores (processes) on one database share
quotas and hear each other's deposits, one purges at a time, and its schema is versioned."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from pigeon.relay import pg_schema
from pigeon.relay.config import RelayConfigError, parse_relay_config
from pigeon.relay.limits import Quota
from pigeon.relay.pg_storage import PgStore
from pigeon.relay.protocol import ErrorCode
from pigeon.relay.storage import StorageError
from tests.relay.pgserver import PgServer

QUOTA = Quota(mailbox_max_envelopes=100, mailbox_max_bytes=10_000, relay_max_bytes=100_000)
BIG = Quota(mailbox_max_envelopes=100, mailbox_max_bytes=100_000, relay_max_bytes=1_000_000)
ALICE, BOB = b"A" * 32, b"B" * 32


def eid(n: int) -> bytes:
    return n.to_bytes(16, "big")


async def test_quotas_are_shared_by_every_store_on_the_database(pg_server: PgServer) -> None:
    dsn = pg_server.create_database()
    quota = Quota(mailbox_max_envelopes=4, mailbox_max_bytes=10_000, relay_max_bytes=30)
    stores = [await PgStore.open(dsn, quota) for _ in range(2)]
    results = await asyncio.gather(
        *(stores[n % 2].deposit(ALICE, eid(n), b"x", 0) for n in range(10))
    )
    assert sum(r.stored is not None for r in results) == 4
    assert {r.refusal for r in results if r.stored is None} == {ErrorCode.MAILBOX_FULL}
    too_big = await stores[1].deposit(BOB, eid(1), bytes(27), 0)
    assert too_big.refusal is ErrorCode.RELAY_FULL  # 4 + 27 bytes > 30, whichever store asks
    assert await stores[0].delete(ALICE, tuple(eid(n) for n in range(10))) == 4
    assert (await stores[1].deposit(BOB, eid(1), bytes(27), 0)).stored is not None
    for store in stores:
        await store.aclose()


async def test_a_store_hears_deposits_into_the_mailboxes_it_watches(pg_server: PgServer) -> None:
    dsn = pg_server.create_database()
    first, second = await PgStore.open(dsn, QUOTA), await PgStore.open(dsn, BIG)
    envelopes: list[tuple[bytes, bytes]] = []
    pages: list[set[bytes] | None] = []
    second.set_insert_listener(lambda new: envelopes.extend((k, e.ciphertext) for k, e in new))
    second.set_change_listener(pages.append)
    for _ in range(100):
        if second.listening:
            break
        await asyncio.sleep(0.05)
    await second.watch(ALICE)
    pages.clear()
    big = bytes(pg_schema.MAX_NOTIFIED_BYTES + 1)
    await first.deposit(ALICE, eid(1), b"small", 0)
    await first.deposit(BOB, eid(2), b"not watched", 0)
    await second.deposit(ALICE, eid(3), big, 0)  # its own deposits come the same way
    await first.deposit(ALICE, eid(4), b"after", 0)
    for _ in range(100):
        if len(envelopes) == 3:
            break
        await asyncio.sleep(0.02)
    # The big one, too big for a notification, was fetched: still in commit order.
    assert envelopes == [(ALICE, b"small"), (ALICE, big), (ALICE, b"after")]
    assert pages == []
    await second.unwatch(ALICE)
    await first.deposit(ALICE, eid(5), b"unwatched", 0)
    await asyncio.sleep(0.3)
    assert len(envelopes) == 3
    await first.aclose()
    await second.aclose()


async def test_one_store_purges_at_a_time(pg_server: PgServer) -> None:
    dsn = pg_server.create_database()
    store = await PgStore.open(dsn, QUOTA)
    await store.deposit(ALICE, eid(1), b"old", 100)
    other = await asyncpg.connect(dsn)
    async with other.transaction():  # another relay process purging now
        await other.execute("SELECT pg_advisory_xact_lock($1)", pg_schema.PURGE_LOCK_KEY)
        assert await store.purge(200) == 0
    assert await store.purge(200) == 1
    await other.close()
    await store.aclose()


async def test_newer_schema_is_refused(pg_server: PgServer) -> None:
    dsn = pg_server.create_database()
    await (await PgStore.open(dsn, QUOTA)).aclose()
    db = await asyncpg.connect(dsn)
    await db.execute("INSERT INTO relay_schema VALUES ($1)", pg_schema.SCHEMA_VERSION + 1)
    await db.close()
    with pytest.raises(StorageError, match="newer"):
        await PgStore.open(dsn, QUOTA)


async def test_processes_starting_together_migrate_once(pg_server: PgServer) -> None:
    dsn = pg_server.create_database()
    stores = await asyncio.gather(*(PgStore.open(dsn, QUOTA) for _ in range(4)))
    db = await asyncpg.connect(dsn)
    assert await db.fetchval("SELECT count(*) FROM relay_schema") == pg_schema.SCHEMA_VERSION
    await db.close()
    for store in stores:
        await store.aclose()


async def test_an_unreachable_database_is_a_storage_error(pg_server: PgServer) -> None:
    with pytest.raises(StorageError):
        await PgStore.open(f"postgresql://postgres@/none?host={pg_server.root}/absent", QUOTA)
    with pytest.raises(StorageError):
        await PgStore.open(pg_server.dsn("no_such_database"), QUOTA)


async def test_the_database_holds_no_depositor_data(pg_server: PgServer) -> None:
    dsn = pg_server.create_database()
    store = await PgStore.open(dsn, QUOTA)
    await store.deposit(ALICE, eid(1), b"x", 100)
    await store.aclose()
    db = await asyncpg.connect(dsn)
    columns = await db.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
    )
    await db.close()
    assert [tuple(c) for c in columns] == [
        ("relay_envelopes", "seq"),
        ("relay_envelopes", "mailbox"),
        ("relay_envelopes", "envelope_id"),
        ("relay_envelopes", "deposited_s"),
        ("relay_envelopes", "ciphertext"),
        ("relay_freed", "mailbox"),
        ("relay_freed", "envelopes"),
        ("relay_freed", "bytes"),
        ("relay_mailboxes", "mailbox"),
        ("relay_mailboxes", "envelopes"),
        ("relay_mailboxes", "bytes"),
        ("relay_schema", "version"),
        ("relay_shards", "shard"),
        ("relay_shards", "envelopes"),
        ("relay_shards", "bytes"),
        ("relay_shards", "mailboxes"),
        ("relay_shards", "allowance"),
        ("relay_shards", "cap"),
        ("relay_watchers", "mailbox"),
        ("relay_watchers", "pid"),
    ]


def test_the_store_option_takes_a_postgresql_url_and_never_echoes_another() -> None:
    url = "postgresql://relay:secret@db.example/pigeon"
    assert parse_relay_config({"relay": {"store": url}}).store == url
    with pytest.raises(RelayConfigError, match=r"relay\.store") as refused:
        parse_relay_config({"relay": {"store": "mysql://relay:secret@db/pigeon"}})
    assert "secret" not in str(refused.value)


async def test_deposits_nobody_reads_live_notify_nobody(pg_server: PgServer) -> None:
    dsn = pg_server.create_database()
    store = await PgStore.open(dsn, QUOTA)
    spy = await asyncpg.connect(dsn)
    heard: list[object] = []
    await spy.add_listener(pg_schema.channel(ALICE), lambda *args: heard.append(args[-1]))
    await store.deposit(ALICE, eid(1), b"unread", 0)
    for _ in range(100):
        if store.listening:
            break
        await asyncio.sleep(0.05)
    await store.watch(ALICE)
    await store.deposit(ALICE, eid(2), b"read", 0)
    await store.unwatch(ALICE)
    await store.deposit(ALICE, eid(3), b"unread again", 0)
    await asyncio.sleep(0.3)
    assert len(heard) == 1
    assert str(heard[0]).startswith("e ")
    await spy.close()
    await store.aclose()


async def test_an_open_store_hears_from_its_first_watch_however_slow_its_listener_connects(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = pg_server.create_database()
    connect = asyncpg.connect

    async def slow_connect(*args: object, **kwargs: object) -> object:
        await asyncio.sleep(0.5)  # a loaded machine: the listener connects after open returned
        return await connect(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncpg, "connect", slow_connect)
    store = await PgStore.open(dsn, QUOTA)
    heard: list[bytes] = []
    store.set_insert_listener(lambda new: heard.extend(e.envelope_id for _, e in new))
    await store.watch(ALICE)
    await store.deposit(ALICE, eid(1), b"x", 0)
    for _ in range(100):
        if heard:
            break
        await asyncio.sleep(0.02)
    assert heard == [eid(1)]
    await store.unwatch(ALICE)
    await store.aclose()
