"""The store's paged reads reuse their prepared statements instead of compiling them per call.

SQLite calls an authorizer only while it compiles a statement (a first prepare or a re-prepare),
so an authorizer that records its calls sees whether a read compiled anything.
"""

from collections.abc import Callable

import pytest

from pigeon.store.db import Database, limit_clause
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.spool_db import SpooledEnvelope, StoreEnvelope
from pigeon.store.vault_records import Direction, Message, MessageState
from tests.store.conftest import PASSPHRASE

_SQLITE_OK = 0


def _compiles_on_second_read(database: Database, read: Callable[[], object]) -> list[object]:
    compiled: list[object] = []

    def authorizer(*action: object) -> int:
        compiled.append(action)
        return _SQLITE_OK

    database._live().set_authorizer(authorizer)  # type: ignore[attr-defined]
    read()  # setting an authorizer expires every statement: this read compiles once
    compiled.clear()
    read()
    return compiled


def test_a_page_of_messages_is_read_without_compiling_again(keeper: VaultKeeper) -> None:
    vault = keeper.initialise(PASSPHRASE)
    with vault.transaction() as tx:
        tx.add_contact("alice", "Alice", b"card", 1.0)
        for n in range(3):
            message = Message(f"m{n}", "alice", Direction.OUT, MessageState.QUEUED, 1.0, 1.0, "hi")
            tx.append_message(message)
    database = vault._db

    def read() -> None:
        assert len(vault.messages("alice", limit=2)) == 2
        vault.outbox_due(10.0, limit=5)

    assert _compiles_on_second_read(database, read) == []


def test_spool_batches_are_read_without_compiling_again(data_dir: DataDir) -> None:
    spool = open_spool(data_dir)
    try:
        envelope = SpooledEnvelope(b"p1", b"t1", "peer", 0, 1000.0, b"r1", b"packet", 1.0, True)
        spool.apply([StoreEnvelope(envelope)])

        def read() -> None:
            assert len(spool.owner_held(10)) == 1
            spool.by_tags([b"t1"], 2.0, limit=10)

        assert _compiles_on_second_read(spool._db, read) == []
    finally:
        spool.close()


@pytest.mark.parametrize("bad", [-1, True, 2.0])
def test_a_limit_is_a_non_negative_int(bad: object) -> None:
    with pytest.raises(ValueError):
        limit_clause(bad)  # type: ignore[arg-type]
    assert limit_clause(7) == "LIMIT 7"
