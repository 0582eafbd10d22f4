"""Locking the vault leaves no parsed Olm account or session (they hold secrets) in memory."""

from __future__ import annotations

from tests.messenger.helpers import PASSPHRASE, T0, Endpoint, Wire, befriend


def test_lock_drops_every_parsed_olm_account_and_session(alice: Endpoint, bob: Endpoint) -> None:
    wire = Wire(alice, bob)
    bob_id, _ = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "hello", T0)
    wire.pump(T0 + 1)
    ops = alice.messenger._sessions
    assert ops is not None
    assert ops._account is not None
    assert ops._cache  # parsed sessions, cached by their stored bytes
    alice.messenger.lock(T0 + 2)
    assert ops._account is None
    assert not ops._cache
    assert alice.messenger._sessions is None
    # Unlocking again works: everything is read afresh from the vault.
    alice.messenger.unlock(PASSPHRASE, T0 + 3)
    alice.messenger.send_text(bob_id, "again", T0 + 4)
    wire.pump(T0 + 5)
    assert [m.state for m in alice.messenger.conversation(bob_id)] == ["delivered", "delivered"]
