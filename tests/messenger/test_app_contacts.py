"""App contacts: the owner chats with a scripted Pigeon-app peer in the app's own framing."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from pigeon.messenger.api import AppOutgoing, InvalidCard, Messenger
from pigeon.messenger.config import MessengerConfig
from tests.crypto.plain_app_peer import card_text, relay_urls_of_link
from tests.messenger.app_peer import (
    ACK,
    MESSAGE,
    REHANDSHAKE,
    X3DH_INIT,
    ScriptedAppPeer,
)
from tests.messenger.helpers import T0, Endpoint

RELAY = "wss://relay.example/ws"


def peer_with_order(messenger: Messenger, owner_lower: bool) -> ScriptedAppPeer:
    """A peer whose key sorts above (or below) the owner's, to pick who initiates."""
    link = messenger.own_app_card_link()
    for n in range(1, 64):
        peer = ScriptedAppPeer(bytes([n]) * 32, link)
        if (peer.owner < peer.peer.identity_key) == owner_lower:
            return peer
    raise AssertionError("no seed gives that order")


def add(messenger: Messenger, peer: ScriptedAppPeer, as_link: bool) -> str:
    text = card_text(peer.peer, "Ada", [RELAY])
    if as_link:
        text = "pigeon://contact?card=" + text.replace("+", "-").replace("/", "_").rstrip("=")
    return messenger.add_contact(text, "", T0).id


def deliver(messenger: Messenger, data: bytes, now: float) -> list[AppOutgoing]:
    return messenger.handle_app_envelope(data, now)


def test_owner_initiates_when_its_key_is_lower(alice: Endpoint) -> None:
    messenger = alice.messenger
    peer = peer_with_order(messenger, owner_lower=True)
    contact_id = add(messenger, peer, as_link=True)
    sent = messenger.send_text(contact_id, "hello app", T0 + 1)
    out = messenger.take_app_outgoing()
    assert [peer.receive(o.envelope) for o in out] == [X3DH_INIT, MESSAGE]
    assert all(o.recipient == peer.peer.identity_key and o.relay_urls == (RELAY,) for o in out)
    (received,) = peer.received
    assert received["text"] == "hello app"
    assert received["id"] == str(uuid.UUID(hex=sent.id)).upper()
    assert messenger.message(sent.id).state == "sent"
    assert deliver(messenger, peer.ack(sent.id), T0 + 2) == []
    assert messenger.message(sent.id).state == "delivered"
    reply, reply_id = peer.text("hi node")
    (ack,) = deliver(messenger, reply, T0 + 3)
    assert peer.receive(ack.envelope) == ACK
    assert peer.acks == [str(reply_id).upper().encode()]
    last = messenger.conversation(contact_id)[-1]
    assert (last.direction, last.text, last.state) == ("in", "hi node", "received")


def test_contact_initiates_when_its_key_is_lower(alice: Endpoint) -> None:
    messenger = alice.messenger
    peer = peer_with_order(messenger, owner_lower=False)
    contact_id = add(messenger, peer, as_link=False)
    sent = messenger.send_text(contact_id, "waiting for you", T0 + 1)
    (request,) = messenger.take_app_outgoing()
    assert peer.receive(request.envelope) == REHANDSHAKE
    assert messenger.message(sent.id).state == "queued"
    out = deliver(messenger, peer.initiate(), T0 + 2)
    assert [peer.receive(o.envelope) for o in out] == [ACK, MESSAGE]
    assert peer.acks == [b"\x00"]
    assert peer.received[0]["text"] == "waiting for you"
    deliver(messenger, peer.ack(sent.id), T0 + 3)
    assert messenger.message(sent.id).state == "delivered"


def test_a_replayed_init_opens_nothing(alice: Endpoint) -> None:
    messenger = alice.messenger
    peer = peer_with_order(messenger, owner_lower=False)
    contact_id = add(messenger, peer, as_link=True)
    init = peer.initiate()
    assert len(deliver(messenger, init, T0 + 1)) == 1  # the established ack
    text, _ = peer.text("one")
    deliver(messenger, text, T0 + 2)
    before = messenger.conversation(contact_id)
    assert deliver(messenger, init, T0 + 3) == []
    assert deliver(messenger, text, T0 + 4) != []  # a resent text is acked again, not stored
    assert messenger.conversation(contact_id) == before
    assert messenger.stats["app_init_repeated"] == 1


def test_a_replayed_init_after_its_session_is_gone_opens_nothing(alice: Endpoint) -> None:
    messenger = alice.messenger
    peer = peer_with_order(messenger, owner_lower=False)
    contact_id = add(messenger, peer, as_link=True)
    init = peer.initiate()
    deliver(messenger, init, T0 + 1)
    messenger.remove_contact(contact_id)  # the session record goes with the contact
    add(messenger, peer, as_link=True)
    assert deliver(messenger, init, T0 + 2) == []
    assert messenger.stats["app_dropped_Replayed"] == 1


def test_envelopes_for_others_and_strangers_are_dropped(alice: Endpoint) -> None:
    messenger = alice.messenger
    peer = peer_with_order(messenger, owner_lower=False)
    assert deliver(messenger, peer.initiate(), T0) == []  # not a contact yet
    assert messenger.stats["app_unknown_sender"] == 1
    wrong = bytearray(peer.initiate())
    wrong[40] ^= 1  # another recipient
    assert deliver(messenger, bytes(wrong), T0) == []
    assert deliver(messenger, b"\x01\x09" + bytes(70), T0) == []
    assert messenger.stats["app_dropped_not_ours"] == 1
    assert messenger.stats["app_dropped_malformed"] == 1


def app_safety_number_from_facts(a: bytes, b: bytes) -> str:
    context = b"Pigeon.SafetyNumber.v1"
    digits = ""
    for key in sorted((a, b)):
        current = context + key
        for _ in range(5200):
            current = hashlib.sha512(current + context + key).digest()
        digits += "".join(
            f"{int.from_bytes(current[i : i + 5], 'big') % 100_000:05d}" for i in range(0, 30, 5)
        )
    return digits


def test_app_contact_page_facts_and_verification(alice: Endpoint) -> None:
    messenger = alice.messenger
    peer = peer_with_order(messenger, owner_lower=True)
    contact_id = add(messenger, peer, as_link=True)
    view = messenger.contact(contact_id)
    assert view.kind == "app"
    assert any("no rotating tags" in p for p in view.protections)
    assert any("no 512-byte padding" in p for p in view.protections)
    assert view.relays == (RELAY,)
    number = app_safety_number_from_facts(peer.owner, peer.peer.identity_key)
    assert view.safety_number == messenger.safety_number(contact_id) == number
    messenger.mark_verified(contact_id, " ".join(number[i : i + 5] for i in range(0, 60, 5)), T0)
    assert messenger.contact(contact_id).verified


def test_a_damaged_app_card_is_refused(alice: Endpoint) -> None:
    with pytest.raises(InvalidCard):
        alice.messenger.add_contact("pigeon://contact?card=AAAA", "x", T0)


def test_an_unacked_text_is_sent_again_at_check_in_and_fails_after_the_lifetime(
    alice: Endpoint,
) -> None:
    messenger = alice.messenger
    peer = peer_with_order(messenger, owner_lower=True)
    contact_id = add(messenger, peer, as_link=True)
    messenger.set_check_in_interval(contact_id, 60.0)
    sent = messenger.send_text(contact_id, "are you there?", T0 + 1)
    messenger.take_app_outgoing()  # lost on the way: the app user never saw our init
    messenger.tick(T0 + 30)
    assert messenger.take_app_outgoing() == []  # not due yet
    messenger.tick(T0 + 62)
    out = messenger.take_app_outgoing()
    assert [peer.receive(o.envelope) for o in out] == [X3DH_INIT, MESSAGE]
    assert peer.received[0]["text"] == "are you there?"
    assert peer.received[0]["sentAt"] == pytest.approx(T0 + 1 - 978_307_200)
    deliver(messenger, peer.ack(sent.id), T0 + 63)
    assert messenger.message(sent.id).state == "delivered"
    late = messenger.send_text(contact_id, "still there?", T0 + 100)
    messenger.take_app_outgoing()
    messenger.tick(T0 + 100 + 10 * 86_400)
    assert messenger.message(late.id).state == "failed"


def test_our_app_card_lists_the_relays_where_our_app_mailbox_is_read(tmp_path: Path) -> None:
    config = MessengerConfig(app_mailbox_relays=(RELAY,))
    owner = Endpoint(tmp_path / "owner", 9, config=config)
    owner.start(T0)
    try:
        # The profile's relays are our own protocol's /v1 mailboxes: the app cannot speak it.
        owner.messenger.set_profile("Owner", ("wss://relay.example/v1",))
        link = owner.messenger.own_app_card_link()
        assert relay_urls_of_link(link) == [RELAY]  # signed: the app keeps them
        assert ScriptedAppPeer(bytes([7]) * 32, link).owner == owner.messenger.own_identity_key()
    finally:
        owner.close()


def test_a_packet_is_taken_once_by_its_id_and_a_forged_copy_takes_nothing(
    alice: Endpoint,
) -> None:
    messenger = alice.messenger
    peer = peer_with_order(messenger, owner_lower=True)
    contact_id = add(messenger, peer, as_link=True)
    sent = messenger.send_text(contact_id, "hello app", T0 + 1)
    for item in messenger.take_app_outgoing():
        peer.receive(item.envelope)
    ack_id = bytes(range(16))
    # Anyone who saw the id go by (it is in clear at every hop) may send a forgery first,
    # under the contact's key (also in clear): it opens nothing and claims nothing.
    genuine = peer.ack(sent.id)
    forged = genuine[:-1] + bytes([genuine[-1] ^ 1])  # its MAC no longer checks
    messenger.handle_app_envelope(forged, T0 + 2, ack_id)
    assert messenger.stats["app_undecryptable"] == 1
    messenger.take_app_outgoing()  # its rehandshake: the app's rule, as before
    ack = peer.ack(sent.id)  # sent again, as the app does until the text is acked
    assert messenger.handle_app_envelope(ack, T0 + 3, ack_id) == []
    assert messenger.message(sent.id).state == "delivered"
    # The same packet again (by radio, then from a relay; after a restart too): unread.
    assert messenger.handle_app_envelope(ack, T0 + 4, ack_id) == []
    alice.close()
    alice.open()
    alice.start(T0 + 5)
    assert alice.messenger.handle_app_envelope(ack, T0 + 6, ack_id) == []
    assert alice.messenger.stats["app_duplicate_packet"] == 1
    assert alice.messenger.stats["app_undecryptable"] == 0
    # Without an id (a caller that cannot tell), the copy reaches Olm, which refuses it.
    alice.messenger.handle_app_envelope(ack, T0 + 7)
    assert alice.messenger.stats["app_undecryptable"] == 1


def test_a_rehandshake_request_that_comes_twice_restarts_the_session_once(
    alice: Endpoint,
) -> None:
    messenger = alice.messenger
    peer = peer_with_order(messenger, owner_lower=True)
    contact_id = add(messenger, peer, as_link=True)
    messenger.send_text(contact_id, "hello app", T0 + 1)
    for item in messenger.take_app_outgoing():
        peer.receive(item.envelope)
    request = peer.envelope(REHANDSHAKE, b"")
    out = messenger.handle_app_envelope(request, T0 + 2, bytes(16))
    assert [peer.receive(o.envelope) for o in out] == [X3DH_INIT]
    assert messenger.handle_app_envelope(request, T0 + 3, bytes(16)) == []  # its other copy
    assert messenger.stats["app_duplicate_packet"] == 1


def test_an_app_message_id_cannot_claim_a_mesh_packet_id(alice: Endpoint) -> None:
    # The app contact chooses its message ids; our mesh packet ids go by in clear. An id
    # copied from the air must not mark that mesh packet as already received.
    messenger = alice.messenger
    peer = peer_with_order(messenger, owner_lower=False)
    contact_id = add(messenger, peer, as_link=True)
    deliver(messenger, peer.initiate(), T0 + 1)
    mesh_packet_id = bytes(range(100, 116))
    text, _ = peer.text("borrowed id", message_id=uuid.UUID(bytes=mesh_packet_id))
    deliver(messenger, text, T0 + 2)
    deliver(messenger, text, T0 + 3)  # the same message again: still shown once
    with alice.keeper.vault.transaction() as tx:
        assert not tx.incoming_seen(mesh_packet_id)
    shown = [m for m in messenger.conversation(contact_id) if m.text == "borrowed id"]
    assert len(shown) == 1
