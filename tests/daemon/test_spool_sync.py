"""Persisting the router's carried packets and seen-cache in a real spool database."""

from __future__ import annotations

import random
import time
from pathlib import Path

from pigeon.daemon.spool_sync import SpoolSync, load_seen_cache
from pigeon.mesh.events import LocalSend, Tick
from pigeon.mesh.packet import Packet, PacketType
from pigeon.mesh.receipt import receipt_hash
from pigeon.mesh.router import Router, RouterConfig
from pigeon.store.keeper import DataDir, open_spool
from pigeon.store.spool_db import DropEnvelope, SaveSeenCache


def envelope(name: bytes, now: float, lifetime_s: float = 3600) -> Packet:
    return Packet(
        type=PacketType.ENVELOPE,
        recipient_tag=b"T" * 8,
        expires_at_s=int(now + lifetime_s),
        payload=b"ciphertext " + name,
        receipt_hash=receipt_hash(b"s" * 16),
    )


def stored_ids(data_dir: DataDir) -> set[bytes]:
    spool = open_spool(data_dir)
    try:
        return {e.packet_id for e in spool.entries() if not e.held_for_owner}
    finally:
        spool.close()


def test_carried_envelopes_and_the_seen_cache_survive_a_restart(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path)
    now = time.time()
    spool = open_spool(data_dir)
    router = Router(RouterConfig(), random.Random(1))
    packets = [envelope(bytes([i]), now) for i in range(3)]
    ids = [packet.packet_id for packet in packets]
    for packet in packets:
        router.handle(LocalSend(packet), now)
    sync = SpoolSync(router, spool)
    sync.persist(now)
    spool.close()
    assert stored_ids(data_dir) == set(ids)
    # A new process: the seen-cache comes back, so the same packets count as duplicates.
    spool = open_spool(data_dir)
    seen = load_seen_cache(spool, RouterConfig())
    assert seen is not None
    assert all(seen.check_and_add(packet_id, now) for packet_id in ids)
    spool.close()


def test_what_the_router_let_go_is_dropped_and_older_runs_are_kept(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path)
    now = time.time()
    spool = open_spool(data_dir)
    earlier = Router(RouterConfig(), random.Random(1))
    kept = envelope(b"e", now)
    earlier.handle(LocalSend(kept), now)
    SpoolSync(earlier, spool).persist(now)
    router = Router(RouterConfig(), random.Random(2))
    short = envelope(b"s", now, lifetime_s=5)
    router.handle(LocalSend(short), now)
    sync = SpoolSync(router, spool)
    sync.persist(now)
    assert stored_ids(data_dir) == {kept.packet_id, short.packet_id}
    router.handle(Tick(), now + 10)  # the short-lived envelope expires in the router
    sync.persist(now + 10)
    # Dropped: the one this run carried and let go. Kept: the earlier run's envelope.
    assert stored_ids(data_dir) == {kept.packet_id}
    spool.close()


def test_sync_ops_end_with_the_seen_cache(tmp_path: Path) -> None:
    from pigeon.daemon.spool_sync import sync_ops

    now = time.time()
    router = Router(RouterConfig(), random.Random(1))
    stored = envelope(b"a", now)
    router.handle(LocalSend(stored), now)
    ops = sync_ops(
        router.carried_packets(), {stored.packet_id, b"z" * 16}, {b"z" * 16}, router.seen, now
    )
    assert DropEnvelope(b"z" * 16) in ops
    assert isinstance(ops[-1], SaveSeenCache)
    assert not any(getattr(op, "envelope", None) for op in ops)  # "a" is stored already


def test_a_restarted_router_hands_on_what_the_last_run_carried(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path)
    now = time.time()
    spool = open_spool(data_dir)
    first = Router(RouterConfig(), random.Random(1))
    packets = [envelope(bytes([i]), now) for i in range(3)]
    ids = [packet.packet_id for packet in packets]
    for packet in packets:
        first.handle(LocalSend(packet), now)
    SpoolSync(first, spool).persist(now)
    spool.close()
    # A new process: the spool gives the envelopes back and the router carries them again.
    spool = open_spool(data_dir)
    second = Router(RouterConfig(), random.Random(2), load_seen_cache(spool, RouterConfig()))
    sync = SpoolSync(second, spool)
    assert sync.restore(now + 1) == len(ids)
    assert {c.packet.packet_id for c in second.carried_envelopes()} == set(ids)
    sync.persist(now + 2)  # carried again, so nothing is dropped
    spool.close()
    assert stored_ids(data_dir) == set(ids)


def bytes_written_by_this_process() -> int:
    """What this process has handed to write() so far (Linux /proc/self/io `wchar`)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


def test_an_idle_persist_writes_nothing(tmp_path: Path) -> None:
    # The daemon persists once a minute; on an SD card an idle node must not rewrite the same
    # seen-cache each time (image/wear.sh measured it as the idle node's main writer).
    data_dir = DataDir(tmp_path)
    now = time.time()
    spool = open_spool(data_dir)
    router = Router(RouterConfig(), random.Random(1))
    router.handle(LocalSend(envelope(b"a", now)), now)
    sync = SpoolSync(router, spool)
    sync.persist(now)
    before = bytes_written_by_this_process()
    sync.persist(now + 60)
    sync.persist(now + 120)
    assert bytes_written_by_this_process() == before
    router.handle(LocalSend(envelope(b"b", now)), now + 130)  # a change is still written
    sync.persist(now + 180)
    assert bytes_written_by_this_process() > before
    spool.close()
    assert len(stored_ids(data_dir)) == 2


def test_a_restarted_node_does_not_resave_an_unchanged_seen_cache(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path)
    now = time.time()
    spool = open_spool(data_dir)
    SpoolSync(Router(RouterConfig(), random.Random(1)), spool).persist(now)
    again = Router(RouterConfig(), random.Random(2), load_seen_cache(spool, RouterConfig()))
    before = bytes_written_by_this_process()
    SpoolSync(again, spool).persist(now + 60)
    assert bytes_written_by_this_process() == before
    spool.close()
