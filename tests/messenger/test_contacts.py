"""Contacts, cards, safety numbers and verification, profile, unread counts, lock commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pigeon.crypto.errors import CryptoError
from pigeon.crypto.safety import format_safety_number
from pigeon.messenger.api import (
    ContactsChanged,
    DuplicateContact,
    InvalidCard,
    InvalidName,
    OwnCard,
    SafetyNumberMismatch,
    UnknownContact,
    VaultLocked,
)
from pigeon.messenger.config import MessengerConfig
from tests.messenger.helpers import PASSPHRASE, T0, Endpoint, Wire, befriend


def test_add_contact_checks_the_card(alice: Endpoint, bob: Endpoint) -> None:
    card = bob.messenger.own_card_text()
    with pytest.raises(InvalidCard) as caught:
        alice.messenger.add_contact(card[:-8], "Bob", T0)
    assert isinstance(caught.value.__cause__, CryptoError)
    with pytest.raises(OwnCard):
        alice.messenger.add_contact(alice.messenger.own_card_text(), "Me", T0)
    with pytest.raises(InvalidName):
        alice.messenger.add_contact(card, " \u202e ", T0)
    view = alice.messenger.add_contact(card.lower(), "  Bob  ", T0)
    assert (view.name, view.id, view.handle, view.verified, view.unread) == (
        "Bob",
        bob.messenger.own_handle(),
        bob.messenger.own_handle(),
        False,
        0,
    )
    with pytest.raises(DuplicateContact):
        alice.messenger.add_contact(card, "Bob again", T0)
    assert [c.name for c in alice.messenger.contacts()] == ["Bob"]


def test_a_blank_name_takes_the_cards_signed_one(alice: Endpoint, bob: Endpoint) -> None:
    with pytest.raises(InvalidName):  # no name on the card, none given
        alice.messenger.add_contact(bob.messenger.own_card_text(), "  ", T0)
    bob.messenger.set_profile("Bob Builder", ())
    view = alice.messenger.add_contact(bob.messenger.own_card_text(), " ", T0)
    assert view.name == "Bob Builder"
    alice.messenger.set_profile("Alice", ())
    given = bob.messenger.add_contact(alice.messenger.own_card_text(), "Ali", T0)
    assert given.name == "Ali"  # a name the owner gives wins over the card's


def test_profile_goes_into_the_card(alice: Endpoint, bob: Endpoint) -> None:
    alice.messenger.set_profile("Alice", ["wss://relay.example/mailbox"])
    view = bob.messenger.add_contact(alice.messenger.own_card_text(), "A.", T0)
    assert view.relays == ("wss://relay.example/mailbox",)
    with pytest.raises(InvalidCard):
        alice.messenger.set_profile("Alice", ["http://not-a-websocket"])


def test_texts_with_a_lone_surrogate_are_typed_errors(alice: Endpoint, bob: Endpoint) -> None:
    card = bob.messenger.own_card_text()
    with pytest.raises(InvalidName):
        alice.messenger.add_contact(card, "B\udc00b", T0)
    bob_id = alice.messenger.add_contact(card, "Bob", T0).id
    with pytest.raises(InvalidName):
        alice.messenger.rename_contact(bob_id, "\ud800")
    with pytest.raises(InvalidCard):
        alice.messenger.set_profile("A\ud800", [])
    with pytest.raises(InvalidCard):
        alice.messenger.set_profile("A", ["wss://relay.example/\udcff"])
    with pytest.raises(SafetyNumberMismatch):
        alice.messenger.mark_verified(bob_id, "1\ud800", T0)
    assert [c.name for c in alice.messenger.contacts()] == ["Bob"]


def test_verification_needs_the_current_safety_number(alice: Endpoint, bob: Endpoint) -> None:
    bob_id, alice_id = befriend(alice, bob, T0)
    number = alice.messenger.safety_number(bob_id)
    assert number == bob.messenger.safety_number(alice_id)  # both sides see the same digits
    assert len(number) == 60
    assert not alice.messenger.contact(bob_id).verified
    wrong = ("1" if number[0] != "1" else "2") + number[1:]
    with pytest.raises(SafetyNumberMismatch):
        alice.messenger.mark_verified(bob_id, wrong, T0)
    with pytest.raises(SafetyNumberMismatch):
        alice.messenger.mark_verified(bob_id, "", T0)
    assert not alice.messenger.contact(bob_id).verified
    alice.messenger.mark_verified(bob_id, format_safety_number(number), T0 + 1)
    assert alice.messenger.contact(bob_id).verified
    assert not bob.messenger.contact(alice_id).verified  # each owner confirms for themselves
    with pytest.raises(UnknownContact):
        alice.messenger.mark_verified("AAAA-AAAA-AAAA-AAAA-AAAA", number, T0)


def test_rename_remove_and_check_in_interval(alice: Endpoint, bob: Endpoint) -> None:
    bob_id, _ = befriend(alice, bob, T0)
    events = alice.messenger.subscribe()
    alice.messenger.rename_contact(bob_id, "Robert")
    alice.messenger.set_check_in_interval(bob_id, 60)
    assert (
        alice.messenger.contact(bob_id).name,
        alice.messenger.contact(bob_id).check_in_interval_s,
    ) == ("Robert", 60)
    with pytest.raises(InvalidName):
        alice.messenger.set_check_in_interval(bob_id, 0)
    alice.messenger.send_text(bob_id, "soon gone", T0)
    alice.messenger.remove_contact(bob_id)
    assert alice.messenger.contacts() == []
    assert alice.messenger.outstanding_envelopes() == []
    with pytest.raises(UnknownContact):
        alice.messenger.conversation(bob_id)
    with pytest.raises(UnknownContact):
        alice.messenger.rename_contact(bob_id, "x")
    assert ContactsChanged() in events.drain()


def test_unread_counts_and_mark_read(alice: Endpoint, bob: Endpoint) -> None:
    wire = Wire(alice, bob)
    bob_id, alice_id = befriend(alice, bob, T0)
    for index in range(3):
        alice.messenger.send_text(bob_id, f"note {index}", T0 + index)
    wire.pump(T0 + 5)
    assert bob.messenger.contact(alice_id).unread == 3
    assert alice.messenger.contact(bob_id).unread == 0  # our own messages are never unread
    bob.messenger.mark_read(alice_id)
    assert bob.messenger.contact(alice_id).unread == 0
    alice.messenger.send_text(bob_id, "one more", T0 + 9)
    wire.pump(T0 + 10)
    view = bob.messenger.contact(alice_id)
    assert (view.unread, view.last_activity) == (1, T0 + 10)


def test_conversation_pages_back(alice: Endpoint, bob: Endpoint) -> None:
    bob_id, _ = befriend(alice, bob, T0)
    for index in range(7):
        alice.messenger.send_text(bob_id, str(index), T0 + index)
    last = alice.messenger.conversation(bob_id, limit=3)
    assert [m.text for m in last] == ["4", "5", "6"]
    before = alice.messenger.conversation(bob_id, before_seq=last[0].seq, limit=3)
    assert [m.text for m in before] == ["1", "2", "3"]


def test_lock_commands(alice: Endpoint) -> None:
    assert alice.messenger.is_initialised
    assert not alice.messenger.is_locked
    alice.messenger.change_passphrase(PASSPHRASE, "new passphrase")
    alice.messenger.lock(T0)
    with pytest.raises(VaultLocked):
        alice.messenger.own_card_text()
    with pytest.raises(VaultLocked):
        alice.messenger.contacts()
    assert alice.messenger.served_tags(T0)  # the last known tags stay served while locked
    alice.messenger.unlock("new passphrase", T0)
    assert not alice.messenger.is_locked
    alice.messenger.set_ephemeral(True)
    assert alice.messenger.ephemeral


def test_ephemeral_history_is_gone_after_restart_but_contacts_stay(
    alice: Endpoint, bob: Endpoint
) -> None:
    bob_id, _ = befriend(alice, bob, T0)
    alice.messenger.set_ephemeral(True)
    alice.messenger.lock(T0)
    alice.messenger.unlock(PASSPHRASE, T0)
    alice.messenger.send_text(bob_id, "fleeting", T0)
    assert len(alice.messenger.conversation(bob_id)) == 1
    alice.messenger.lock(T0)
    alice.messenger.unlock(PASSPHRASE, T0 + 1)
    assert alice.messenger.conversation(bob_id) == []
    assert [c.id for c in alice.messenger.contacts()] == [bob_id]


def test_new_contacts_take_the_configured_check_in_interval(tmp_path: Path, bob: Endpoint) -> None:
    owner = Endpoint(tmp_path / "owner", 9, config=MessengerConfig(check_in_interval_s=60.0))
    owner.start(T0)
    try:
        contact = owner.messenger.add_contact(bob.messenger.own_card_text(), "Bob", T0)
        assert contact.check_in_interval_s == 60.0
    finally:
        owner.close()


def _statements_of(endpoint: Endpoint, call: Callable[[], object]) -> list[str]:
    """The SQL statements `call` runs on the endpoint's vault connection."""
    statements: list[str] = []
    connection = endpoint.keeper.vault._db._live()
    connection.set_trace_callback(statements.append)  # type: ignore[attr-defined]
    try:
        call()
    finally:
        connection.set_trace_callback(None)  # type: ignore[attr-defined]
    return statements


def test_listing_contacts_reads_as_much_for_a_long_history_as_for_a_short_one(
    alice: Endpoint, bob: Endpoint
) -> None:
    wire = Wire(alice, bob)
    bob_id, alice_id = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "first", T0)
    wire.pump(T0 + 1)
    short = _statements_of(bob, bob.messenger.contacts)
    for index in range(250):  # the owner's own texts: never unread, but the history grows
        bob.messenger.send_text(alice_id, f"reply {index}", T0 + 2)
    assert bob.messenger.contact(alice_id).unread == 1
    assert len(_statements_of(bob, bob.messenger.contacts)) == len(short)
