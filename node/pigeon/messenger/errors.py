"""Typed errors of the messenger room: one root; messages never carry plaintext or keys.

`MalformedEnvelope` is the peer's fault (bytes from the mesh); the others answer a command of
the owner (through the web page or the OLED) that cannot be carried out as asked.
"""


class MessengerError(Exception):
    """Root of every error raised by `pigeon.messenger`."""


class MalformedEnvelope(MessengerError, ValueError):
    """End-to-end envelope or inner message bytes from outside do not parse."""


class VaultLocked(MessengerError):
    """The vault is locked (or not created yet): unlock it first."""


class WrongPassphrase(MessengerError, ValueError):
    """The passphrase does not open the vault."""


class StorageFailed(MessengerError):
    """The vault refused the write (disk full, damaged file); nothing was changed."""


class UnknownContact(MessengerError, LookupError):
    """No contact has this id."""


class UnknownMessage(MessengerError, LookupError):
    """No message has this id."""


class InvalidCard(MessengerError, ValueError):
    """The card text does not parse or verify (the crypto cause is chained)."""


class OwnCard(InvalidCard):
    """The card is the owner's own: one cannot be one's own contact."""


class DuplicateContact(MessengerError, ValueError):
    """A contact with this identity exists already."""


class InvalidName(MessengerError, ValueError):
    """A display name or file name is empty, too long or has control characters."""


class InvalidText(MessengerError, ValueError):
    """A text is empty, only spaces, or not valid Unicode (a lone surrogate cannot be UTF-8)."""


class MessageTooLarge(MessengerError, ValueError):
    """A text is over 4 KiB of UTF-8, or a file over 25 MB."""


class SafetyNumberMismatch(MessengerError, ValueError):
    """The safety number the owner confirmed is not the one computed for the contact now."""


class FileIncomplete(MessengerError):
    """The file's chunks have not all arrived yet (or it is not a file message)."""


class RefusedToSign(MessengerError, ValueError):
    """A relay asked our identity key to sign bytes it must not sign (a relay-list lookalike)."""
