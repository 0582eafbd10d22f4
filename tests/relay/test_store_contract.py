"""The relay's storage contract, proven on both backends (SQLite and PostgreSQL): durability
across reopen, duplicates, quotas, expiry, purge, group commit and the insert listener."""

from __future__ import annotations

import asyncio

import pytest

from pigeon.relay.limits import Quota
from pigeon.relay.protocol import ErrorCode
from pigeon.relay.storage import StorageError
from tests.relay.conftest import OpenStore

QUOTA = Quota(mailbox_max_envelopes=100, mailbox_max_bytes=10_000, relay_max_bytes=100_000)
ALICE, BOB = b"A" * 32, b"B" * 32


def eid(n: int) -> bytes:
    return n.to_bytes(16, "big")


async def test_deposit_pending_delete(open_store: OpenStore) -> None:
    store = await open_store(QUOTA)
    first = await store.deposit(ALICE, eid(1), b"one", 100)
    second = await store.deposit(ALICE, eid(2), b"two", 101)
    await store.deposit(BOB, eid(1), b"bob's", 102)
    assert first.stored is not None
    assert second.stored is not None
    assert first.stored.seq < second.stored.seq
    pending = await store.pending(ALICE, 0, 10, 0)
    assert [(e.envelope_id, e.ciphertext) for e in pending] == [(eid(1), b"one"), (eid(2), b"two")]
    assert await store.pending(ALICE, first.stored.seq, 10, 0) == [second.stored]
    assert await store.delete(ALICE, (eid(1), eid(9))) == 1
    assert [e.envelope_id for e in await store.pending(ALICE, 0, 10, 0)] == [eid(2)]
    assert store.stats().envelopes == 2
    assert store.stats().mailboxes == 2
    await store.aclose()


async def test_duplicate_is_neither_stored_twice_nor_refused(open_store: OpenStore) -> None:
    store = await open_store(QUOTA)
    await store.deposit(ALICE, eid(1), b"one", 100)
    again = await store.deposit(ALICE, eid(1), b"one", 100)
    assert again.refusal is None
    assert again.stored is None
    assert store.stats().envelopes == 1
    await store.aclose()


async def test_pending_skips_expired_envelopes_before_any_purge(open_store: OpenStore) -> None:
    store = await open_store(QUOTA)
    await store.deposit(ALICE, eid(1), b"old", 100)
    await store.deposit(ALICE, eid(2), b"new", 200)
    assert [e.envelope_id for e in await store.pending(ALICE, 0, 10, 200)] == [eid(2)]
    assert store.stats().envelopes == 2  # still held until the purge deletes it
    await store.aclose()


async def test_everything_survives_reopen_and_counters_are_rebuilt(open_store: OpenStore) -> None:
    store = await open_store(QUOTA)
    for n in range(5):
        await store.deposit(ALICE, eid(n), b"x" * 10, 100)
    await store.delete(ALICE, (eid(0),))
    await store.aclose()
    store = await open_store(QUOTA)
    pending = await store.pending(ALICE, 0, 10, 0)
    assert [e.envelope_id for e in pending] == [eid(n) for n in range(1, 5)]
    stats = store.stats()
    assert (stats.envelopes, stats.bytes, stats.mailboxes) == (4, 40, 1)
    fresh = await store.deposit(ALICE, eid(0), b"again", 200)
    assert fresh.stored is not None
    assert fresh.stored.seq > 5  # sequence numbers keep growing
    await store.aclose()


async def test_quotas_apply_and_count_freed_space(open_store: OpenStore) -> None:
    quota = Quota(mailbox_max_envelopes=2, mailbox_max_bytes=10, relay_max_bytes=15)
    store = await open_store(quota)
    assert (await store.deposit(ALICE, eid(1), b"12345", 0)).refusal is None
    too_big = await store.deposit(ALICE, eid(2), b"123456", 0)
    assert too_big.refusal is ErrorCode.MAILBOX_BYTES_FULL
    assert (await store.deposit(ALICE, eid(2), b"1", 0)).refusal is None
    assert (await store.deposit(ALICE, eid(3), b"1", 0)).refusal is ErrorCode.MAILBOX_FULL
    assert (await store.deposit(BOB, eid(1), b"1234567890", 0)).refusal is ErrorCode.RELAY_FULL
    await store.delete(ALICE, (eid(1),))
    assert (await store.deposit(ALICE, eid(3), b"1", 0)).refusal is None
    await store.aclose()


async def test_purge_deletes_only_old_envelopes(open_store: OpenStore) -> None:
    store = await open_store(QUOTA)
    await store.deposit(ALICE, eid(1), b"old", 100)
    await store.deposit(BOB, eid(2), b"old too", 150)
    await store.deposit(ALICE, eid(3), b"new", 200)
    assert await store.purge(200) == 2
    assert [e.envelope_id for e in await store.pending(ALICE, 0, 10, 0)] == [eid(3)]
    assert store.stats().mailboxes == 1
    await store.aclose()


async def test_concurrent_deposits_share_transactions(open_store: OpenStore) -> None:
    store = await open_store(QUOTA)
    results = await asyncio.gather(
        *(store.deposit(ALICE if n % 2 else BOB, eid(n), b"x", 0) for n in range(100))
    )
    assert all(r.stored is not None for r in results)
    assert len({r.stored.seq for r in results if r.stored}) == 100
    assert store.stats().commits < 50, store.stats().commits
    await store.aclose()


async def test_closed_store_raises(open_store: OpenStore) -> None:
    store = await open_store(QUOTA)
    await store.aclose()
    await store.aclose()
    assert not store.healthy()
    with pytest.raises(StorageError):
        await store.deposit(ALICE, eid(1), b"x", 0)


async def test_duplicates_within_one_group_commit(open_store: OpenStore) -> None:
    store = await open_store(QUOTA)
    results = await asyncio.gather(
        *(store.deposit(ALICE, eid(n % 3), b"x", 0) for n in range(9)),
        store.deposit(BOB, eid(0), b"y", 0),
    )
    assert sum(r.stored is not None for r in results) == 4
    assert all(r.refusal is None for r in results)
    stats = store.stats()
    assert (stats.envelopes, stats.bytes) == (4, 4)
    assert len(await store.pending(ALICE, 0, 10, 0)) == 3
    await store.aclose()


async def test_insert_listener_hears_new_envelopes_of_watched_mailboxes(
    open_store: OpenStore,
) -> None:
    store = await open_store(QUOTA)
    heard: list[tuple[bytes, bytes]] = []
    store.set_insert_listener(lambda new: heard.extend((k, e.envelope_id) for k, e in new))
    await store.watch(ALICE)
    await store.watch(BOB)
    await store.deposit(ALICE, eid(1), b"x", 0)
    await store.deposit(ALICE, eid(1), b"x", 0)
    await store.deposit(BOB, eid(2), b"y", 0)
    await store.deposit(ALICE, eid(3), b"z", 0)
    for _ in range(100):  # a shared store hears its own deposits as the others do
        if len(heard) >= 3:
            break
        await asyncio.sleep(0.02)
    assert heard == [(ALICE, eid(1)), (BOB, eid(2)), (ALICE, eid(3))]
    await store.unwatch(ALICE)
    await store.unwatch(BOB)
    await store.aclose()


async def test_a_deposit_may_bring_its_own_quota(open_store: OpenStore) -> None:
    store = await open_store(QUOTA)
    tight = Quota(mailbox_max_envelopes=1, mailbox_max_bytes=10_000, relay_max_bytes=100_000)
    assert (await store.deposit(ALICE, eid(1), b"one", 100, tight)).refusal is None
    refused = await store.deposit(ALICE, eid(2), b"two", 100, tight)
    assert refused.refusal is ErrorCode.MAILBOX_FULL
    assert (await store.deposit(ALICE, eid(2), b"two", 100)).refusal is None  # the store's own
    await store.aclose()


async def test_envelopes_carry_their_deposit_second(open_store: OpenStore) -> None:
    store = await open_store(QUOTA)
    result = await store.deposit(ALICE, eid(1), b"one", 1234)
    assert result.stored is not None
    assert result.stored.deposited_s == 1234
    await store.aclose()
    store = await open_store(QUOTA)
    assert [e.deposited_s for e in await store.pending(ALICE, 0, 10, 0)] == [1234]
    await store.aclose()


async def test_purge_can_be_limited_to_a_mailbox_prefix(open_store: OpenStore) -> None:
    store = await open_store(QUOTA)
    app_mailbox = b"pigeon-app/" + ALICE
    await store.deposit(ALICE, eid(1), b"ours", 100)
    await store.deposit(app_mailbox, eid(1), b"app's", 100)
    assert await store.purge(200, b"pigeon-app/") == 1
    assert [e.ciphertext for e in await store.pending(ALICE, 0, 10, 0)] == [b"ours"]
    assert await store.pending(app_mailbox, 0, 10, 0) == []
    assert store.stats().envelopes == 1
    assert await store.purge(200) == 1
    await store.aclose()


async def test_acks_of_one_envelope_at_once_delete_it_once(open_store: OpenStore) -> None:
    store = await open_store(QUOTA)
    await store.deposit(ALICE, eid(1), b"one", 100)
    await store.deposit(ALICE, eid(2), b"two", 100)
    gone = await asyncio.gather(
        store.delete(ALICE, (eid(1), eid(1))),
        store.delete(ALICE, (eid(1), eid(2))),
        store.delete(BOB, (eid(2),)),
    )
    assert gone == [1, 1, 0]
    stats = store.stats()
    assert (stats.envelopes, stats.bytes, stats.mailboxes) == (0, 0, 0)
    await store.aclose()


async def test_closing_writes_what_was_queued_first(open_store: OpenStore) -> None:
    store = await open_store(QUOTA)
    queued = [asyncio.ensure_future(store.deposit(ALICE, eid(n), b"x", 0)) for n in range(20)]
    await asyncio.sleep(0)  # every deposit is queued, the first batch may be under way
    await store.aclose()
    results = [await deposit for deposit in queued]
    assert all(result.stored is not None for result in results)
    store = await open_store(QUOTA)
    assert len(await store.pending(ALICE, 0, 100, 0)) == 20
    await store.aclose()
