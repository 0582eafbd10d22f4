"""Junk envelopes anyone holding the owner's card can write, for the tests."""

from __future__ import annotations

import random

from pigeon.crypto.app_bundle import AppIdentityBundle
from pigeon.crypto.card import ContactCard
from pigeon.crypto.identity import Identity
from pigeon.crypto.olm_account import OlmAccount
from pigeon.crypto.olm_session import OlmSession
from pigeon.crypto.olm_wire import MESSAGE_TYPE_PREKEY, Initiation, OlmMessage
from pigeon.crypto.signing import SigningKey
from pigeon.mesh.packet import Packet
from pigeon.messenger.addressing import address, intro_tag_key
from pigeon.messenger.envelope import MessageEnvelope, PrekeyEnvelope, encode_envelope
from pigeon.messenger.packets import EnvelopeFrame

_junk_rng = random.Random(7)


def card_key(card_text: str) -> bytes:
    """The identity (mailbox) key a card names."""
    return ContactCard.from_text(card_text).mailbox_key


def intro_tag_at(card_text: str, now: float) -> bytes:
    """The intro tag of the card's owner on the day of `now` (anyone can compute it)."""
    return address(intro_tag_key(card_key(card_text)), now)


def junk_message(tag: bytes, now: float) -> Packet:
    """An Olm-normal-message-shaped envelope of random bytes."""
    frame = EnvelopeFrame.new(_junk_rng.randbytes, tag, int(now + 3600))
    body = b"\x03" + _junk_rng.randbytes(600)
    return frame.packet(encode_envelope(MessageEnvelope(body)))


def stranger_prekey(card_text: str, tag: bytes, now: float) -> Packet:
    """A real pre-key message to the card's fallback prekey, from a stranger's identity."""
    card = ContactCard.from_text(card_text)
    assert card.prekey is not None
    account = OlmAccount.create(SigningKey.generate(), now)
    session = OlmSession.outbound(account, card.prekey)
    message = session.encrypt_message(bytes(1024))
    return _prekey_packet(Initiation(account.identity_bundle(), message), tag, now)


def forged_prekey(sender: AppIdentityBundle, card_text: str, tag: bytes, now: float) -> Packet:
    """A pre-key message naming a contact's (public) Olm identity and the card owner's fallback
    prekey, with a random base key and inner message: anyone can write it; it opens nothing."""
    card = ContactCard.from_text(card_text)
    assert card.prekey is not None
    inner = b"\x03" + _junk_rng.randbytes(200)
    fields = [card.prekey.prekey, _junk_rng.randbytes(32), sender.curve_identity_key]
    body = b"".join(bytes([(n + 1) << 3 | 2, 32]) + key for n, key in enumerate(fields))
    body += bytes([4 << 3 | 2]) + _varint(len(inner)) + inner
    message = OlmMessage(MESSAGE_TYPE_PREKEY, b"\x03" + body)
    return _prekey_packet(Initiation(sender, message), tag, now)


def prekey_contact_card(seed: int, now: float) -> tuple[str, AppIdentityBundle]:
    """A made-up contact's version 2 card text and its Olm identity (to forge junk from)."""
    secrets = bytes([seed]) * 32, bytes([seed + 1]) * 32
    account = OlmAccount.create(SigningKey(secrets[0]), now)
    prekey = account.fallback_prekey_bundle()
    return ContactCard.create(Identity.from_secrets(*secrets), prekey=prekey).to_text(), (
        prekey.identity
    )


def _varint(value: int) -> bytes:
    out = b""
    while value > 0x7F:
        out += bytes([value & 0x7F | 0x80])
        value >>= 7
    return out + bytes([value])


def _prekey_packet(initiation: Initiation, tag: bytes, now: float) -> Packet:
    frame = EnvelopeFrame.new(_junk_rng.randbytes, tag, int(now + 3600))
    return frame.packet(encode_envelope(PrekeyEnvelope(initiation.to_bytes())))
