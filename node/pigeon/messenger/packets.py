"""Building the mesh packets the messenger sends: envelopes, their associated data, receipts
and notices.

A ratchet message binds the mesh header fields no hop may change (`associated_data`), so the
tag, expiry, flags and receipt hash are chosen before encryption (`EnvelopeFrame`); the packet
id follows from them and the ciphertext.
Handshake envelopes carry a receipt hash of random bytes whose preimage nobody knows: they are
retried until the next handshake step arrives, not receipted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from pigeon.mesh.packet import (
    DEFAULT_TTL,
    Flag,
    Packet,
    PacketType,
    associated_data,
    make_notice,
    make_receipt,
)
from pigeon.mesh.receipt import RECEIPT_HASH_LEN, RECEIPT_SECRET_LEN, receipt_hash, seal_notice
from pigeon.messenger.addressing import address

Random = Callable[[int], bytes]

# Outbox priorities: higher goes first (the vault orders `outbox_due` by priority descending).
PRIORITY_HANDSHAKE: Final = 3
PRIORITY_TEXT: Final = 2
PRIORITY_CHUNK: Final = 1


@dataclass(frozen=True, slots=True, repr=False)
class EnvelopeFrame:
    """The header fields of an envelope about to be written, and its receipt secret."""

    recipient_tag: bytes
    expires_at_s: int
    flags: int
    receipt_secret: bytes | None = field(default=None)
    receipt_hash: bytes = b""
    mailbox_hint: bytes = b""

    @classmethod
    def new(
        cls,
        rng: Random,
        tag: bytes,
        expires_at_s: int,
        flags: int = 0,
        *,
        receipted: bool = True,
        mailbox_hint: bytes = b"",
    ) -> EnvelopeFrame:
        """A fresh receipt secret (or a preimage-less random hash if not receipted).

        A non-empty `mailbox_hint` (the recipient's `MailboxHint` bytes) rides after the
        payload and sets the MAILBOX_HINT flag, which the associated data binds.
        """
        if mailbox_hint:
            flags |= Flag.MAILBOX_HINT
        if receipted:
            secret = rng(RECEIPT_SECRET_LEN)
            return cls(tag, expires_at_s, flags, secret, receipt_hash(secret), mailbox_hint)
        return cls(tag, expires_at_s, flags, None, rng(RECEIPT_HASH_LEN), mailbox_hint)

    def associated_data(self) -> bytes:
        """What the ratchet binds: the packet header without TTL and payload length."""
        return associated_data(
            packet_type=PacketType.ENVELOPE,
            flags=self.flags,
            recipient_tag=self.recipient_tag,
            expires_at_s=self.expires_at_s,
            receipt_hash=self.receipt_hash,
        )

    def packet(self, payload: bytes) -> Packet:
        """The envelope packet carrying `payload`."""
        return Packet(
            type=PacketType.ENVELOPE,
            recipient_tag=self.recipient_tag,
            expires_at_s=self.expires_at_s,
            payload=payload,
            flags=self.flags,
            receipt_hash=self.receipt_hash,
            mailbox_hint=self.mailbox_hint,
        )


def received_associated_data(packet: Packet) -> bytes:
    """The associated data of a received envelope, for decryption."""
    return associated_data(
        packet_type=packet.type,
        flags=packet.flags,
        recipient_tag=packet.recipient_tag,
        expires_at_s=packet.expires_at_s,
        receipt_hash=packet.receipt_hash,
    )


def receipt_for(packet: Packet, secret: bytes, ttl: int = DEFAULT_TTL) -> Packet:
    """The receipt revealing `secret`, addressed to `packet`'s own tag: it clears the spools
    that hold `packet` and names no other tag (so it never links the sender's to ours)."""
    return make_receipt(secret, packet.recipient_tag, packet.expires_at_s, ttl)


def notice_for(packet: Packet, secret: bytes, sender_tag_key: bytes, now: float) -> Packet:
    """The notice telling `packet`'s sender it was delivered: `secret` and the envelope id
    sealed under the tag key the sender serves us under, addressed to today's tag of it."""
    sealed = seal_notice(sender_tag_key, secret, packet.packet_id)
    return make_notice(sealed, address(sender_tag_key, now), packet.expires_at_s)


def is_handshake(packet: Packet) -> bool:
    """Whether `packet` carries a handshake message."""
    return bool(packet.flags & Flag.HANDSHAKE)


HANDSHAKE_FLAGS: Final = int(Flag.HANDSHAKE)
BULK_FLAGS: Final = int(Flag.BULK)


def retry_delay_s(attempts: int, check_in_interval_s: float, rng_fraction: float) -> float:
    """Backoff before re-offering an envelope: 30 s doubling per attempt, capped at the
    contact's check-in interval, with up to 10% jitter (`rng_fraction` in [0, 1))."""
    base = min(30.0 * 2.0 ** min(attempts, 20), check_in_interval_s)
    return base * (1.0 + 0.1 * rng_fraction)
