"""First boot and the vault's passphrase on an appliance that has no keyboard.

The store wraps the vault's data key under a passphrase (`VaultKeeper`). A Pi must come up and
work before anyone typed anything, so on first start the daemon creates the vault under a random
256-bit passphrase kept in `vault.autounlock` (mode 0600) beside it and unlocks with it at every
start: the node is usable at once, and the vault is as safe as the SD card ("device-bound").
When the owner sets a passphrase on the web page, the data key is rewrapped under it and the
auto-unlock file is deleted ("owner-bound"): from then on the vault stays locked after each boot
until the owner unlocks it on the page, while the node keeps relaying (and holds the owner's own
envelopes in the spool, unacknowledged, until the unlock). See docs/operations.md.
"""

from __future__ import annotations

import base64
import enum
import logging
import os
from pathlib import Path
from typing import Final

from pigeon.mesh.packet import Packet
from pigeon.messenger.api import Messenger
from pigeon.store.erase import shred_written_file
from pigeon.store.errors import StoreError
from pigeon.store.keeper import DataDir
from pigeon.store.keys import RandomBytes, atomic_write

_LOGGER = logging.getLogger(__name__)

AUTO_UNLOCK_NAME: Final = "vault.autounlock"
AUTO_PASSPHRASE_BYTES: Final = 32
_MAX_FILE_BYTES: Final = 256


class VaultMode(enum.Enum):
    """Who can open the vault at boot."""

    DEVICE_BOUND = "device-bound"  # the auto-unlock file opens it: no passphrase set yet
    OWNER_BOUND = "owner-bound"  # only the owner's passphrase opens it


def auto_unlock_path(data_dir: DataDir) -> Path:
    """Where the first-boot passphrase lives until the owner sets their own."""
    return data_dir.root / AUTO_UNLOCK_NAME


def vault_mode(data_dir: DataDir) -> VaultMode:
    """Device-bound while the auto-unlock file exists."""
    return VaultMode.DEVICE_BOUND if auto_unlock_path(data_dir).exists() else VaultMode.OWNER_BOUND


def open_vault_at_start(
    messenger: Messenger, data_dir: DataDir, now: float, random_bytes: RandomBytes = os.urandom
) -> list[Packet] | None:
    """Create (first boot) or auto-unlock the vault: the packets to send, or None when only the
    owner can unlock it. Raises MessengerError (WrongPassphrase, StorageFailed) or StoreError.
    """
    path = auto_unlock_path(data_dir)
    if not messenger.is_initialised:
        passphrase = base64.urlsafe_b64encode(random_bytes(AUTO_PASSPHRASE_BYTES)).decode()
        data_dir.ensure()
        atomic_write(path, passphrase.encode())
        messenger.initialise(passphrase, now)
        _LOGGER.info(
            "first start: created the vault and the identity, unlocked by this device"
            " until the owner sets a passphrase"
        )
        return messenger.take_outgoing()
    stored = read_auto_passphrase(path)
    if stored is None:
        _LOGGER.info("the vault waits for the owner's passphrase (unlock it on the web page)")
        return None
    return messenger.unlock(stored, now)


def erase_auto_passphrase(data_dir: DataDir) -> None:
    """Zero, sync and delete the first-boot passphrase (and a temporary copy a crash may have
    left); the identity reset. Raises StoreError naming the file."""
    shred_written_file(auto_unlock_path(data_dir))


def read_auto_passphrase(path: Path) -> str | None:
    """The first-boot passphrase, or None once the owner set their own."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the auto-unlock file ({exc.strerror})") from exc
    try:
        data = os.read(fd, _MAX_FILE_BYTES)
    finally:
        os.close(fd)
    return data.decode("ascii", errors="replace").strip()
