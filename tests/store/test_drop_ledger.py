"""The gateway's drop ledger in the spool: what it keeps, for how long, and how many."""

from __future__ import annotations

from pigeon.store.courier_db import HeldRow
from pigeon.store.drop_ledger import DropLedger, Mark
from pigeon.store.keeper import DataDir, open_spool
from pigeon.store.spool_db import Spool

NOW = 1_800_000_000.0


def held(identity: bytes) -> HeldRow:
    return HeldRow(identity, b"\x7a" * 16, int(NOW * 1000) + 3_600_000, b"sealed", 4, None,
                   b"\xde" * 32, NOW, NOW + 3600)  # fmt: skip


def test_marks_survive_a_reopen_and_expire_with_their_envelopes(
    spool: Spool, data_dir: DataDir
) -> None:
    ledger = spool.drop_ledger()
    ledger.note(Mark.PARKED, b"p" * 32, NOW, NOW + 60)
    ledger.note(Mark.DELIVERED, b"d" * 32, NOW, NOW + 60)
    spool.close()
    reopened = open_spool(data_dir)
    try:
        ledger = reopened.drop_ledger()
        assert ledger.parked(NOW + 1) == {b"p" * 32: NOW}
        assert ledger.was_delivered(b"d" * 32, NOW + 1)
        assert not ledger.was_delivered(b"p" * 32, NOW + 1)  # parked is not delivered
        assert ledger.parked(NOW + 60) == {}
        assert not ledger.was_delivered(b"d" * 32, NOW + 60)
        ledger.note(Mark.DELIVERED, b"e" * 32, NOW + 61, NOW + 120)  # a write sweeps the rest
        assert (ledger.count(Mark.PARKED), ledger.count(Mark.DELIVERED)) == (0, 1)
    finally:
        reopened.close()


def test_delivered_rows_are_capped_oldest_first(spool: Spool) -> None:
    ledger = DropLedger(spool._db, max_delivered=3)
    for n in range(5):
        ledger.note(Mark.DELIVERED, bytes([n]) * 32, NOW + n, NOW + 3600)
    assert ledger.count(Mark.DELIVERED) == 3
    assert [ledger.was_delivered(bytes([n]) * 32, NOW) for n in range(5)] == [
        False, False, True, True, True,
    ]  # fmt: skip


def test_the_shelf_records_hand_overs_and_drops_parked_rows_with_their_envelopes(
    spool: Spool,
) -> None:
    shelf, ledger = spool.courier_shelf(), spool.drop_ledger()
    shelf.apply([held(b"a" * 32), held(b"b" * 32)], [])
    ledger.note(Mark.PARKED, b"a" * 32, NOW, NOW + 3600)
    ledger.note(Mark.PARKED, b"b" * 32, NOW, NOW + 3600)
    shelf.apply([], [b"a" * 32], [(b"a" * 32, NOW + 5, NOW + 7200)])
    assert [row.identity for row in shelf.load()] == [b"b" * 32]
    assert ledger.parked(NOW + 5) == {b"b" * 32: NOW}
    assert ledger.was_delivered(b"a" * 32, NOW + 3600)  # until the envelope's own expiry
