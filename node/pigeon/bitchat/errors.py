"""Typed errors of the bitchat room: one root; `RemoteError`s mean a peer sent bad bytes.

Messages name the faulty field and never carry payload bytes, keys or peer ids.
"""


class BitchatError(Exception):
    """Root of every error raised by `pigeon.bitchat`."""


class RemoteError(BitchatError, ValueError):
    """A peer's bytes are not valid bitchat (the peer's fault, never ours)."""


class MalformedPacket(RemoteError):
    """Not a bitchat packet of version 1 or 2 (short, unknown version, fields past the end)."""


class PacketTooLarge(RemoteError):
    """A packet, or its declared payload length, is over the size cap."""


class MalformedFragment(RemoteError):
    """A fragment packet's payload has no valid fragment header (short, index not below total)."""


class MalformedAnnounce(RemoteError):
    """An announce's TLVs are cut short or lack the nickname or a key."""


class BadSignature(RemoteError):
    """A packet's Ed25519 signature is missing or does not verify under the announced key."""


class IdentityMismatch(RemoteError):
    """An announce's sender id is not the first 8 bytes of SHA-256 of its Noise static key."""


class MalformedEnvelope(RemoteError):
    """A courier envelope's TLVs or a spray receipt are cut short, of a wrong length or missing."""


class MalformedCarrier(RemoteError):
    """A Nostr carrier's TLVs are cut short, lack a field, or name an unknown direction."""


class LocalError(BitchatError, ValueError):
    """We asked for something bitchat cannot carry (our fault): a nickname or text too long."""
