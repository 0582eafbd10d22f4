"""One unit of messenger work: a vault transaction plus what to do once it has committed.

Packets and events produced inside a transaction are released only after it commits: a
ratchet message leaves the node only once the ratchet step that made it is on disk, and a
screen hears of a message only once it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pigeon.mesh.packet import Packet
from pigeon.messenger.app_outgoing import AppOutgoing
from pigeon.store.vault import VaultTransaction


@dataclass(slots=True)
class Work:
    """A transaction and its pending side effects (message ids to announce, packets to send)."""

    tx: VaultTransaction
    packets: list[Packet] = field(default_factory=list)
    recipients: dict[bytes, str] = field(default_factory=dict)  # packet id -> contact id
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    contacts_changed: bool = False
    tags_changed: bool = False
    established: set[str] = field(default_factory=set)  # contacts with a new session
    app_envelopes: list[AppOutgoing] = field(default_factory=list)  # for app contacts

    def send(self, packet: Packet, contact_id: str | None) -> None:
        """Send `packet` after the commit; `contact_id` is the contact it is for, if known."""
        self.packets.append(packet)
        if contact_id is not None:
            self.recipients[packet.packet_id] = contact_id

    def message_added(self, message_id: str) -> None:
        """Announce a new message after the commit."""
        self.added.append(message_id)
        self.contacts_changed = True

    def message_updated(self, message_id: str) -> None:
        """Announce a changed message after the commit (once per unit of work)."""
        if message_id not in self.updated and message_id not in self.added:
            self.updated.append(message_id)
