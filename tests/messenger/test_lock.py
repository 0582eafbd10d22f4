"""Locking the vault leaves no copy of the identity's Noise static key in any cache."""

from __future__ import annotations

from pigeon.crypto.noise import is_static_key_cached
from tests.messenger.helpers import PASSPHRASE, T0, Endpoint, Wire, befriend


def test_lock_clears_the_noise_static_key_cache(alice: Endpoint, bob: Endpoint) -> None:
    wire = Wire(alice, bob)
    bob_id, _ = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "hello", T0)
    wire.pump(T0 + 1)  # a full handshake: both static keys were used and cached
    identity = alice.messenger._identity
    assert identity is not None
    static_private = identity.noise_static_private
    assert is_static_key_cached(static_private)
    alice.messenger.lock(T0 + 2)
    assert not is_static_key_cached(static_private)
    assert alice.messenger._sessions is None  # no parsed session outlives the lock either
    # Unlocking again works: the key is derived afresh from the vault.
    alice.messenger.unlock(PASSPHRASE, T0 + 3)
    alice.messenger.send_text(bob_id, "again", T0 + 4)
    wire.pump(T0 + 5)
    assert [m.state for m in alice.messenger.conversation(bob_id)] == ["delivered", "delivered"]
