"""First texts as short pre-key messages: as many radio frames as an ordinary text, bound to the
card the recipient holds, and renewed in full for a recipient that cannot bind them; a renewed
text is delivered by whichever of its envelopes is receipted first."""

from __future__ import annotations

import random

from pigeon.crypto.card import ContactCard
from pigeon.crypto.olm_account import OlmAccount
from pigeon.crypto.olm_session import OlmSession
from pigeon.crypto.olm_wire import prekey_id, split_prekey
from pigeon.crypto.signing import SigningKey
from pigeon.mesh.fragment import fragment
from pigeon.mesh.packet import Packet, encode_packet
from pigeon.messenger.addressing import address, intro_tag_key
from pigeon.messenger.envelope import (
    SHORT_PREKEY_EXTRA_BYTES,
    Inner,
    PrekeyEnvelope,
    ShortPrekeyEnvelope,
    TextBody,
    decode_envelope,
    encode_envelope,
    encode_inner,
)
from pigeon.messenger.outbox import RENEW_EVERY
from pigeon.messenger.packets import EnvelopeFrame
from pigeon.sim.engine import PREKEY_EXTRA_BYTES
from tests.messenger.helpers import T0, Endpoint, Wire, befriend
from tests.messenger.test_prekeys import forget_card_prekey

BLE_FRAME_LIMIT = 244  # what our BLE transport writes (and the `default` sim scenario)
TEXT = "x" * 300  # one padded block, as most texts are


def _frames(packet: Packet) -> int:
    return len(fragment(encode_packet(packet), BLE_FRAME_LIMIT, 0))


def _first_and_ordinary(alice: Endpoint, bob: Endpoint) -> tuple[Packet, Packet]:
    wire = Wire(alice, bob)
    bob_id, _ = befriend(alice, bob, T0)
    alice.messenger.send_text(bob_id, TEXT, T0)
    (first,) = alice.messenger.take_outgoing()
    wire.pending.append((first, alice))
    wire.pump(T0)
    alice.messenger.send_text(bob_id, TEXT, T0 + 1)
    (ordinary,) = alice.messenger.take_outgoing()
    return first, ordinary


def test_a_first_text_takes_as_many_radio_frames_as_an_ordinary_one(
    alice: Endpoint, bob: Endpoint
) -> None:
    first, ordinary = _first_and_ordinary(alice, bob)
    assert first.recipient_tag != ordinary.recipient_tag  # intro tag, then session tag
    assert _frames(first) == _frames(ordinary) == 3


def test_the_simulator_models_the_short_form_the_messenger_writes(
    alice: Endpoint, bob: Endpoint
) -> None:
    first, ordinary = _first_and_ordinary(alice, bob)
    assert isinstance(decode_envelope(first.payload), ShortPrekeyEnvelope)
    extra = len(first.payload) - len(ordinary.payload)
    assert extra == SHORT_PREKEY_EXTRA_BYTES == PREKEY_EXTRA_BYTES


def _short_first(sender_key: bytes, olm: OlmAccount, recipient: Endpoint) -> Packet:
    """A short pre-key text naming `sender_key`, opened by Olm account `olm` on the fallback
    key of `recipient`'s card, to `recipient`'s intro tag."""
    card = ContactCard.from_text(recipient.messenger.own_card_text())
    assert card.prekey is not None
    rng = random.Random(7).randbytes
    frame = EnvelopeFrame.new(rng, address(intro_tag_key(card.mailbox_key), T0), int(T0 + 3600))
    assert frame.receipt_secret is not None
    inner = Inner(frame.receipt_secret, bytes(32), TextBody(bytes(16), 0, "forged"))
    session = OlmSession.outbound(olm, card.prekey)
    message = session.encrypt_message(encode_inner(inner, frame.associated_data()))
    keys, olm_inner = split_prekey(message.ciphertext)
    short = ShortPrekeyEnvelope(sender_key, prekey_id(keys.one_time_key), keys.base_key, olm_inner)
    return frame.packet(encode_envelope(short))


def test_a_short_prekey_is_bound_to_the_olm_key_of_the_card_held(
    alice: Endpoint, bob: Endpoint
) -> None:
    bob_id, alice_id = befriend(alice, bob, T0)
    alice_key = ContactCard.from_text(alice.messenger.own_card_text()).mailbox_key
    mallory = OlmAccount.create(SigningKey.generate(), T0)  # not the Olm key alice's card binds
    assert bob.messenger.handle_packet(_short_first(alice_key, mallory, bob), T0) == []
    assert bob.messenger.conversation(alice_id) == []
    assert bob.messenger.stats["dropped_DecryptFailed"] == 1  # one key agreement, then nothing
    wire = Wire(alice, bob)  # alice's own first text still opens a session
    alice.messenger.send_text(bob_id, "real", T0 + 1)
    wire.pump(T0 + 1)
    assert [v.text for v in bob.messenger.conversation(alice_id)] == ["real"]


def test_a_strangers_short_prekey_is_dropped_unread(alice: Endpoint, bob: Endpoint) -> None:
    befriend(alice, bob, T0)
    stranger = SigningKey.generate()
    olm = OlmAccount.create(stranger, T0)
    assert bob.messenger.handle_packet(_short_first(stranger.public_key, olm, bob), T0) == []
    assert bob.messenger.stats["unknown_sender"] == 1
    assert not any(key.startswith("dropped_") for key in bob.messenger.stats)


def test_a_contact_holding_our_old_card_reads_the_full_renewal(
    alice: Endpoint, bob: Endpoint
) -> None:
    bob_id, alice_id = befriend(alice, bob, T0)
    forget_card_prekey(bob, alice_id)  # bob holds a version 1 card of alice: no Olm key in it
    message = alice.messenger.send_text(bob_id, "hello", T0)
    (first,) = alice.messenger.take_outgoing()
    assert isinstance(decode_envelope(first.payload), ShortPrekeyEnvelope)
    assert bob.messenger.handle_packet(first, T0) == []
    assert bob.messenger.stats["short_prekey_unbound"] == 1
    now, offered = T0, []
    for _ in range(RENEW_EVERY):
        now += 600
        offered += alice.messenger.tick(now)
    renewed = offered[-1]
    assert isinstance(decode_envelope(renewed.payload), PrekeyEnvelope)
    wire = Wire(alice, bob)
    wire.pending.append((renewed, alice))
    wire.pump(now)
    assert [v.text for v in bob.messenger.conversation(alice_id)] == ["hello"]
    assert alice.messenger.message(message.id).state == "delivered"


def test_the_first_envelope_of_a_renewed_text_still_delivers_it(
    alice: Endpoint, bob: Endpoint
) -> None:
    bob_id, alice_id = befriend(alice, bob, T0)
    message = alice.messenger.send_text(bob_id, "late", T0)
    (first,) = alice.messenger.take_outgoing()
    now, offered = T0, []
    for _ in range(RENEW_EVERY):
        now += 600
        offered += alice.messenger.tick(now)
    assert offered[-1].packet_id != first.packet_id  # renewed; the renewal is lost
    assert len(alice.messenger.outstanding_envelopes()) == 2
    wire = Wire(alice, bob)
    wire.pending.append((first, alice))  # the old envelope arrives after all
    wire.pump(now)
    assert [v.text for v in bob.messenger.conversation(alice_id)] == ["late"]
    assert alice.messenger.message(message.id).state == "delivered"
    assert alice.messenger.outstanding_envelopes() == []  # the renewal is withdrawn too
    assert alice.messenger.tick(now + 10_000) == []  # and never offered again
