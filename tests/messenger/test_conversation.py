"""Two endpoints in direct contact: sessions, texts, files, receipts, dedup, restarts, locks."""

from __future__ import annotations

import dataclasses

import pytest

from pigeon.mesh.packet import PacketType
from pigeon.messenger.api import (
    FileIncomplete,
    InvalidName,
    InvalidText,
    LockChanged,
    MessageAdded,
    MessageTooLarge,
    MessageUpdated,
    UnknownMessage,
    VaultLocked,
    WrongPassphrase,
)
from pigeon.messenger.envelope import MAX_FILE_BYTES, MAX_TEXT_BYTES
from pigeon.messenger.first_contact import FirstContactPolicy
from pigeon.messenger.outbox import RENEW_EVERY
from tests.messenger.helpers import PASSPHRASE, T0, Endpoint, Wire, befriend


def texts(endpoint: Endpoint, contact_id: str) -> list[tuple[str | None, str]]:
    return [(m.text, m.state) for m in endpoint.messenger.conversation(contact_id)]


def test_text_both_ways_is_delivered_with_receipts(alice: Endpoint, bob: Endpoint) -> None:
    wire = Wire(alice, bob)
    bob_id, alice_id = befriend(alice, bob, T0)
    sent = alice.messenger.send_text(bob_id, "hello bob", T0)
    assert sent.state == "queued"
    wire.pump(T0 + 1)
    assert texts(bob, alice_id) == [("hello bob", "received")]
    assert alice.messenger.message(sent.id).state == "delivered"
    bob.messenger.send_text(alice_id, "hi alice ✓", T0 + 2)
    wire.pump(T0 + 3)
    assert texts(alice, bob_id) == [("hello bob", "delivered"), ("hi alice ✓", "received")]
    assert texts(bob, alice_id)[-1] == ("hi alice ✓", "delivered")
    kinds = {(p.type, p.flags) for p in wire.log}
    assert (PacketType.NOTICE, 0) in kinds  # delivery is proven by receipts, not assumed
    assert (PacketType.RECEIPT, 0) in kinds


def test_message_waits_for_the_handshake_and_the_session_survives_restarts(
    alice: Endpoint, bob: Endpoint
) -> None:
    wire = Wire(alice, bob)
    bob_id, alice_id = befriend(alice, bob, T0)
    first = alice.messenger.send_text(bob_id, "one", T0)
    wire.pump(T0, drop=10**6)  # everything is lost: the handshake has to be retried
    assert alice.messenger.message(first.id).state == "queued"
    for endpoint in (alice, bob):  # both processes restart: state comes back from the vault
        endpoint.close()
        endpoint.open()
        endpoint.start(T0 + 10)
    wire.tick(T0 + 2000, alice)  # past the handshake retry: a new initiation goes out
    wire.pump(T0 + 2000)
    assert texts(bob, alice_id) == [("one", "received")]
    assert alice.messenger.message(first.id).state == "delivered"
    bob.close()
    bob.open()
    bob.start(T0 + 2100)
    bob.messenger.send_text(alice_id, "two", T0 + 2100)
    alice.messenger.send_text(bob_id, "three", T0 + 2100)
    wire.pump(T0 + 2101)
    assert [t for t, _ in texts(alice, bob_id)] == ["one", "three", "two"]  # in arrival order
    assert all(state in ("delivered", "received") for _, state in texts(alice, bob_id))


def test_lost_envelopes_are_re_offered_until_delivered(alice: Endpoint, bob: Endpoint) -> None:
    wire = Wire(alice, bob)
    bob_id, _ = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "warm up", T0)
    wire.pump(T0)
    message = alice.messenger.send_text(bob_id, "persistent", T0 + 1)
    wire.pump(T0 + 1, drop=1)
    assert alice.messenger.message(message.id).state == "queued"
    assert wire.tick(T0 + 5, alice) == 0  # not due yet: the first retry is after 30 s
    assert wire.tick(T0 + 40, alice) == 1
    wire.pump(T0 + 40)
    assert alice.messenger.message(message.id).state == "delivered"
    assert alice.messenger.outstanding_envelopes() == []


def test_undelivered_message_fails_when_it_expires(alice: Endpoint, bob: Endpoint) -> None:
    bob_id, _ = befriend(alice, bob, T0)
    message = alice.messenger.send_text(bob_id, "into the void", T0)
    alice.messenger.take_outgoing()
    wire = Wire(alice, bob)
    # The first text left at once as a pre-key message (Bob's card has a prekey): it expires.
    wire.tick(T0 + 24 * 3600 + 1, alice)
    failed = alice.messenger.message(message.id)
    assert failed.state == "failed"
    assert failed.failure_reason is not None
    assert "expired" in failed.failure_reason
    wire.pump(T0 + 24 * 3600 + 1)
    assert texts(bob, alice.messenger.own_handle()) == []
    alice.messenger.send_text(bob_id, "late", T0 + 26 * 3600)
    wire.pump(T0 + 26 * 3600)
    assert texts(bob, alice.messenger.own_handle()) == [("late", "received")]


def test_duplicate_envelope_is_handed_to_the_owner_once(alice: Endpoint, bob: Endpoint) -> None:
    wire = Wire(alice, bob)
    bob_id, alice_id = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "once", T0)
    wire.pump(T0)
    served = bob.messenger.served_tags(T0)
    envelope = [p for p in wire.log if p.recipient_tag in served and p.payload[1] == 5][-1]
    events = bob.messenger.subscribe()
    assert bob.messenger.handle_packet(envelope, T0 + 5) == []
    assert bob.messenger.stats["duplicates"] == 1
    bob.close()
    bob.open()
    bob.start(T0 + 6)
    assert bob.messenger.handle_packet(envelope, T0 + 7) == []  # dedup survives a restart
    assert texts(bob, alice_id) == [("once", "received")]
    assert not [e for e in events.drain() if isinstance(e, MessageAdded)]
    assert bob.messenger.stats["duplicates"] == 1


def test_tampered_envelope_is_dropped_silently(alice: Endpoint, bob: Endpoint) -> None:
    wire = Wire(alice, bob)
    bob_id, alice_id = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "first", T0)
    wire.pump(T0)
    alice.messenger.send_text(bob_id, "second", T0 + 1)
    [envelope] = alice.messenger.take_outgoing()
    flipped = bytearray(envelope.payload)
    flipped[-1] ^= 1
    assert (
        bob.messenger.handle_packet(dataclasses.replace(envelope, payload=bytes(flipped)), T0 + 1)
        == []
    )
    forged_tag = dataclasses.replace(envelope, expires_at_s=envelope.expires_at_s + 1)
    assert bob.messenger.handle_packet(forged_tag, T0 + 1) == []  # header bound in the plaintext
    assert bob.messenger.stats["undecryptable"] == 1
    assert bob.messenger.stats["dropped_MalformedEnvelope"] == 1
    assert texts(bob, alice_id) == [("first", "received")]
    assert bob.messenger.handle_packet(envelope, T0 + 2)  # the genuine one still opens
    assert texts(bob, alice_id)[-1] == ("second", "received")


def test_envelopes_wait_while_the_vault_is_locked(alice: Endpoint, bob: Endpoint) -> None:
    wire = Wire(alice, bob)
    bob_id, alice_id = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "before", T0)
    wire.pump(T0)
    events = bob.messenger.subscribe()
    bob.messenger.lock(T0 + 1)
    with pytest.raises(VaultLocked):
        bob.messenger.conversation(alice_id)
    message = alice.messenger.send_text(bob_id, "while locked", T0 + 1)
    wire.pump(T0 + 1)
    assert alice.messenger.message(message.id).state == "queued"  # no receipt: unacknowledged
    assert bob.spool.stats().held_for_owner == 1
    with pytest.raises(WrongPassphrase):
        bob.messenger.unlock("wrong", T0 + 2)
    replies = bob.messenger.unlock(PASSPHRASE, T0 + 2)
    assert [p.type for p in replies] == [PacketType.RECEIPT, PacketType.NOTICE]
    assert bob.spool.stats().held_for_owner == 0
    assert texts(bob, alice_id)[-1] == ("while locked", "received")
    for packet in replies:
        alice.messenger.handle_packet(packet, T0 + 3)
    assert alice.messenger.message(message.id).state == "delivered"
    seen = events.drain()
    assert seen[0] == LockChanged(locked=True)
    assert LockChanged(locked=False) in seen


def test_file_round_trip_with_progress_events(alice: Endpoint, bob: Endpoint) -> None:
    wire = Wire(alice, bob)
    bob_id, alice_id = befriend(alice, bob, T0)
    data = bytes(range(256)) * 300 + b"tail"  # 11 chunks, the last one short
    events = alice.messenger.subscribe()
    sent = alice.messenger.send_file(bob_id, "../photo.jpg", data, T0)
    assert (sent.kind, sent.file_name, sent.file_size, sent.file_progress) == (
        "file",
        "photo.jpg",
        len(data),
        0.0,
    )
    wire.pump(T0 + 1)
    done = alice.messenger.message(sent.id)
    assert (done.state, done.file_progress) == ("delivered", 1.0)
    [received] = [m for m in bob.messenger.conversation(alice_id) if m.kind == "file"]
    assert (received.file_progress, received.file_name) == (1.0, "photo.jpg")
    assert bob.messenger.file_data(received.id) == ("photo.jpg", data)
    updates = [e.message for e in events.drain() if isinstance(e, MessageUpdated)]
    progress = [u.file_progress or 0.0 for u in updates if u.id == sent.id]
    assert progress == sorted(progress)
    assert progress[-1] == 1.0


def test_file_transfer_resumes_after_the_sender_restarts(alice: Endpoint, bob: Endpoint) -> None:
    wire = Wire(alice, bob)
    bob_id, alice_id = befriend(alice, bob, T0)
    data = bytes(i % 251 for i in range(7168 * 40 + 99))  # 41 chunks, window 32
    sent = alice.messenger.send_file(bob_id, "big.bin", data, T0)
    wire.pump(T0, drop=30)  # the handshake and some chunks are lost
    alice.close()
    alice.open()
    alice.start(T0 + 100)
    for step in range(1, 40):
        wire.tick(T0 + 100 + step * 400)
        wire.pump(T0 + 100 + step * 400)
        if alice.messenger.message(sent.id).state == "delivered":
            break
    assert alice.messenger.message(sent.id).state == "delivered"
    [received] = [m for m in bob.messenger.conversation(alice_id) if m.kind == "file"]
    assert bob.messenger.file_data(received.id)[1] == data


def test_incomplete_file_is_not_offered_for_download(alice: Endpoint, bob: Endpoint) -> None:
    wire = Wire(alice, bob)
    bob_id, alice_id = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "session first", T0)
    wire.pump(T0)
    alice.messenger.send_file(bob_id, "two.bin", bytes(7168 + 1), T0 + 1)
    first, _second = alice.messenger.take_outgoing()
    bob.messenger.handle_packet(first, T0 + 1)
    [partial] = [m for m in bob.messenger.conversation(alice_id) if m.kind == "file"]
    assert partial.file_progress == 0.5
    with pytest.raises(FileIncomplete):
        bob.messenger.file_data(partial.id)
    with pytest.raises(UnknownMessage):
        bob.messenger.file_data("00" * 16)


def test_size_limits(alice: Endpoint, bob: Endpoint) -> None:
    bob_id, _ = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "é" * (MAX_TEXT_BYTES // 2), T0)  # exactly 4 KiB
    with pytest.raises(MessageTooLarge):
        alice.messenger.send_text(bob_id, "x" * (MAX_TEXT_BYTES + 1), T0)
    with pytest.raises(MessageTooLarge):
        alice.messenger.send_file(bob_id, "huge", bytes(MAX_FILE_BYTES + 1), T0)


@pytest.mark.parametrize("text", ["", " ", "\n\t \u3000", "a\ud800b", "\udc00 \ud83d"])
def test_empty_blank_and_unencodable_texts_are_refused(
    alice: Endpoint, bob: Endpoint, text: str
) -> None:
    bob_id, _ = befriend(alice, bob, T0)
    with pytest.raises(InvalidText):
        alice.messenger.send_text(bob_id, text, T0)
    assert alice.messenger.conversation(bob_id) == []
    assert alice.messenger.take_outgoing() == []


def test_texts_keep_their_spaces_and_file_names_refuse_surrogates(
    alice: Endpoint, bob: Endpoint
) -> None:
    bob_id, _ = befriend(alice, bob, T0)
    sent = alice.messenger.send_text(bob_id, "  indented\n", T0)
    assert sent.text == "  indented\n"
    assert alice.messenger.send_text(bob_id, "\U0001f600", T0).text == "\U0001f600"
    with pytest.raises(InvalidName):
        alice.messenger.send_file(bob_id, "a\udcffb.txt", b"x", T0)


def test_simultaneous_first_messages_both_arrive_and_settle_on_one_session(
    alice: Endpoint, bob: Endpoint
) -> None:
    wire = Wire(alice, bob)
    bob_id, alice_id = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "from alice", T0)
    bob.messenger.send_text(alice_id, "from bob", T0)
    wire.pump(T0)
    assert texts(alice, bob_id) == [("from alice", "delivered"), ("from bob", "received")]
    assert texts(bob, alice_id) == [("from bob", "delivered"), ("from alice", "received")]
    won = alice.messenger.stats["session_race_won"] + bob.messenger.stats["session_race_won"]
    assert won == 1  # the lower identity key's session is the one both send on
    alice.messenger.send_text(bob_id, "after", T0 + 500)
    bob.messenger.send_text(alice_id, "after too", T0 + 500)
    before = len(wire.log)
    wire.pump(T0 + 500)
    assert texts(bob, alice_id)[-1] == ("after", "received")
    assert texts(alice, bob_id)[-1] == ("after too", "received")
    envelopes = [p for p in wire.log[before:] if p.type is PacketType.ENVELOPE]
    assert [p.payload[:2] for p in envelopes] == [b"\x02\x02"] * 2  # normal messages only


def test_first_messages_keep_arriving_while_the_answer_is_lost(
    alice: Endpoint, bob: Endpoint
) -> None:
    wire = Wire(alice, bob)
    bob_id, alice_id = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "one", T0)
    wire.pump(T0, lose=lambda p: wire.sender_of[p.packet_id] is bob)  # bob's answers are lost
    alice.messenger.send_text(bob_id, "two", T0 + 1)
    (packet,) = alice.messenger.take_outgoing()
    assert packet.payload[:2] == b"\x03\x05"  # still a pre-key message: alice heard nothing
    bob.messenger.handle_packet(packet, T0 + 1)
    assert [v.text for v in bob.messenger.conversation(alice_id)] == ["one", "two"]
    for step in range(1, RENEW_EVERY + 3):  # bob's answer, then (renewed) receipts get through
        wire.tick(T0 + step * 301)
        wire.pump(T0 + step * 301)
    assert texts(alice, bob_id) == [("one", "delivered"), ("two", "delivered")]
    alice.messenger.send_text(bob_id, "three", T0 + 2000)
    (packet,) = alice.messenger.take_outgoing()
    assert packet.payload[:2] == b"\x02\x02"  # a normal message to bob's session tag now


def test_an_unanswered_text_is_renewed_in_a_fresh_envelope(alice: Endpoint, bob: Endpoint) -> None:
    bob_id, alice_id = befriend(alice, bob, T0)
    message = alice.messenger.send_text(bob_id, "renew me", T0)
    (first,) = alice.messenger.take_outgoing()
    now, offered = T0, [first]
    for _ in range(RENEW_EVERY):  # each retry offers the same packet; then a new one
        now += 600
        offered += alice.messenger.tick(now)
    ids = [p.packet_id for p in offered]
    assert ids[:RENEW_EVERY] == [first.packet_id] * RENEW_EVERY
    assert ids[RENEW_EVERY] != first.packet_id
    assert offered[RENEW_EVERY].expires_at_s == first.expires_at_s  # the message's deadline
    replies = bob.messenger.handle_packets([first, offered[RENEW_EVERY]], now)
    assert [v.text for v in bob.messenger.conversation(alice_id)] == ["renew me"]  # once
    alice.messenger.handle_packets(replies, now)
    assert alice.messenger.message(message.id).state == "delivered"


def test_relayed_and_sent_states_only_move_forward(alice: Endpoint, bob: Endpoint) -> None:
    wire = Wire(alice, bob)
    bob_id, _ = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "warm up", T0)
    wire.pump(T0)
    message = alice.messenger.send_text(bob_id, "via a relay", T0 + 1)
    [envelope] = alice.messenger.take_outgoing()
    alice.messenger.note_relayed([envelope.packet_id], T0 + 2)
    assert alice.messenger.message(message.id).state == "relayed"
    alice.messenger.note_sent([envelope.packet_id, b"unknown id 16 by"], T0 + 3)
    assert alice.messenger.message(message.id).state == "relayed"
    for receipt in bob.messenger.handle_packets([envelope], T0 + 4):
        alice.messenger.handle_packet(receipt, T0 + 4)
    assert alice.messenger.message(message.id).state == "delivered"
    alice.messenger.note_relayed([envelope.packet_id], T0 + 5)
    assert alice.messenger.message(message.id).state == "delivered"


def test_prekey_floods_are_bounded(alice: Endpoint, bob: Endpoint) -> None:
    befriend(alice, bob, T0)
    contact = alice.messenger.contacts()[0].id
    first = []
    for index in range(70):  # a new session each time: the contact was added afresh
        alice.messenger.remove_contact(contact)
        contact = alice.messenger.add_contact(bob.messenger.own_card_text(), "Bob", T0).id
        alice.messenger.send_text(contact, str(index), T0)
        first += [p for p in alice.messenger.take_outgoing() if p.payload[:2] == b"\x03\x05"]
    assert len(first) == 70
    bob.messenger.handle_packets(first, T0 + 1)
    burst = int(FirstContactPolicy().source_burst)
    alice_id = bob.messenger.contacts()[0].id
    assert len(bob.messenger.conversation(alice_id)) == burst  # the rest wait for the budget
    assert bob.messenger.stats["first_contact_over_budget"] == 70 - burst
