"""State written by older versions of the messenger, brought to today's shape once at unlock.

The store migrates its schema when a database opens; records the messenger encodes itself
(inside the vault's rows) are upgraded here, in the unlock's transaction, so that no other code
ever sees an old version. Peer records of versions 1 and 2 held a Noise XX / Double Ratchet
session: the upgrade keeps the contact's tag keys and conversation, drops the session and the
handshake state around it, and puts the messages still undelivered back in the contact's
waiting list, so a new Olm session starts by itself on the next send or tick (through a prekey
request if the contact's card predates Olm) and sends them in order.
"""

from __future__ import annotations

import logging
import struct
from typing import Final

from pigeon.messenger.records import (
    PEER_RECORD_V1,
    PEER_RECORD_V2,
    PEER_RECORD_VERSION,
    upgrade_peer_record,
)
from pigeon.store.vault import VaultTransaction
from pigeon.store.vault_records import MessageState, SessionState

_LOGGER = logging.getLogger(__name__)

# Owner secrets of the Noise handshake era (see git history: messenger/inbox.py).
OLD_GUARD_SECRET: Final = "handshake-guard"
OLD_RESPONDERS_SECRET: Final = "responders"
OLD_RESPONDER_PREFIX: Final = "responder:"
OLD_INTRO_CLOSED_PREFIX: Final = "intro-closed:"
_OLD_INDEX_ENTRY: Final = struct.Struct(">16sd")


def upgrade_peer_records(tx: VaultTransaction) -> int:
    """Bring every version-1 or -2 peer record to today's version (see the module docstring);
    returns how many were upgraded."""
    upgraded = 0
    for contact in tx.contacts():
        stored = tx.session(contact.contact_id)
        if stored is None or stored.format_version not in (PEER_RECORD_V1, PEER_RECORD_V2):
            continue
        record, listed = upgrade_peer_record(stored.state)
        waiting = tx.take_waiting(contact.contact_id)
        _requeue_undelivered(tx, contact.contact_id)  # sent first, so first again
        tx.add_waiting(contact.contact_id, (*listed, *waiting))
        tx.delete_owner_secret(OLD_INTRO_CLOSED_PREFIX + contact.contact_id)
        current = SessionState(PEER_RECORD_VERSION, record.to_bytes(), stored.updated_at)
        tx.save_session(contact.contact_id, current)
        upgraded += 1
    if upgraded:
        _drop_handshake_state(tx)
        _LOGGER.info("moved %d contacts from their old sessions to Olm", upgraded)
    return upgraded


def _requeue_undelivered(tx: VaultTransaction, contact_id: str) -> None:
    """The old session's envelopes cannot be read any more: their messages wait again."""
    again: list[str] = []
    for entry in tx.outbox_for_contact(contact_id):
        tx.remove_from_outbox(entry.envelope_id)
        if entry.message_id is None or entry.message_id in again:
            continue
        if tx.message(entry.message_id).state not in (MessageState.DELIVERED, MessageState.FAILED):
            again.append(entry.message_id)
    tx.add_waiting(contact_id, again)


def _drop_handshake_state(tx: VaultTransaction) -> None:
    index = tx.owner_secret(OLD_RESPONDERS_SECRET) or b""
    if len(index) % _OLD_INDEX_ENTRY.size == 0:
        for handshake_id, _ in _OLD_INDEX_ENTRY.iter_unpack(index):
            tx.delete_owner_secret(OLD_RESPONDER_PREFIX + handshake_id.hex())
    tx.delete_owner_secret(OLD_RESPONDERS_SECRET)
    tx.delete_owner_secret(OLD_GUARD_SECRET)
