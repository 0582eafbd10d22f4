"""State written by older versions of the messenger, brought to today's shape once at unlock.

The store migrates its schema when a database opens; records the messenger encodes itself
(inside the vault's rows) are upgraded here, in the unlock's transaction, so that no other code
ever sees an old version.
"""

from __future__ import annotations

import logging

from pigeon.messenger.records import PEER_RECORD_V1, PEER_RECORD_VERSION, upgrade_peer_record
from pigeon.store.vault import VaultTransaction
from pigeon.store.vault_records import SessionState

_LOGGER = logging.getLogger(__name__)


def upgrade_peer_records(tx: VaultTransaction) -> int:
    """Move the waiting lists of version-1 peer records to the vault's `waiting` table, in
    order, and store the records as today's version; returns how many were upgraded."""
    upgraded = 0
    for contact in tx.contacts():
        stored = tx.session(contact.contact_id)
        if stored is None or stored.format_version != PEER_RECORD_V1:
            continue
        record, waiting = upgrade_peer_record(stored.state)
        tx.add_waiting(contact.contact_id, waiting)
        current = SessionState(PEER_RECORD_VERSION, record.to_bytes(), stored.updated_at)
        tx.save_session(contact.contact_id, current)
        upgraded += 1
    if upgraded:
        _LOGGER.info(
            "moved the waiting lists of %d contacts out of their session records", upgraded
        )
    return upgraded
