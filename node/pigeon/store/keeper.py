"""The data directory: opening the spool with the device key, and the vault's lock and unlock.

Layout of the data directory (mode 0700):

    device.key     32 random bytes, mode 0600: the spool's SQLCipher key
    spool.db       the spool (plus spool.db-wal and spool.db-shm while open)
    vault.header   the vault's data key wrapped under the owner's passphrase (see keys.py)
    vault.db       the vault (plus vault.db-wal and vault.db-shm while open)
    vault.autounlock   the device passphrase, while the vault is device-bound (binding.py)
    vault.header.next  a re-key's fresh data key, only while one is under way (binding.py)

The vault's wrapped key lives in its own file rather than in the spool so that the vault stays
self-contained (a damaged spool never locks the owner out) and a passphrase change is one atomic
rename of a 106-byte file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from pigeon.store import binding
from pigeon.store.db import DATABASE_SUFFIXES
from pigeon.store.erase import shred_written_file
from pigeon.store.errors import Conflict, CorruptStore, Locked, NotFound, StoreError, WrongKey
from pigeon.store.keys import (
    DEFAULT_ARGON2,
    DIR_MODE,
    KEY_BYTES,
    Argon2Params,
    DatabaseKey,
    RandomBytes,
    load_or_create_device_key,
    read_vault_header,
    unwrap_data_key,
    wrap_data_key,
    write_vault_header,
)
from pigeon.store.repage import repage_path
from pigeon.store.spool_db import Spool
from pigeon.store.vault import VAULT_PAGE_BYTES, Vault

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DataDir:
    """Where the store's files live (`/var/lib/pigeon` on a Pi)."""

    root: Path

    @property
    def device_key(self) -> Path:
        """The spool's key file."""
        return self.root / "device.key"

    @property
    def spool_db(self) -> Path:
        """The spool database."""
        return self.root / "spool.db"

    @property
    def vault_header(self) -> Path:
        """The vault's wrapped data key."""
        return self.root / "vault.header"

    @property
    def vault_db(self) -> Path:
        """The vault database."""
        return self.root / "vault.db"

    @property
    def next_header(self) -> Path:
        """A re-key's fresh data key under the new passphrase, until it replaces the header."""
        return self.root / "vault.header.next"

    @property
    def auto_unlock(self) -> Path:
        """The device passphrase while the vault is device-bound (see `pigeon.store.binding`)."""
        return self.root / "vault.autounlock"

    def ensure(self) -> None:
        """Create the directory (and missing parents) with mode 0700, whatever the umask."""
        try:
            missing = [d for d in (self.root, *self.root.parents) if not d.exists()]
            for directory in reversed(missing):
                directory.mkdir(mode=DIR_MODE, exist_ok=True)
                os.chmod(directory, DIR_MODE)  # the umask may have taken bits off
            mode = self.root.stat().st_mode
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot create the data directory") from exc
        if mode & 0o077:
            _LOGGER.warning("%s is open to other users (mode %o); 0700 is advised", self.root, mode)


def open_spool(
    data_dir: DataDir,
    *,
    max_size_bytes: int | None = None,
    random_bytes: RandomBytes = os.urandom,
) -> Spool:
    """Open the spool, creating the device key and the database on first start.

    Raises CorruptStore, InsecureKeyFile, DiskFull or StoreError.
    """
    data_dir.ensure()
    if data_dir.spool_db.exists() and not data_dir.device_key.exists():
        # A new key would never open the old spool; keep the card as it is and say so.
        raise CorruptStore(
            f"{data_dir.device_key} is missing: {data_dir.spool_db} cannot be opened"
        )
    key = load_or_create_device_key(data_dir.device_key, random_bytes)
    return Spool.open(data_dir.spool_db, key, max_size_bytes=max_size_bytes)


def remove_database_files(path: Path) -> None:
    """Delete a database with its WAL, shared-memory and journal files (if present)."""
    for suffix in DATABASE_SUFFIXES:
        path.with_name(path.name + suffix).unlink(missing_ok=True)


class VaultKeeper:
    """Creates, unlocks, locks and re-keys the vault; not thread-safe (the daemon owns it).

    `argon2` is the cost for new wraps; an unlock rewraps a header made with other figures.
    """

    def __init__(
        self,
        data_dir: DataDir,
        *,
        argon2: Argon2Params = DEFAULT_ARGON2,
        ephemeral: bool = False,
        max_size_bytes: int | None = None,
        random_bytes: RandomBytes = os.urandom,
        page_bytes: int = VAULT_PAGE_BYTES,
    ) -> None:
        self.data_dir = data_dir
        self._page_bytes = page_bytes  # of a vault created here (bench/bench_card_writes.py)
        self._argon2 = argon2
        self._ephemeral = ephemeral
        self._max_size_bytes = max_size_bytes
        self._random_bytes = random_bytes
        self._vault: Vault | None = None

    @property
    def is_initialised(self) -> bool:
        """Whether a vault was created (its header exists)."""
        return self.data_dir.vault_header.exists()

    @property
    def ephemeral(self) -> bool:
        """Whether history is kept in memory only (from the next unlock on, if just changed)."""
        return self._ephemeral

    def set_ephemeral(self, enabled: bool) -> None:
        """Choose ephemeral history; it applies when the vault is next unlocked."""
        self._ephemeral = enabled

    @property
    def is_unlocked(self) -> bool:
        """Whether the vault is open."""
        return self._vault is not None and self._vault.is_open

    @property
    def vault(self) -> Vault:
        """The open vault; raises Locked until `unlock` (or `initialise`) succeeds."""
        if self._vault is None or not self._vault.is_open:
            raise Locked("the vault is locked: the owner has not unlocked it yet")
        return self._vault

    def initialise(self, passphrase: str) -> Vault:
        """Create an empty vault under `passphrase` and open it; raises Conflict if one exists."""
        if self.is_initialised:
            raise Conflict(f"{self.data_dir.vault_header}: a vault already exists")
        self.data_dir.ensure()
        data_key = DatabaseKey(self._random_bytes(KEY_BYTES))
        header = wrap_data_key(data_key, passphrase, self._argon2, self._random_bytes)
        # A vault.db without a header is left by an interrupted initialise; its key is lost.
        remove_database_files(self.data_dir.vault_db)
        binding.abandon(self.data_dir.next_header)  # of a vault erased since
        vault = self._open(data_key, create=True)
        try:
            write_vault_header(self.data_dir.vault_header, header)
        except BaseException:
            vault.close()
            raise
        _LOGGER.info("created a new vault in %s", self.data_dir.root)
        self._vault = vault
        return vault

    def unlock(self, passphrase: str) -> Vault:
        """Open the vault, first settling a re-key cut short (`pigeon.store.binding`).

        Raises NotFound (no vault), WrongKey, CorruptStore or DiskFull.
        """
        if self.is_unlocked:
            return self.vault
        if not self.is_initialised:
            raise NotFound(f"{self.data_dir.root}: no vault has been created yet")
        self._settle(passphrase)
        header = read_vault_header(self.data_dir.vault_header)
        data_key = unwrap_data_key(header, passphrase)
        vault = self._open(data_key, create=False)
        if header.params != self._argon2 and not vault.read_only:  # rewrapped when it can be
            write_vault_header(
                self.data_dir.vault_header,
                wrap_data_key(data_key, passphrase, self._argon2, self._random_bytes),
            )
            _LOGGER.info("rewrapped the vault key with the configured Argon2 cost")
        self._vault = vault
        return vault

    def change_passphrase(self, old: str, new: str) -> None:
        """Rewrap the data key under `new` (the database is untouched); raises WrongKey."""
        if not self.is_initialised:
            raise NotFound(f"{self.data_dir.root}: no vault has been created yet")
        self._settle(old)
        header = read_vault_header(self.data_dir.vault_header)
        data_key = unwrap_data_key(header, old)
        write_vault_header(
            self.data_dir.vault_header,
            wrap_data_key(data_key, new, self._argon2, self._random_bytes),
        )
        _LOGGER.info("the vault passphrase was changed")

    def rebind(self, current: str, new: str) -> None:
        """Re-key the vault under a fresh data key wrapped under `new`, shredding the device
        passphrase; `current` opens the header now. Crash-safe: see `pigeon.store.binding`.

        Raises NotFound (no vault), WrongKey, CorruptStore, DiskFull or StoreError.
        """
        if not self.is_initialised:
            raise NotFound(f"{self.data_dir.root}: no vault has been created yet")
        self._settle(current)
        old_key = unwrap_data_key(read_vault_header(self.data_dir.vault_header), current)
        new_key = DatabaseKey(self._random_bytes(KEY_BYTES))
        intent = wrap_data_key(new_key, new, self._argon2, self._random_bytes)
        binding.write_intent(self.data_dir.next_header, intent)
        try:
            self._rekey(old_key, new_key)
        except BaseException:
            self._settle_after_failure(current)
            raise
        self._finish_rebind()
        _LOGGER.info("the vault has a fresh data key under the owner's passphrase")

    def _rekey(self, old_key: DatabaseKey, new_key: DatabaseKey) -> None:
        if self.is_unlocked:
            self.vault.rekey(new_key)
            return
        vault = Vault.open(self.data_dir.vault_db, old_key, create=False)
        try:
            vault.rekey(new_key)
        finally:
            vault.close()

    def _finish_rebind(self) -> None:
        binding.shred_auto_unlock(self.data_dir.auto_unlock)
        binding.install_intent(self.data_dir.next_header, self.data_dir.vault_header)

    def _settle(self, passphrase: str) -> None:
        """Finish or undo a re-key cut short, if `passphrase` opens its intent or the header."""
        intent = binding.read_intent(self.data_dir.next_header)
        if intent is None:
            return
        try:
            new_key = unwrap_data_key(intent, passphrase)
        except WrongKey:
            old_key = unwrap_data_key(read_vault_header(self.data_dir.vault_header), passphrase)
            committed = not Vault.opens_with(self.data_dir.vault_db, old_key)
        else:
            committed = Vault.opens_with(self.data_dir.vault_db, new_key)
        if committed:
            self._finish_rebind()
            _LOGGER.warning("finished a re-key that was cut short: the vault is owner-bound")
        else:
            binding.abandon(self.data_dir.next_header)
            _LOGGER.warning("undid a re-key that was cut short before it changed the vault")

    def _settle_after_failure(self, current: str) -> None:
        try:
            self._settle(current)
        except StoreError as exc:  # the next unlock settles it; the first error is the one raised
            _LOGGER.warning("could not settle the failed re-key yet (%s)", exc)

    def lock(self) -> None:
        """Close the vault (ephemeral history is gone); idempotent."""
        vault, self._vault = self._vault, None
        if vault is not None:
            vault.close()

    def erase(self) -> None:
        """Lock, then crypto-erase the vault: the wrapped data key (and a temporary copy a
        crash may have left) is zeroed and synced before it is deleted, then the database files
        go. Safe to run again after a failure. Raises StoreError naming the file."""
        self.lock()
        shred_written_file(self.data_dir.next_header)  # a re-key's intent wraps the data key too
        shred_written_file(self.data_dir.vault_header)
        try:
            remove_database_files(self.data_dir.vault_db)
            remove_database_files(repage_path(self.data_dir.vault_db))  # a repage's copy
        except OSError as exc:
            raise StoreError(
                f"{self.data_dir.vault_db}: cannot delete it ({exc.strerror})"
            ) from exc
        _LOGGER.info("erased the vault in %s", self.data_dir.root)

    def _open(self, data_key: DatabaseKey, *, create: bool) -> Vault:
        return Vault.open(
            self.data_dir.vault_db,
            data_key,
            create=create,
            ephemeral=self._ephemeral,
            max_size_bytes=self._max_size_bytes,
            page_bytes=self._page_bytes,
        )
