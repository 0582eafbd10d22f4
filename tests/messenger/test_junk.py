"""Junk from strangers who hold the owner's card: routed by tag, budgeted, never a search.

The intro tag is public (anyone with the card computes it) and the owner's relay mailbox takes
deposits from anyone, so junk arrives there at will. What a junk envelope may cost is counted
here in the work that matters: ratchet DH steps (each an X25519 exchange plus a chain of
HMACs) and session decrypt attempts, never in seconds (bench/bench_junk.py measures those).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from pigeon.crypto.ratchet import DoubleRatchet
from pigeon.mesh.packet import Packet
from pigeon.mesh.tags import tags_for_window
from pigeon.messenger.addressing import intro_tag_key
from pigeon.messenger.config import MessengerConfig
from pigeon.messenger.endpoint import HELD_SLICE
from pigeon.messenger.first_contact import FirstContactPolicy, relay_source
from tests.messenger.helpers import PASSPHRASE, T0, Endpoint, Wire, befriend
from tests.messenger.junk import card_key, intro_tag_at, junk_hello, junk_ratchet

DAY_S = 86_400.0
RELAY = relay_source("ws://relay.example/v1")


@pytest.fixture
def dh_steps(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every ratchet DH step taken from now on (a one-element list)."""
    count = [0]
    step = DoubleRatchet._dh_step

    def counting(self: DoubleRatchet, remote_public: bytes) -> object:
        count[0] += 1
        return step(self, remote_public)

    monkeypatch.setattr(DoubleRatchet, "_dh_step", counting)
    return count


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


def test_junk_on_the_intro_tag_tries_no_session_of_settled_contacts(
    bob: Endpoint, friends: list[Endpoint], dh_steps: list[int]
) -> None:
    for friend in friends:
        converse(bob, friend, T0)
    later = T0 + 2 * DAY_S  # the contacts' intro windows have closed
    tries = bob.messenger.stats["session_tries"]
    steps = dh_steps[0]
    for _ in range(5):
        bob.messenger.handle_packet(junk_ratchet(intro_tag(bob, later), later), later)
    assert dh_steps[0] == steps
    assert bob.messenger.stats["session_tries"] == tries


def test_junk_on_the_intro_tag_takes_no_dh_step_with_contacts_who_have_our_tag_key(
    bob: Endpoint, friends: list[Endpoint], dh_steps: list[int]
) -> None:
    for friend in friends:
        converse(bob, friend, T0)
    steps = dh_steps[0]
    for _ in range(5):  # within the day: late intro-tag envelopes may still come, known keys only
        bob.messenger.handle_packet(junk_ratchet(intro_tag(bob, T0 + 2), T0 + 2), T0 + 2)
    assert dh_steps[0] == steps


def test_junk_on_the_intro_tag_steps_only_sessions_that_wait_for_their_tag_key(
    bob: Endpoint, friends: list[Endpoint], dh_steps: list[int]
) -> None:
    for friend in friends[:2]:
        converse(bob, friend, T0)
    waiting = friends[2]  # a session is up, but this contact has not written since
    wire = Wire(waiting, bob)
    bob_id, _ = befriend(waiting, bob, T0)
    waiting.messenger.send_text(bob_id, "first words", T0)
    wire.pump(T0)
    steps = dh_steps[0]
    bob.messenger.handle_packet(junk_ratchet(intro_tag(bob, T0 + 2), T0 + 2), T0 + 2)
    assert dh_steps[0] == steps + 1  # that one session's, nobody else's


def test_an_envelope_for_a_tag_we_do_not_serve_is_dropped_unread(
    bob: Endpoint, friends: list[Endpoint], dh_steps: list[int]
) -> None:
    """A relay mailbox takes any tag: the messenger checks it as the router does."""
    for friend in friends:
        wire = Wire(friend, bob)
        bob_id, _ = befriend(friend, bob, T0)
        friend.messenger.send_text(bob_id, "hello", T0)
        wire.pump(T0)
    steps = dh_steps[0]
    for index in range(5):
        junk = junk_ratchet(random.Random(index).randbytes(16), T0 + 2)
        assert bob.messenger.handle_packet(junk, T0 + 2, RELAY) == []
    assert dh_steps[0] == steps
    assert bob.messenger.stats["unserved_tag"] == 5
    assert bob.spool.stats().held_for_owner == 0  # not parked either


def test_parked_envelopes_are_tried_again_only_with_the_new_session(
    bob: Endpoint, friends: list[Endpoint], dh_steps: list[int]
) -> None:
    for friend in friends[:2]:  # two sessions whose contacts never wrote to the session tag
        wire = Wire(friend, bob)
        bob_id, _ = befriend(friend, bob, T0)
        friend.messenger.send_text(bob_id, "hello", T0)
        wire.pump(T0)
    bob.messenger.handle_packet(junk_hello(intro_tag(bob, T0 + 1), T0 + 1), T0 + 1)
    junk = [junk_ratchet(intro_tag(bob, T0 + 1), T0 + 1) for _ in range(10)]
    bob.messenger.handle_packets(junk, T0 + 1)
    assert bob.spool.stats().held_for_owner == 10  # parked: that handshake may complete
    steps = dh_steps[0]
    newcomer = friends[2]
    wire = Wire(newcomer, bob)
    bob_id, newcomer_id = befriend(newcomer, bob, T0 + 2)
    newcomer.messenger.send_text(bob_id, "new here", T0 + 2)
    wire.pump(T0 + 2)
    handshake_steps = dh_steps[0] - steps
    while bob.messenger.held_pending:
        bob.messenger.process_held(T0 + 3)
    assert dh_steps[0] - steps - handshake_steps == 10  # once each, with the new session alone
    assert [v.text for v in bob.messenger.conversation(newcomer_id)] == ["new here"]


def test_envelopes_held_while_locked_are_processed_a_slice_at_a_time(
    bob: Endpoint, friends: list[Endpoint], dh_steps: list[int]
) -> None:
    wire = Wire(friends[0], bob)
    bob_id, _ = befriend(friends[0], bob, T0)
    friends[0].messenger.send_text(bob_id, "hello", T0)
    wire.pump(T0)
    tag = intro_tag(bob, T0 + 1)
    bob.messenger.lock(T0 + 1)
    bob.messenger.handle_packets([junk_ratchet(tag, T0 + 1) for _ in range(100)], T0 + 1)
    steps = dh_steps[0]
    bob.messenger.unlock(PASSPHRASE, T0 + 2)
    assert dh_steps[0] - steps <= HELD_SLICE  # the event loop gets control back soon
    assert bob.messenger.held_pending
    while bob.messenger.held_pending:
        before = dh_steps[0]
        bob.messenger.process_held(T0 + 2)
        assert dh_steps[0] - before <= HELD_SLICE
    assert dh_steps[0] - steps == 100  # each tried once with the one waiting session


def test_a_hello_is_answered_only_on_the_intro_tag(alice: Endpoint, bob: Endpoint) -> None:
    wire = Wire(alice, bob)
    bob_id, _ = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "hello", T0)
    wire.pump(T0)
    intro = tags_for_window(intro_tag_key(card_key(bob.messenger.own_card_text())), T0)
    session_tags = set(bob.messenger.served_tags(T0)) - set(intro)
    replies = [bob.messenger.handle_packet(junk_hello(tag, T0 + 1), T0 + 1) for tag in session_tags]
    assert replies == [[] for _ in session_tags]
    assert bob.messenger.handle_packet(junk_hello(intro_tag(bob, T0 + 1), T0 + 1), T0 + 1)


def test_a_hello_flood_from_one_relay_leaves_the_mesh_open(alice: Endpoint, bob: Endpoint) -> None:
    tag = intro_tag(bob, T0)
    answered = bob.messenger.handle_packets([junk_hello(tag, T0) for _ in range(70)], T0, RELAY)
    assert len(answered) == FirstContactPolicy().source_burst
    wire = Wire(alice, bob)
    bob_id, alice_id = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "a real first contact, by radio", T0 + 1)
    wire.pump(T0 + 1)
    assert [v.text for v in bob.messenger.conversation(alice_id)] == [
        "a real first contact, by radio"
    ]


def test_a_full_responder_table_makes_room_for_a_real_contact(tmp_path: Path) -> None:
    generous = FirstContactPolicy(source_burst=100.0, path_burst=100.0)
    config = dataclasses.replace(
        MessengerConfig(), max_pending_responders=4, first_contact=generous
    )
    alice, bob = Endpoint(tmp_path / "alice", 1), Endpoint(tmp_path / "bob", 500, config=config)
    alice.start(T0)
    bob.start(T0)
    try:
        tag = intro_tag(bob, T0)
        bob.messenger.handle_packets([junk_hello(tag, T0) for _ in range(4)], T0, RELAY)
        wire = Wire(alice, bob)
        bob_id, alice_id = befriend(alice, bob, T0)
        alice.messenger.send_text(bob_id, "room for me", T0 + 1)
        wire.pump(T0 + 1)
        assert [v.text for v in bob.messenger.conversation(alice_id)] == ["room for me"]
        assert bob.messenger.stats["responders_evicted"] == 1
    finally:
        alice.close()
        bob.close()


def test_a_late_envelope_to_the_intro_tag_still_opens_after_the_contact_has_our_tag_key(
    bob: Endpoint, friends: list[Endpoint], dh_steps: list[int]
) -> None:
    friend = friends[0]
    wire = Wire(friend, bob)
    bob_id, friend_id = befriend(friend, bob, T0)
    held_back: list[Packet] = []

    def second_ratchet_message(packet: Packet) -> bool:
        """Delays the friend's first text (its second ratchet message, after its tag key)."""
        ours = wire.sender_of[packet.packet_id] is friend and packet.payload[:2] == b"\x01\x04"
        if ours and not held_back and sum(p.payload[:2] == b"\x01\x04" for p in wire.log) == 2:
            held_back.append(packet)
            return True
        return False

    friend.messenger.send_text(bob_id, "written before it had bob's tag key", T0)
    wire.pump(T0, lose=second_ratchet_message)
    assert len(held_back) == 1
    friend.messenger.send_text(bob_id, "written to bob's session tag", T0 + 1)
    wire.pump(T0 + 1)  # bob's intro window for the friend now admits known keys only
    steps = dh_steps[0]
    bob.messenger.handle_packet(junk_ratchet(intro_tag(bob, T0 + 2), T0 + 2), T0 + 2)
    assert dh_steps[0] == steps  # a stranger's key is not tried at all
    bob.messenger.handle_packet(held_back[0], T0 + 3)
    assert sorted(v.text or "" for v in bob.messenger.conversation(friend_id)) == [
        "written before it had bob's tag key",
        "written to bob's session tag",
    ]


def test_messages_handed_over_with_the_confirm_that_opens_their_session_open_at_once(
    alice: Endpoint, bob: Endpoint
) -> None:
    """A batch (a relay mailbox read, a backlog) may hold message 3 and the first messages."""
    bob_id, alice_id = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, "in the same batch as my CONFIRM", T0)
    replies = bob.messenger.handle_packets(alice.messenger.take_outgoing(), T0)
    batch = alice.messenger.handle_packets(replies, T0)
    assert len(batch) >= 3  # CONFIRM, tag key, text
    bob.messenger.handle_packets(batch, T0)
    assert [v.text for v in bob.messenger.conversation(alice_id)] == [
        "in the same batch as my CONFIRM"
    ]


def test_junk_is_not_parked_while_no_handshake_is_pending(
    bob: Endpoint, friends: list[Endpoint]
) -> None:
    converse(bob, friends[0], T0)
    junk = [junk_ratchet(intro_tag(bob, T0 + 2), T0 + 2) for _ in range(5)]
    bob.messenger.handle_packets(junk, T0 + 2)
    assert bob.spool.stats().held_for_owner == 0  # no session can come to open them
    bob.messenger.handle_packet(junk_hello(intro_tag(bob, T0 + 3), T0 + 3), T0 + 3)
    bob.messenger.handle_packets([junk_ratchet(intro_tag(bob, T0 + 3), T0 + 3)], T0 + 3)
    assert bob.spool.stats().held_for_owner == 1  # one may: a handshake waits for message 3
