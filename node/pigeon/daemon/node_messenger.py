"""The messenger as the node runs it: first-boot passphrase, unlock packets, relay identity.

`NodeMessenger` adds to the public `Messenger` what only the composition root may do: an empty
old passphrase stands for the first-boot one (see `first_boot`), the packets an unlock produces
go to the node's radio rather than back to the web page, and the relay bridge gets the owner's
mailbox key with a signer and the relay hints of verified contacts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from pigeon.crypto.card import ContactCard
from pigeon.crypto.errors import CryptoError
from pigeon.daemon.first_boot import auto_unlock_path, read_auto_passphrase
from pigeon.daemon.relay_bridge import DepositTarget, MailboxOwner
from pigeon.mesh.packet import Packet
from pigeon.messenger.addressing import address, intro_tag_key
from pigeon.messenger.api import Messenger, MessengerError
from pigeon.store.errors import StoreError
from pigeon.store.keeper import VaultKeeper
from pigeon.store.keys import RandomBytes
from pigeon.store.spool_db import Spool

_LOGGER = logging.getLogger(__name__)

DAY_S = 86_400.0


class NodeMessenger(Messenger):
    """The messenger as the node runs it.

    An empty old passphrase means the first-boot one ("device-bound"), and the packets an unlock
    produces go straight to `send_packets` (the node carries them; a web page could not).
    """

    def __init__(self, keeper: VaultKeeper, spool: Spool, *, rng: RandomBytes = os.urandom) -> None:
        super().__init__(keeper, spool, rng=rng)
        self._auto_unlock = auto_unlock_path(keeper.data_dir)
        self.send_packets: Callable[[list[Packet]], None] | None = None

    def unlock(self, passphrase: str, now: float) -> list[Packet]:
        """Open the vault; its packets go to `send_packets` (returns [] then).

        Raises WrongPassphrase, VaultLocked, StorageFailed.
        """
        packets = super().unlock(passphrase, now)
        if self.send_packets is None:
            return packets
        self.send_packets(packets)
        return []

    def change_passphrase(self, old: str, new: str) -> None:
        """Rewrap under `new`; while device-bound, `old` is "" and the owner binds the vault.

        Raises WrongPassphrase, StorageFailed.
        """
        device = read_auto_passphrase(self._auto_unlock)
        if device is not None and old == "":
            super().change_passphrase(device, new)
            self._auto_unlock.unlink(missing_ok=True)
            _LOGGER.info("the vault is now bound to the owner's passphrase")
            return
        super().change_passphrase(old, new)

    def mailbox_owner(self) -> MailboxOwner | None:
        """The owner's mailbox key, signer and card relays; None while the vault is locked."""
        if self.is_locked:
            return None
        try:
            identity = self._parts()[0]
            relays = ContactCard.from_text(self.own_card_text()).relays
        except MessengerError:
            return None
        return MailboxOwner(identity.public_key, identity.sign, relays)

    def deposit_target(self, packet: Packet, now: float) -> DepositTarget | None:
        """The verified contact with relay hints that our envelope `packet` is for, if any.

        Found through the vault's outbox (handshake starts, texts, file chunks) or, failing
        that, the contact's intro tag (handshake confirmations). Handshake replies and receipts
        go to tags agreed inside a session, which the messenger's API does not expose, so they
        travel by mesh only (see docs/operations.md).
        """
        if self.is_locked:
            return None
        try:
            vault = self._vault()
            entry = vault.outbox_entry(packet.packet_id)
            if entry is not None:
                return self._target_of(entry.contact_id)
            for record in vault.contacts():
                tag_key = intro_tag_key(ContactCard.from_bytes(record.card).mailbox_key)
                if packet.recipient_tag in (address(tag_key, now), address(tag_key, now - DAY_S)):
                    return self._target_of(record.contact_id)
        except (MessengerError, StoreError, CryptoError):
            return None
        return None

    def _target_of(self, contact_id: str) -> DepositTarget | None:
        contact = self.contact(contact_id)
        if not contact.verified or not contact.relays:
            return None
        card = ContactCard.from_bytes(self._vault().contact(contact_id).card)
        return DepositTarget(card.mailbox_key, contact.relays)
