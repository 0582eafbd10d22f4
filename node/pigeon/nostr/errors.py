"""Typed errors of the Nostr room: one root; `RemoteError`s mean a peer or relay sent bad data.

Messages name the faulty field and never carry event content, keys or ids.
"""


class NostrError(Exception):
    """Root of every error raised by `pigeon.nostr`."""


class RemoteError(NostrError, ValueError):
    """Someone else's bytes are not valid Nostr (their fault, never ours)."""


class MalformedEvent(RemoteError):
    """Not a NIP-01 event: not JSON, a missing or mistyped field, a bad hex length, too big."""


class BadEventId(RemoteError):
    """The event's id is not the SHA-256 of its NIP-01 serialisation."""


class BadEventSignature(RemoteError):
    """The event's BIP-340 signature does not verify under its pubkey."""


class MalformedMessage(RemoteError):
    """A relay's message is not one of NIP-01's (EVENT, OK, EOSE, NOTICE, CLOSED) in shape."""


class LocalError(NostrError, ValueError):
    """We asked for something Nostr cannot carry (our fault): a bad key or a 31-byte message."""
