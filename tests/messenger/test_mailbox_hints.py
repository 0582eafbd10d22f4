"""Envelopes carry the recipient's signed mailbox hint only when the owner asks for it."""

from __future__ import annotations

from pathlib import Path

from pigeon.crypto.card import ContactCard
from pigeon.crypto.mailbox_hint import MailboxHint
from pigeon.mesh.packet import Flag, PacketType
from pigeon.messenger.config import MessengerConfig
from tests.messenger.helpers import T0, Endpoint, Wire, befriend

RELAY = "wss://relay.example.org/v1"


def test_every_envelope_to_a_contact_with_relays_carries_its_hint(tmp_path: Path) -> None:
    phone = Endpoint(tmp_path / "phone", 1, config=MessengerConfig(attach_mailbox_hints=True))
    far = Endpoint(tmp_path / "far", 500)
    for endpoint in (phone, far):
        endpoint.start(T0)
    try:
        far.messenger.set_profile("Far", (RELAY,))
        wire = Wire(phone, far)
        far_id, phone_id = befriend(phone, far, T0)
        phone.messenger.send_text(far_id, "over the bridge", T0)
        phone.messenger.send_file(far_id, "note.bin", bytes(20_000), T0)
        wire.pump(T0 + 1)
        assert [m.state for m in phone.messenger.conversation(far_id)] == ["delivered"] * 2
        assert far.messenger.conversation(phone_id)[0].text == "over the bridge"
        card = ContactCard.from_text(far.messenger.own_card_text())
        assert card.mailbox_hint is not None
        envelopes = [p for p in wire.log if p.type is PacketType.ENVELOPE]
        sent = [p for p in envelopes if wire.sender_of[p.packet_id] is phone]
        assert len(sent) >= 4  # handshake start, confirm, text, file chunks
        for envelope in sent:
            assert envelope.flags & Flag.MAILBOX_HINT
            assert MailboxHint.from_bytes(envelope.mailbox_hint) == card.mailbox_hint
        replies = [p for p in envelopes if wire.sender_of[p.packet_id] is far]
        assert replies
        assert not any(p.mailbox_hint for p in replies)  # `far` did not ask for hints
    finally:
        phone.close()
        far.close()


def test_no_hint_by_default_or_for_a_contact_without_relays(tmp_path: Path) -> None:
    plain = Endpoint(tmp_path / "plain", 1)
    asking = Endpoint(tmp_path / "asking", 500, config=MessengerConfig(attach_mailbox_hints=True))
    for endpoint in (plain, asking):
        endpoint.start(T0)
    try:
        asking.messenger.set_profile("Asking", (RELAY,))  # `plain` could attach it, if it asked
        asking_id, plain_id = befriend(plain, asking, T0)
        wire = Wire(plain, asking)
        plain.messenger.send_text(asking_id, "no hint: not asked", T0)
        asking.messenger.send_text(plain_id, "no hint: none published", T0)
        wire.pump(T0 + 1)
        assert all(not p.mailbox_hint and not p.flags & Flag.MAILBOX_HINT for p in wire.log)
    finally:
        plain.close()
        asking.close()


def test_the_owners_choice_overrides_the_config_and_survives_a_restart(tmp_path: Path) -> None:
    phone = Endpoint(tmp_path / "phone", 1)  # config default: no hints
    far = Endpoint(tmp_path / "far", 500)
    for endpoint in (phone, far):
        endpoint.start(T0)
    try:
        far.messenger.set_profile("Far", (RELAY,))
        far_id, _ = befriend(phone, far, T0)
        assert not phone.messenger.mailbox_hints
        phone.messenger.set_mailbox_hints(True)
        phone.close()
        phone.open()
        phone.start(T0)
        assert phone.messenger.mailbox_hints
        phone.messenger.send_text(far_id, "hinted by choice", T0)
        hello = phone.messenger.take_outgoing()[0]
        assert hello.flags & Flag.MAILBOX_HINT
        phone.messenger.set_mailbox_hints(False)  # envelopes built from now on carry none
        other = Endpoint(tmp_path / "other", 900)
        other.start(T0)
        other.messenger.set_profile("Other", (RELAY,))
        other_id, _ = befriend(phone, other, T0)
        phone.messenger.send_text(other_id, "not any more", T0)
        (hello_to_other,) = phone.messenger.take_outgoing()
        assert not hello_to_other.mailbox_hint
        other.close()
    finally:
        phone.close()
        far.close()
