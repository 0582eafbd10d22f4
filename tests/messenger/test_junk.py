"""Junk from strangers who hold the owner's card: routed by tag, budgeted, never a search.

The intro tag is public (anyone with the card computes it) and the owner's relay mailbox takes
deposits from anyone, so junk arrives there at will. What a junk envelope may cost is counted
here in the work that matters: Olm session decrypt attempts, account operations (a pre-key
message opening a session: three or four X25519 exchanges) and signature checks, never in
seconds (bench/bench_junk.py measures those).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from pigeon.crypto import app_bundle
from pigeon.crypto.app_bundle import AppIdentityBundle
from pigeon.crypto.card import ContactCard
from pigeon.crypto.olm_account import OlmAccount
from pigeon.crypto.olm_session import OlmSession
from pigeon.mesh.packet import Packet
from pigeon.messenger import inbox
from pigeon.messenger.endpoint import HELD_SLICE
from pigeon.messenger.first_contact import FirstContactPolicy, relay_source
from tests.messenger.helpers import PASSPHRASE, T0, Endpoint, Wire, befriend
from tests.messenger.junk import forged_prekey, intro_tag_at, junk_message, stranger_prekey

DAY_S = 86_400.0
RELAY = relay_source("ws://relay.example/v1")


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts session decrypts, account operations and signature checks from now on."""
    counts: Counter[str] = Counter()

    def counting(name: str, original: object) -> object:
        def wrapper(*args: object, **kwargs: object) -> object:
            counts[name] += 1
            return original(*args, **kwargs)  # type: ignore[operator]

        return wrapper

    monkeypatch.setattr(
        OlmSession, "decrypt_message", counting("decrypts", OlmSession.decrypt_message)
    )
    monkeypatch.setattr(OlmAccount, "open_inbound", counting("opens", OlmAccount.open_inbound))
    monkeypatch.setattr(app_bundle, "verify", counting("verifies", app_bundle.verify))
    monkeypatch.setattr(inbox, "verify", counting("verifies", inbox.verify))
    return counts


@pytest.fixture
def friends(tmp_path: Path) -> Iterator[list[Endpoint]]:
    """Three contacts of Bob's (Bob is made by the `bob` fixture)."""
    endpoints = [Endpoint(tmp_path / f"friend{index}", 10 + index) for index in range(3)]
    for endpoint in endpoints:
        endpoint.start(T0)
    yield endpoints
    for endpoint in endpoints:
        endpoint.close()


def converse(bob: Endpoint, friend: Endpoint, now: float) -> None:
    """Bob and `friend` set up a session and each writes to the other's session tag."""
    wire = Wire(friend, bob)
    bob_id, friend_id = befriend(friend, bob, now)
    friend.messenger.send_text(bob_id, "hello", now)
    wire.pump(now)
    bob.messenger.send_text(friend_id, "hi", now + 1)
    friend.messenger.send_text(bob_id, "on your session tag now", now + 1)
    wire.pump(now + 1)


def intro_tag(endpoint: Endpoint, now: float) -> bytes:
    return intro_tag_at(endpoint.messenger.own_card_text(), now)


def olm_identity(endpoint: Endpoint) -> AppIdentityBundle:
    prekey = ContactCard.from_text(endpoint.messenger.own_card_text()).prekey
    assert prekey is not None
    return prekey.identity


def test_a_normal_message_on_the_intro_tag_is_dropped_unread(
    bob: Endpoint, friends: list[Endpoint], work: Counter[str]
) -> None:
    friends[2].messenger.add_contact(bob.messenger.own_card_text(), "Bob", T0)
    converse(bob, friends[0], T0)
    befriend(friends[1], bob, T0)  # a brand-new contact, who has not written yet
    tag = intro_tag(bob, T0 + 2)
    work.clear()
    for _ in range(5):
        bob.messenger.handle_packet(junk_message(tag, T0 + 2), T0 + 2, RELAY)
    assert work == Counter()  # no session of anyone's is tried
    assert bob.messenger.stats["dropped_intro_not_first_contact"] == 5


def test_a_strangers_prekey_message_costs_no_public_key_work(
    bob: Endpoint, friends: list[Endpoint], work: Counter[str]
) -> None:
    for friend in friends:
        converse(bob, friend, T0)
    card = bob.messenger.own_card_text()
    junk = [stranger_prekey(card, intro_tag(bob, T0 + 2), T0 + 2) for _ in range(5)]
    work.clear()
    bob.messenger.handle_packets(junk, T0 + 2, RELAY)
    assert work == Counter()
    assert bob.messenger.stats["unknown_sender"] == 5


def test_prekey_messages_naming_a_contact_are_budgeted_before_any_public_key_work(
    alice: Endpoint, bob: Endpoint, work: Counter[str]
) -> None:
    bob_id, alice_id = befriend(alice, bob, T0)
    card, sender, tag = bob.messenger.own_card_text(), olm_identity(alice), intro_tag(bob, T0)
    junk = [forged_prekey(sender, card, tag, T0) for _ in range(70)]
    work.clear()
    bob.messenger.handle_packets(junk, T0, RELAY)
    burst = int(FirstContactPolicy().source_burst)
    assert work["opens"] == burst  # one account operation each, and only within the budget
    assert work["decrypts"] == 0
    assert work["verifies"] <= 3 * burst  # the binding; the one-time key answers it signs
    assert bob.messenger.stats["first_contact_over_budget"] == 70 - burst
    assert bob.messenger.conversation(alice_id) == []
    wire = Wire(alice, bob)  # the flood came by one relay: the mesh stays open
    alice.messenger.send_text(bob_id, "a real first contact, by radio", T0 + 1)
    wire.pump(T0 + 1)
    assert [v.text for v in bob.messenger.conversation(alice_id)] == [
        "a real first contact, by radio"
    ]


def test_prekey_messages_of_a_session_we_hold_take_no_account_operation(
    alice: Endpoint, bob: Endpoint, work: Counter[str]
) -> None:
    bob_id, alice_id = befriend(alice, bob, T0)
    for n in range(3):
        alice.messenger.send_text(bob_id, f"first words {n}", T0)
    first = alice.messenger.take_outgoing()
    assert len(first) == 3  # all pre-key messages, sent at once: no round trip
    work.clear()
    bob.messenger.handle_packets(first, T0 + 1)
    assert work["opens"] == 1
    assert [v.text for v in bob.messenger.conversation(alice_id)] == [
        f"first words {n}" for n in range(3)
    ]


def test_a_replayed_prekey_message_opens_nothing(
    alice: Endpoint, bob: Endpoint, work: Counter[str]
) -> None:
    bob_id, alice_id = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "once", T0)
    (packet,) = alice.messenger.take_outgoing()
    bob.messenger.handle_packet(packet, T0 + 1)
    bob.close()
    bob.open()
    bob.start(T0 + 2)
    bob.messenger.handle_packet(packet, T0 + 3)  # the same packet: claimed in the vault
    assert bob.messenger.stats["duplicates"] == 1
    # The same pre-key message in a new packet: its session's key was used, so nothing opens.
    rewrapped = Packet(
        type=packet.type,
        ttl=packet.ttl,
        recipient_tag=packet.recipient_tag,
        expires_at_s=packet.expires_at_s + 1,
        payload=packet.payload,
        flags=packet.flags,
        receipt_hash=packet.receipt_hash,
    )
    work.clear()
    bob.messenger.handle_packet(rewrapped, T0 + 4)
    assert work["opens"] == 0
    assert [v.text for v in bob.messenger.conversation(alice_id)] == ["once"]


def test_an_envelope_for_a_tag_we_do_not_serve_is_dropped_unread(
    bob: Endpoint, friends: list[Endpoint], work: Counter[str]
) -> None:
    """A relay mailbox takes any tag: the messenger checks it as the router does."""
    for friend in friends:
        converse(bob, friend, T0)
    work.clear()
    for index in range(5):
        junk = junk_message(random.Random(index).randbytes(16), T0 + 2)
        assert bob.messenger.handle_packet(junk, T0 + 2, RELAY) == []
    assert work == Counter()
    assert bob.messenger.stats["unserved_tag"] == 5
    assert bob.spool.stats().held_for_owner == 0


def test_envelopes_held_while_locked_are_processed_a_slice_at_a_time(
    alice: Endpoint, bob: Endpoint, work: Counter[str]
) -> None:
    befriend(alice, bob, T0)
    card = bob.messenger.own_card_text()
    tag, sender = intro_tag(bob, T0 + 1), olm_identity(alice)
    junk = [forged_prekey(sender, card, tag, T0 + 1) for _ in range(100)]
    bob.messenger.lock(T0 + 1)
    bob.messenger.handle_packets(junk, T0 + 1)
    work.clear()
    bob.messenger.unlock(PASSPHRASE, T0 + 2)
    assert work["opens"] <= HELD_SLICE  # the event loop gets control back soon
    assert bob.messenger.held_pending
    while bob.messenger.held_pending:
        before = work["opens"]
        bob.messenger.process_held(T0 + 2)
        assert work["opens"] - before <= HELD_SLICE
    assert bob.spool.stats().held_for_owner == 0
