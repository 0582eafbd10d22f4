"""First boot and the vault's passphrase on an appliance that has no keyboard.

The store wraps the vault's data key under a passphrase (`VaultKeeper`). A Pi must come up and
work before anyone typed anything, so on first start the daemon creates the vault under a random
256-bit passphrase kept in `vault.autounlock` (mode 0600) beside it and unlocks with it at every
start: the node is usable at once, and the vault is as safe as the SD card ("device-bound").
When the owner sets a passphrase on the web page, the vault is re-keyed under a fresh data key
wrapped under it and the auto-unlock file is shredded ("owner-bound", `pigeon.store.binding`,
crash-safe at every step): from then on the vault stays locked after each boot
until the owner unlocks it on the page, while the node keeps relaying (and holds the owner's own
envelopes in the spool, unacknowledged, until the unlock). See docs/operations.md.
"""

from __future__ import annotations

import base64
import enum
import logging
import os
from typing import Final

from pigeon.mesh.packet import Packet
from pigeon.messenger.api import Messenger, MessengerError
from pigeon.store.binding import read_auto_passphrase
from pigeon.store.erase import shred_written_file
from pigeon.store.errors import StoreError
from pigeon.store.keeper import DataDir
from pigeon.store.keys import RandomBytes, atomic_write

_LOGGER = logging.getLogger(__name__)

AUTO_PASSPHRASE_BYTES: Final = 32


class VaultMode(enum.Enum):
    """Who can open the vault at boot."""

    DEVICE_BOUND = "device-bound"  # the auto-unlock file opens it: no passphrase set yet
    OWNER_BOUND = "owner-bound"  # only the owner's passphrase opens it


def vault_mode(data_dir: DataDir) -> VaultMode:
    """Device-bound while the auto-unlock file holds a passphrase."""
    if read_auto_passphrase(data_dir.auto_unlock) is None:
        return VaultMode.OWNER_BOUND
    return VaultMode.DEVICE_BOUND


def open_vault_at_start(
    messenger: Messenger, data_dir: DataDir, now: float, random_bytes: RandomBytes = os.urandom
) -> list[Packet] | None:
    """Create (first boot) or auto-unlock the vault: the packets to send, or None when it stays
    locked for the owner (owner-bound, or the device passphrase does not open it: the page asks
    for the passphrase; a node never stops for that). Raises MessengerError or StoreError only
    when the first boot cannot create the vault.
    """
    path = data_dir.auto_unlock
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
    try:
        stored = read_auto_passphrase(path)
        if stored is not None:
            return messenger.unlock(stored, now)
    except (MessengerError, StoreError) as exc:
        _LOGGER.warning(
            "the device passphrase does not open the vault (%s); it waits for the owner's", exc
        )
        return None
    _LOGGER.info("the vault waits for the owner's passphrase (unlock it on the web page)")
    return None


def erase_auto_passphrase(data_dir: DataDir) -> None:
    """Zero, sync and delete the first-boot passphrase (and a temporary copy a crash may have
    left); the identity reset. Raises StoreError naming the file."""
    shred_written_file(data_dir.auto_unlock)
