"""Junk envelopes anyone holding the owner's card can write, for the tests."""

from __future__ import annotations

import random

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from pigeon.crypto.card import ContactCard
from pigeon.mesh.packet import Packet
from pigeon.messenger.addressing import address, intro_tag_key
from pigeon.messenger.envelope import Hello, RatchetEnvelope, encode_envelope
from pigeon.messenger.packets import HANDSHAKE_FLAGS, EnvelopeFrame

_junk_rng = random.Random(7)


def card_key(card_text: str) -> bytes:
    """The identity (mailbox) key a card names."""
    return ContactCard.from_text(card_text).mailbox_key


def intro_tag_at(card_text: str, now: float) -> bytes:
    """The intro tag of the card's owner on the day of `now` (anyone can compute it)."""
    return address(intro_tag_key(card_key(card_text)), now)


def junk_ratchet(tag: bytes, now: float) -> Packet:
    """The costliest junk: a new ratchet key at message 0 (a DH step), then random bytes."""
    frame = EnvelopeFrame.new(_junk_rng.randbytes, tag, int(now + 3600))
    message = _x25519_public() + bytes(8) + _junk_rng.randbytes(512 + 16)
    return frame.packet(encode_envelope(RatchetEnvelope(message)))


def junk_hello(tag: bytes, now: float) -> Packet:
    """A HELLO anyone could write: a fresh ephemeral key, a random handshake id."""
    rng = _junk_rng.randbytes
    frame = EnvelopeFrame.new(rng, tag, int(now + 3600), HANDSHAKE_FLAGS, receipted=False)
    return frame.packet(encode_envelope(Hello(rng(16), rng(32), _x25519_public())))


def _x25519_public() -> bytes:
    return X25519PrivateKey.generate().public_key().public_bytes_raw()
