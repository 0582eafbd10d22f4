"""Building views from vault records (reads only; no crypto beyond the safety number)."""

from __future__ import annotations

from typing import Final

from pigeon.crypto.app_card import AppContactCard
from pigeon.crypto.app_safety import app_safety_number
from pigeon.crypto.card import ContactCard
from pigeon.crypto.identity import Identity, handle
from pigeon.crypto.safety import safety_number
from pigeon.messenger.app_chat import is_app_card
from pigeon.messenger.outbox import transfer_key
from pigeon.messenger.records import Transfer
from pigeon.messenger.views import ContactView, MessageStateName, MessageView
from pigeon.messenger.views import Direction as ViewDirection
from pigeon.store.vault import Vault
from pigeon.store.vault_records import Contact, Direction, Message, MessageState

READ_SEQ_SETTING: Final = "read_seq:"
# What each kind of contact's envelopes get and lack (docs/security.md, "App contacts").
NODE_PROTECTIONS: Final = (
    "Olm end-to-end encryption (vodozemac)",
    "rotating recipient tags: no identity key in clear on the mesh",
    "512-byte padding: lengths hidden",
    "authenticated delivery receipts that clear spools",
)
APP_PROTECTIONS: Final = (
    "Olm end-to-end encryption (vodozemac), the Pigeon app's framing",
    "no rotating tags: both identity keys travel in clear",
    "no 512-byte padding: lengths show",
    "no authenticated receipts: 'delivered' is the app's encrypted ack",
)


def message_view(vault: Vault, message: Message) -> MessageView:
    """The view of `message`, with file name, size and progress for files."""
    state: MessageStateName = message.state.value
    created, updated = message.created_at, message.updated_at
    direction: ViewDirection = "in" if message.direction is Direction.IN else "out"
    if message.file_id is None:
        return MessageView(
            message.message_id,
            message.contact_id,
            direction,
            "text",
            message.body,
            None,
            None,
            None,
            state,
            message.failure_reason,
            created,
            updated,
            message.seq,
        )
    info = vault.file_info(message.file_id)
    name, size, progress = (None, None, 0.0) if info is None else (info.name, info.size, 0.0)
    if info is not None:
        progress = _file_progress(vault, message, info.chunk_count)
    return MessageView(
        message.message_id,
        message.contact_id,
        direction,
        "file",
        None,
        name,
        size,
        progress,
        state,
        message.failure_reason,
        created,
        updated,
        message.seq,
    )


def _file_progress(vault: Vault, message: Message, chunk_count: int) -> float:
    if message.state is MessageState.DELIVERED or not chunk_count:
        return 1.0
    if message.direction is Direction.IN:
        assert message.file_id is not None
        return vault.stored_chunk_count(message.file_id) / chunk_count
    stored = vault.owner_secret(transfer_key(message.file_id or ""))
    if stored is None:
        return 0.0
    return Transfer.from_bytes(stored).delivered / chunk_count


def contact_view(vault: Vault, identity: Identity, contact: Contact) -> ContactView:
    """The view of `contact`; `verified` only while the confirmed number is the current one."""
    if is_app_card(contact.card):
        return _app_contact_view(vault, identity, contact)
    card = ContactCard.from_bytes(contact.card)
    number = safety_number(identity.bundle(), card)
    verified = contact.verification is not None and contact.verification.safety_number == number
    latest = vault.messages(contact.contact_id, limit=1)
    last_activity = latest[0].updated_at if latest else contact.created_at
    return ContactView(
        id=contact.contact_id,
        name=contact.display_name,
        handle=handle(card.mailbox_key),
        verified=verified,
        safety_number=number,
        relays=card.relays,
        unread=unread_count(vault, contact.contact_id),
        last_activity=last_activity,
        check_in_interval_s=contact.check_in_interval_s,
        kind="node",
        protections=NODE_PROTECTIONS,
    )


def _app_contact_view(vault: Vault, identity: Identity, contact: Contact) -> ContactView:
    card = AppContactCard.from_bytes(contact.card)
    number = app_safety_number(identity.public_key, card.identity.identity_key)
    verified = contact.verification is not None and contact.verification.safety_number == number
    latest = vault.messages(contact.contact_id, limit=1)
    return ContactView(
        id=contact.contact_id,
        name=contact.display_name,
        handle=handle(card.identity.identity_key),
        verified=verified,
        safety_number=number,
        relays=card.relay_urls,
        unread=unread_count(vault, contact.contact_id),
        last_activity=latest[0].updated_at if latest else contact.created_at,
        check_in_interval_s=contact.check_in_interval_s,
        kind="app",
        protections=APP_PROTECTIONS,
    )


def read_seq(vault: Vault, contact_id: str) -> int:
    """The seq up to which the owner has read the conversation."""
    value = vault.setting(READ_SEQ_SETTING + contact_id)
    return int(value) if value is not None else 0


def unread_count(vault: Vault, contact_id: str) -> int:
    """Incoming messages after the read mark (one count in SQL, however long the history)."""
    return vault.incoming_after(contact_id, read_seq(vault, contact_id))
