"""The spool against real SQLCipher files: batches, tags, expiry, the owner's hold, seen-cache."""

import dataclasses
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.store.errors import CorruptStore, StoreError
from pigeon.store.keeper import DataDir, open_spool
from pigeon.store.spool_db import (
    ApplyResult,
    DropEnvelope,
    ExpireEnvelopes,
    SaveSeenCache,
    Spool,
    SpooledEnvelope,
    SpoolOp,
    StoreEnvelope,
)


def envelope(
    n: int,
    tag: bytes = b"t1",
    priority: int = 0,
    expires_at: float = 1000.0,
    held: bool = False,
) -> SpooledEnvelope:
    return SpooledEnvelope(
        packet_id=b"p%03d" % n,
        recipient_tag=tag,
        depositor=f"peer-{n % 2}",
        priority=priority,
        expires_at=expires_at,
        receipt_hash=b"r%03d" % n,
        packet=b"ciphertext %d" % n,
        stored_at=float(n),
        held_for_owner=held,
    )


def test_round_trip_survives_reopen(data_dir: DataDir) -> None:
    spool = open_spool(data_dir)
    original = envelope(1, priority=2)
    assert spool.apply([StoreEnvelope(original)]) == ApplyResult(stored=1)
    spool.close()
    spool = open_spool(data_dir)
    assert spool.envelope(original.packet_id) == original
    assert spool.envelope(b"absent") is None
    spool.close()


def test_duplicates_are_counted_and_keep_the_first(spool: Spool) -> None:
    first = envelope(1)
    again = dataclasses.replace(first, packet=b"other")
    result = spool.apply([StoreEnvelope(first), StoreEnvelope(again)])
    assert result == ApplyResult(stored=1, duplicates=1)
    stored = spool.envelope(first.packet_id)
    assert stored is not None
    assert stored.packet == first.packet


def test_a_batch_mixes_operations_in_order(spool: Spool) -> None:
    spool.apply([StoreEnvelope(envelope(n, expires_at=100.0 + n)) for n in range(10)])
    result = spool.apply(
        [
            DropEnvelope(envelope(0).packet_id),
            DropEnvelope(b"never stored"),
            StoreEnvelope(envelope(20, expires_at=500.0)),
            ExpireEnvelopes(now=104.0),
            SaveSeenCache(b"seen", 104.0),
        ]
    )
    assert result == ApplyResult(stored=1, dropped=1, expired=4)
    assert spool.stats().envelopes == 6
    assert spool.seen_cache() == b"seen"


def test_a_failing_batch_changes_nothing(spool: Spool) -> None:
    spool.apply([StoreEnvelope(envelope(1))])
    bad = dataclasses.replace(envelope(2), packet_id=object())  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="type"):
        spool.apply([DropEnvelope(envelope(1).packet_id), StoreEnvelope(bad)])
    assert spool.envelope(envelope(1).packet_id) is not None


def test_a_value_of_the_wrong_type_is_refused_not_stored(spool: Spool) -> None:
    wrong = dataclasses.replace(envelope(1), packet_id="a str, not bytes")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="cannot store TEXT value in BLOB column"):
        spool.apply([StoreEnvelope(wrong)])
    assert spool.stats().envelopes == 0


def test_by_tags_orders_by_priority_then_age_and_skips_expired_and_held(spool: Spool) -> None:
    spool.apply(
        [
            StoreEnvelope(envelope(1, tag=b"a", priority=0)),
            StoreEnvelope(envelope(2, tag=b"b", priority=5)),
            StoreEnvelope(envelope(3, tag=b"a", priority=5)),
            StoreEnvelope(envelope(4, tag=b"a", expires_at=10.0)),
            StoreEnvelope(envelope(5, tag=b"a", held=True)),
            StoreEnvelope(envelope(6, tag=b"c")),
        ]
    )
    found = spool.by_tags([b"a", b"b"], now=50.0)
    assert [e.packet_id for e in found] == [b"p002", b"p003", b"p001"]
    assert len(spool.by_tags([b"a", b"b"], now=50.0, limit=2)) == 2
    assert spool.by_tags([], now=0.0) == []


def test_owner_held_envelopes_wait_and_never_expire(spool: Spool) -> None:
    spool.apply(
        [
            StoreEnvelope(envelope(1, held=True, expires_at=1.0)),
            StoreEnvelope(envelope(2, expires_at=1.0)),
        ]
    )
    assert spool.apply([ExpireEnvelopes(now=10_000.0)]).expired == 1
    assert [e.packet_id for e in spool.owner_held()] == [b"p001"]
    assert spool.stats().held_for_owner == 1
    spool.apply([DropEnvelope(b"p001")])
    assert spool.owner_held() == []


def test_entries_and_stats_describe_without_bytes(spool: Spool) -> None:
    spool.apply([StoreEnvelope(envelope(n)) for n in range(3)])
    entries = spool.entries()
    assert [e.packet_id for e in entries] == [b"p000", b"p001", b"p002"]
    assert entries[0].size_bytes == len(envelope(0).packet)
    stats = spool.stats()
    assert stats.envelopes == 3
    assert stats.packet_bytes == sum(len(envelope(n).packet) for n in range(3))


def test_seen_cache_is_replaced_not_appended(spool: Spool) -> None:
    assert spool.seen_cache() is None
    spool.apply([SaveSeenCache(b"one", 1.0)])
    spool.apply([SaveSeenCache(b"two", 2.0)])
    assert spool.seen_cache() == b"two"


def test_reprs_hide_packet_bytes() -> None:
    assert "ciphertext" not in repr(envelope(1))
    assert "secret" not in repr(SaveSeenCache(b"secret", 0.0))


def test_spool_whose_device_key_is_gone_is_corrupt_and_no_new_key_is_made(
    data_dir: DataDir,
) -> None:
    open_spool(data_dir).close()
    data_dir.device_key.unlink()
    with pytest.raises(CorruptStore, match="missing"):
        open_spool(data_dir)
    assert not data_dir.device_key.exists()


def test_spool_that_does_not_open_with_the_device_key_is_corrupt(data_dir: DataDir) -> None:
    open_spool(data_dir).close()
    data_dir.device_key.write_bytes(bytes(32))  # replaced by another key
    with pytest.raises(CorruptStore, match="device key"):
        open_spool(data_dir)


def test_random_bytes_as_spool_is_corrupt(data_dir: DataDir) -> None:
    data_dir.ensure()
    data_dir.spool_db.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(CorruptStore, match=r"spool\.db"):
        open_spool(data_dir)


OPS = st.one_of(
    st.builds(
        lambda n, tag, pr, exp, held: StoreEnvelope(envelope(n, tag, pr, exp, held)),
        st.integers(0, 15),
        st.sampled_from([b"a", b"b"]),
        st.integers(0, 3),
        st.floats(0, 100),
        st.booleans(),
    ),
    st.builds(lambda n: DropEnvelope(envelope(n).packet_id), st.integers(0, 15)),
    st.builds(ExpireEnvelopes, st.floats(0, 100)),
)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(OPS, max_size=8), max_size=6))
def test_spool_matches_a_dictionary_model(batches: list[list[SpoolOp]]) -> None:
    model: dict[bytes, SpooledEnvelope] = {}
    with tempfile.TemporaryDirectory() as root:
        spool = open_spool(DataDir(Path(root)))
        for batch in batches:
            spool.apply(batch)
            for op in batch:
                if isinstance(op, StoreEnvelope):
                    model.setdefault(op.envelope.packet_id, op.envelope)
                elif isinstance(op, DropEnvelope):
                    model.pop(op.packet_id, None)
                elif isinstance(op, ExpireEnvelopes):
                    for key in [k for k, e in model.items() if _expires(e, op.now)]:
                        del model[key]
        assert {e.packet_id for e in spool.entries()} == set(model)
        for packet_id, expected in model.items():
            assert spool.envelope(packet_id) == expected
        spool.close()


def _expires(e: SpooledEnvelope, now: float) -> bool:
    return not e.held_for_owner and e.expires_at <= now
