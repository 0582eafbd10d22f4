"""Prekeys: requested when a card has none, one-time keys spent atomically with what they open,
the fallback key rotated on its schedule (the previous one still opens)."""

from __future__ import annotations

import pytest

from pigeon.crypto.card import ContactCard
from pigeon.crypto.olm_account import FALLBACK_ROTATION_S
from pigeon.messenger.envelope import PrekeyAnswer, PrekeyRequest, decode_envelope
from pigeon.messenger.olm_ops import OlmOps
from pigeon.store.errors import StoreError
from pigeon.store.vault import VaultTransaction
from tests.messenger.helpers import T0, Endpoint, Wire, befriend


def forget_card_prekey(endpoint: Endpoint, contact_id: str) -> None:
    """Store the contact's card as a version 1 card (as a card made before Olm would be)."""
    vault = endpoint.keeper.vault
    card = ContactCard.from_bytes(vault.contact(contact_id).card)
    old = bytes([1]) + card.bundle.to_bytes()
    with vault.transaction() as tx:
        tx._tx.execute("UPDATE contacts SET card = ? WHERE contact_id = ?", (old, contact_id))


def unused_one_time_keys(endpoint: Endpoint) -> int:
    ops = endpoint.messenger._sessions
    assert isinstance(ops, OlmOps)
    with endpoint.keeper.vault.transaction() as tx:
        return ops.account(tx, T0).unused_one_time_keys


def test_a_contact_without_prekey_is_asked_and_the_one_time_key_opens_once(
    alice: Endpoint, bob: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob_id, alice_id = befriend(alice, bob, T0)
    forget_card_prekey(alice, bob_id)
    alice.messenger.send_text(bob_id, "asked first", T0)
    (request,) = alice.messenger.take_outgoing()
    assert isinstance(decode_envelope(request.payload), PrekeyRequest)
    (answer,) = bob.messenger.handle_packet(request, T0 + 1)
    assert isinstance(decode_envelope(answer.payload), PrekeyAnswer)
    assert unused_one_time_keys(bob) == 1
    (first,) = alice.messenger.handle_packet(answer, T0 + 2)  # the session opens, the text goes
    # Bob's vault refuses the transaction that would store the text: the key stays unspent.
    original = VaultTransaction.append_message

    def failing(self: VaultTransaction, message: object) -> int:
        raise StoreError("disk full")

    monkeypatch.setattr(VaultTransaction, "append_message", failing)
    assert bob.messenger.handle_packet(first, T0 + 3) == []
    assert bob.spool.stats().held_for_owner == 1  # kept for later, unacknowledged
    assert unused_one_time_keys(bob) == 1
    monkeypatch.setattr(VaultTransaction, "append_message", original)
    while bob.messenger.held_pending:
        bob.messenger.process_held(T0 + 4)
    assert [v.text for v in bob.messenger.conversation(alice_id)] == ["asked first"]
    assert unused_one_time_keys(bob) == 0  # spent with the message it opened


def test_the_fallback_key_rotates_and_the_previous_one_still_opens(
    alice: Endpoint, bob: Endpoint
) -> None:
    bob_id, alice_id = befriend(alice, bob, T0)  # alice holds bob's card from T0
    before = ContactCard.from_text(bob.messenger.own_card_text()).prekey
    later = T0 + FALLBACK_ROTATION_S + 1
    bob.messenger.tick(later)
    after = ContactCard.from_text(bob.messenger.own_card_text()).prekey
    assert before is not None
    assert after is not None
    assert after.prekey != before.prekey
    wire = Wire(alice, bob)
    alice.messenger.send_text(bob_id, "to last week's key", later)
    wire.pump(later)
    assert [v.text for v in bob.messenger.conversation(alice_id)] == ["to last week's key"]
