"""Every packet the messenger emits names its contact (`recipient_of`), handshake replies
through the Hello's sealed reply-to hint."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from pigeon.crypto.card import ContactCard
from pigeon.crypto.identity import Identity
from pigeon.crypto.sealed import seal
from pigeon.mesh.packet import Packet, PacketType
from pigeon.messenger import endpoint
from pigeon.messenger.envelope import Hello, Reply, decode_envelope, encode_envelope

from .helpers import T0, Endpoint, befriend


def exchange(sender: Endpoint, receiver: Endpoint, packets: list[Packet]) -> list[Packet]:
    """Hand `packets` to `receiver`; its answers."""
    answers: list[Packet] = []
    for packet in packets:
        answers += receiver.messenger.handle_packet(packet, T0)
    return answers


def hello_of(packets: list[Packet]) -> tuple[Packet, Hello]:
    (packet,) = [p for p in packets if isinstance(decode_envelope(p.payload), Hello)]
    hello = decode_envelope(packet.payload)
    assert isinstance(hello, Hello)
    return packet, hello


def with_hello(packet: Packet, hello: Hello) -> Packet:
    return replace(packet, payload=encode_envelope(hello))


def test_every_packet_of_a_conversation_names_its_contact(alice: Endpoint, bob: Endpoint) -> None:
    b_at_a, a_at_b = befriend(alice, bob, T0)
    alice.messenger.send_text(b_at_a, "hi", T0)
    to_bob = alice.messenger.take_outgoing()
    assert [alice.messenger.recipient_of(p.packet_id) for p in to_bob] == [b_at_a]
    to_alice = exchange(alice, bob, to_bob)  # message 2, named through the reply-to hint
    assert [type(decode_envelope(p.payload)) for p in to_alice] == [Reply]
    assert [bob.messenger.recipient_of(p.packet_id) for p in to_alice] == [a_at_b]
    to_bob = exchange(bob, alice, to_alice)  # message 3, our tag key, the text
    assert len(to_bob) == 3
    assert {alice.messenger.recipient_of(p.packet_id) for p in to_bob} == {b_at_a}
    to_alice = exchange(alice, bob, to_bob)  # bob's tag key, the receipts and notices
    receipts = [p for p in to_alice if p.type is PacketType.RECEIPT]
    assert receipts
    assert any(p.type is PacketType.NOTICE for p in to_alice)
    # Receipts stay on the mesh (for the relays holding the envelope); the rest is alice's.
    assert {bob.messenger.recipient_of(p.packet_id) for p in receipts} == {None}
    named = {bob.messenger.recipient_of(p.packet_id) for p in to_alice if p not in receipts}
    assert named == {a_at_b}
    exchange(bob, alice, to_alice)
    assert alice.messenger.conversation(b_at_a)[-1].state == "delivered"
    assert alice.messenger.recipient_of(os.urandom(16)) is None


def test_a_hello_without_hint_still_completes_but_names_nobody(
    alice: Endpoint, bob: Endpoint
) -> None:
    b_at_a, _ = befriend(alice, bob, T0)
    alice.messenger.send_text(b_at_a, "hi", T0)
    packet, hello = hello_of(alice.messenger.take_outgoing())
    replies = exchange(alice, bob, [with_hello(packet, replace(hello, reply_to=b""))])
    assert [bob.messenger.recipient_of(p.packet_id) for p in replies] == [None]
    exchange(bob, alice, exchange(alice, bob, exchange(bob, alice, replies)))
    assert bob.messenger.conversation(bob.messenger.contacts()[0].id)[-1].text == "hi"
    assert alice.messenger.conversation(b_at_a)[-1].state == "delivered"


def test_a_forged_or_foreign_hint_names_nobody(alice: Endpoint, bob: Endpoint) -> None:
    b_at_a, _ = befriend(alice, bob, T0)
    alice.messenger.send_text(b_at_a, "hi", T0)
    packet, hello = hello_of(alice.messenger.take_outgoing())
    bob_noise = ContactCard.from_text(bob.messenger.own_card_text()).bundle.noise_static_public
    alice_key = ContactCard.from_text(alice.messenger.own_card_text()).mailbox_key
    stranger = Identity.generate()
    hints = [
        seal(bob_noise, stranger.public_key),  # opens, but names no contact of bob's
        seal(stranger.noise_static_public, alice_key),  # sealed to someone else
        seal(bob_noise, b"\x01" * 5)[:80].ljust(80, b"\x00"),  # garbage
    ]
    for number, hint in enumerate(hints):
        forged = replace(hello, handshake_id=bytes([number + 1]) * 16, reply_to=hint)
        forged_packet = with_hello(packet, forged)  # a new payload: a new packet id
        replies = exchange(alice, bob, [forged_packet])
        assert [bob.messenger.recipient_of(p.packet_id) for p in replies] == [None]
    assert bob.messenger.stats["reply_to_unknown"] == 3


def test_recipients_of_stored_envelopes_survive_a_restart(alice: Endpoint, bob: Endpoint) -> None:
    b_at_a, _ = befriend(alice, bob, T0)
    alice.messenger.send_text(b_at_a, "hi", T0)
    (hello,) = alice.messenger.take_outgoing()
    alice.close()
    alice.open()
    assert alice.messenger.recipient_of(hello.packet_id) is None  # locked
    alice.start(T0)
    assert alice.messenger.recipient_of(hello.packet_id) == b_at_a  # from the vault outbox
    assert alice.messenger.contact_mailbox_key(b_at_a) == (
        ContactCard.from_text(bob.messenger.own_card_text()).mailbox_key
    )


def test_the_memory_of_recipients_is_bounded(
    alice: Endpoint, bob: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(endpoint, "RECIPIENTS_KEPT", 2)
    b_at_a, a_at_b = befriend(alice, bob, T0)
    alice.messenger.send_text(b_at_a, "hi", T0)
    (reply,) = exchange(alice, bob, alice.messenger.take_outgoing())
    assert bob.messenger.recipient_of(reply.packet_id) == a_at_b
    exchange(alice, bob, exchange(bob, alice, [reply]))  # bob names two more packets
    assert bob.messenger.recipient_of(reply.packet_id) is None  # forgotten, and not stored
