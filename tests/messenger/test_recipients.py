"""Every packet the messenger emits names its contact (`recipient_of`), prekey answers too."""

from __future__ import annotations

import os

import pytest

from pigeon.crypto.card import ContactCard
from pigeon.mesh.packet import Packet, PacketType
from pigeon.messenger import endpoint
from pigeon.messenger.envelope import (
    MessageEnvelope,
    PrekeyAnswer,
    PrekeyRequest,
    ShortPrekeyEnvelope,
    decode_envelope,
)

from .helpers import T0, Endpoint, befriend


def exchange(sender: Endpoint, receiver: Endpoint, packets: list[Packet]) -> list[Packet]:
    """Hand `packets` to `receiver`; its answers."""
    answers: list[Packet] = []
    for packet in packets:
        answers += receiver.messenger.handle_packet(packet, T0)
    return answers


def test_every_packet_of_a_conversation_names_its_contact(alice: Endpoint, bob: Endpoint) -> None:
    b_at_a, a_at_b = befriend(alice, bob, T0)
    alice.messenger.send_text(b_at_a, "hi", T0)
    to_bob = alice.messenger.take_outgoing()  # the text, as a pre-key message
    assert [type(decode_envelope(p.payload)) for p in to_bob] == [ShortPrekeyEnvelope]
    assert [alice.messenger.recipient_of(p.packet_id) for p in to_bob] == [b_at_a]
    to_alice = exchange(alice, bob, to_bob)  # the receipt, the notice, bob's session answer
    receipts = [p for p in to_alice if p.type is PacketType.RECEIPT]
    assert receipts
    assert any(p.type is PacketType.NOTICE for p in to_alice)
    envelopes = [p for p in to_alice if p.type is PacketType.ENVELOPE]
    assert [type(decode_envelope(p.payload)) for p in envelopes] == [MessageEnvelope]
    # Receipts stay on the mesh (for the relays holding the envelope); the rest is alice's.
    assert {bob.messenger.recipient_of(p.packet_id) for p in receipts} == {None}
    named = {bob.messenger.recipient_of(p.packet_id) for p in to_alice if p not in receipts}
    assert named == {a_at_b}
    exchange(bob, alice, to_alice)
    assert alice.messenger.conversation(b_at_a)[-1].state == "delivered"
    assert alice.messenger.recipient_of(os.urandom(16)) is None


def test_a_prekey_request_and_its_answer_name_their_contacts(
    alice: Endpoint, bob: Endpoint
) -> None:
    b_at_a, a_at_b = befriend(alice, bob, T0)
    record = alice.messenger._outbox
    assert record is not None
    with alice.messenger._work() as work:
        peer = record.record(work, b_at_a)
        record.save(work, b_at_a, peer, T0)
        request_record = record.request_prekey(work, b_at_a, peer, T0)
        record.save(work, b_at_a, request_record, T0)
    (request,) = alice.messenger.take_outgoing()
    assert isinstance(decode_envelope(request.payload), PrekeyRequest)
    assert alice.messenger.recipient_of(request.packet_id) == b_at_a
    (answer,) = exchange(alice, bob, [request])
    assert isinstance(decode_envelope(answer.payload), PrekeyAnswer)
    assert bob.messenger.recipient_of(answer.packet_id) == a_at_b


def test_recipients_of_stored_envelopes_survive_a_restart(alice: Endpoint, bob: Endpoint) -> None:
    b_at_a, _ = befriend(alice, bob, T0)
    alice.messenger.send_text(b_at_a, "hi", T0)
    (first,) = alice.messenger.take_outgoing()
    alice.close()
    alice.open()
    assert alice.messenger.recipient_of(first.packet_id) is None  # locked
    alice.start(T0)
    assert alice.messenger.recipient_of(first.packet_id) == b_at_a  # from the vault outbox
    assert alice.messenger.contact_mailbox_key(b_at_a) == (
        ContactCard.from_text(bob.messenger.own_card_text()).mailbox_key
    )


def test_the_memory_of_recipients_is_bounded(
    alice: Endpoint, bob: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(endpoint, "RECIPIENTS_KEPT", 2)
    b_at_a, a_at_b = befriend(alice, bob, T0)
    alice.messenger.send_text(b_at_a, "hi", T0)
    replies = exchange(alice, bob, alice.messenger.take_outgoing())
    (notice,) = [p for p in replies if p.type is PacketType.NOTICE]
    assert bob.messenger.recipient_of(notice.packet_id) == a_at_b
    bob.messenger.send_text(a_at_b, "one", T0)
    bob.messenger.send_text(a_at_b, "two", T0)  # bob names two more packets
    assert bob.messenger.recipient_of(notice.packet_id) is None  # forgotten, and not stored
