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
from pigeon.daemon.relay_bridge import DepositTarget, MailboxOwner
from pigeon.mesh.packet import Packet
from pigeon.messenger.api import Messenger, MessengerError
from pigeon.messenger.config import MessengerConfig
from pigeon.messenger.endpoint import storage_errors
from pigeon.store.binding import read_auto_passphrase
from pigeon.store.keeper import VaultKeeper
from pigeon.store.keys import RandomBytes
from pigeon.store.spool_db import Spool

_LOGGER = logging.getLogger(__name__)


class NodeMessenger(Messenger):
    """The messenger as the node runs it.

    An empty old passphrase means the first-boot one ("device-bound"), and the packets an unlock
    produces go straight to `send_packets` (the node carries them; a web page could not).
    """

    def __init__(
        self,
        keeper: VaultKeeper,
        spool: Spool,
        *,
        rng: RandomBytes = os.urandom,
        config: MessengerConfig | None = None,
    ) -> None:
        super().__init__(keeper, spool, rng=rng, config=config)
        self._auto_unlock = keeper.data_dir.auto_unlock
        self.send_packets: Callable[[list[Packet]], None] | None = None

    def unlock(self, passphrase: str, now: float) -> list[Packet]:
        """Open the vault; its packets go to `send_packets` (returns [] then).

        A device passphrase left behind by a passphrase change that older code cut short is
        shredded once the owner's passphrase opened the vault, which then gets a fresh key.
        Raises WrongPassphrase, VaultLocked, StorageFailed.
        """
        packets = super().unlock(passphrase, now)
        device = read_auto_passphrase(self._auto_unlock)
        if device is not None and device != passphrase:
            with storage_errors():
                self._keeper.rebind(passphrase, passphrase)
            _LOGGER.warning("shredded a stale device passphrase and re-keyed the vault")
        if self.send_packets is None:
            return packets
        self.send_packets(packets)
        return []

    @property
    def device_bound(self) -> bool:
        """True while no owner passphrase is set: this node opens the vault itself at start."""
        return self._auto_unlock.exists()

    def change_passphrase(self, old: str, new: str) -> None:
        """Set `new`; while device-bound, `old` is "" and the owner binds the vault: it gets a
        fresh data key wrapped under `new` and the device passphrase is shredded.

        Raises WrongPassphrase, StorageFailed.
        """
        device = read_auto_passphrase(self._auto_unlock)
        if device is not None and old == "":
            with storage_errors():
                self._keeper.rebind(device, new)
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

    def deposit_target(self, packet: Packet) -> DepositTarget | None:
        """The verified contact with relay hints that our packet `packet` is for, if any.

        The messenger names the contact of every packet it emits but receipts
        (`recipient_of`), prekey requests and answers included.
        """
        try:
            contact_id = self.recipient_of(packet.packet_id)
            if contact_id is None:
                return None
            contact = self.contact(contact_id)
            if not contact.verified or not contact.relays:
                return None
            return DepositTarget(self.contact_mailbox_key(contact_id), contact.relays)
        except (MessengerError, CryptoError):
            return None
