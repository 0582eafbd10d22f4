"""MailboxHint: a person's mailbox key and relays, signed by that person, for strangers to use.

A sender whose phone has no internet attaches its recipient's hint to a mesh envelope; any
neighbourhood node with an uplink can then deposit the envelope in the recipient's mailbox
without knowing either party. The hint is self-authenticating (its signature is by the mailbox
key it names), reveals no name and no Noise key, and is published inside the person's contact
card (field HINT_SIGNATURE), so a sender copies it from a card it already holds.

Binary form (at most `MAX_HINT_LEN` bytes):
    mailbox_key 32 || relays_len u16 || relays (see relay_urls) || signature 64
The signature is Ed25519 by `mailbox_key` over
    HINT_DOMAIN || mailbox_key || relays_len u16 || relays
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from pigeon.crypto.errors import MalformedInput
from pigeon.crypto.relay_urls import MAX_ENCODED_RELAYS_LEN, decode_relays, encode_relays
from pigeon.crypto.signing import PUBLIC_KEY_LEN, SIGNATURE_LEN, verify

HINT_DOMAIN: Final = b"Pigeon.MailboxHint.v1"
MAX_HINT_LEN: Final = PUBLIC_KEY_LEN + 2 + MAX_ENCODED_RELAYS_LEN + SIGNATURE_LEN
_MIN_HINT_LEN: Final = PUBLIC_KEY_LEN + 2 + SIGNATURE_LEN

Signer = Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class MailboxHint:
    """A verified hint: build with `sign`, `from_bytes` or `from_parts`."""

    mailbox_key: bytes
    relays: tuple[str, ...]
    signature: bytes

    @classmethod
    def sign(cls, mailbox_key: bytes, relays: Sequence[str], signer: Signer) -> MailboxHint:
        """Our own hint; `signer` signs with the identity key whose public half is `mailbox_key`.

        Raises MalformedInput on a bad relay list.
        """
        encoded = encode_relays(relays)
        return cls.from_parts(mailbox_key, encoded, signer(signed_message(mailbox_key, encoded)))

    @classmethod
    def from_parts(cls, mailbox_key: bytes, relays: bytes, signature: bytes) -> MailboxHint:
        """Check a hint given as its parts; raises MalformedInput, WeakKey or InvalidSignature."""
        urls = decode_relays(relays)
        verify(mailbox_key, signed_message(mailbox_key, relays), signature)
        return cls(bytes(mailbox_key), urls, bytes(signature))

    @classmethod
    def from_bytes(cls, data: bytes) -> MailboxHint:
        """Parse and verify the binary form; raises MalformedInput, WeakKey or InvalidSignature."""
        data = bytes(data)
        if not _MIN_HINT_LEN <= len(data) <= MAX_HINT_LEN:
            raise MalformedInput(f"a mailbox hint is {_MIN_HINT_LEN} to {MAX_HINT_LEN} bytes")
        relays_end = PUBLIC_KEY_LEN + 2 + int.from_bytes(data[PUBLIC_KEY_LEN : PUBLIC_KEY_LEN + 2])
        if relays_end + SIGNATURE_LEN != len(data):
            raise MalformedInput("mailbox hint relays_len does not match its length")
        return cls.from_parts(
            data[:PUBLIC_KEY_LEN], data[PUBLIC_KEY_LEN + 2 : relays_end], data[relays_end:]
        )

    def to_bytes(self) -> bytes:
        """The binary form."""
        relays = encode_relays(self.relays)
        return self.mailbox_key + len(relays).to_bytes(2) + relays + self.signature


def signed_message(mailbox_key: bytes, relays: bytes) -> bytes:
    """What the hint's signature covers."""
    if len(mailbox_key) != PUBLIC_KEY_LEN:
        raise MalformedInput(f"a mailbox key is {PUBLIC_KEY_LEN} bytes")
    return HINT_DOMAIN + mailbox_key + len(relays).to_bytes(2) + relays
