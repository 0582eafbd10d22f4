"""Typed errors of the store room: one root; messages name files, never keys or contents.

`WrongKey` is the owner's fault (a wrong passphrase), `CorruptStore` the card's (a damaged,
truncated, foreign or newer file: show it, do not retry in a loop), `DiskFull` and
`ReadOnlyStore` the disk's (new work is refused, what is stored stays), `Locked` the caller's
(the vault is not open).
"""


class StoreError(Exception):
    """Root of every error raised by `pigeon.store`."""


class WrongKey(StoreError):
    """The passphrase (or raw key) does not open the store."""


class CorruptStore(StoreError):
    """A store file is damaged, truncated, foreign, or missing where it must exist."""


class NewerSchema(CorruptStore):
    """A database was written by a newer Pigeon than this one; it is left untouched."""


class InsecureKeyFile(StoreError):
    """A key file can be read by other users; it is refused rather than used."""


class DiskFull(StoreError):
    """The disk or the store's size limit is full; the failed write was rolled back."""


class ReadOnlyStore(StoreError):
    """The file system holding the store is read-only (a worn SD card); nothing was written."""


class Locked(StoreError):
    """The store is not open: the vault is not unlocked yet, or the store was closed."""


class NotFound(StoreError, LookupError):
    """The named record (contact, message, vault) does not exist."""


class Conflict(StoreError):
    """The write breaks a constraint: a duplicate id, or a record that refers to a missing one."""
