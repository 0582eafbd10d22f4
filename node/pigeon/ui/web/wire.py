"""JSON shapes of the API and WebSocket: messenger views and events as plain dicts."""

from __future__ import annotations

from typing import Any

from pigeon.messenger.api import (
    ContactsChanged,
    ContactView,
    Event,
    LockChanged,
    MessageAdded,
    MessageUpdated,
    MessageView,
    NeighbourhoodHeard,
    Resync,
)
from pigeon.messenger.neighbourhood import PublicChatLine


def message_json(message: MessageView) -> dict[str, Any]:
    """A message as the page's script reads it."""
    return {
        "id": message.id,
        "contact_id": message.contact_id,
        "direction": message.direction,
        "kind": message.kind,
        "text": message.text,
        "file_name": message.file_name,
        "file_size": message.file_size,
        "file_progress": message.file_progress,
        "file_url": f"/api/messages/{message.id}/file" if message.kind == "file" else None,
        "state": message.state,
        "failure_reason": message.failure_reason,
        "created_at": message.created_at,
        "updated_at": message.updated_at,
        "seq": message.seq,
    }


def public_line_json(line: PublicChatLine) -> dict[str, Any]:
    """A public bitchat line for the Neighbourhood view (the sender as a short tag only)."""
    return {
        "seq": line.seq,
        "from": line.sender.hex()[:4],
        "nickname": line.nickname,
        "text": line.body,
        "sent_at_ms": line.sent_at_ms,
        "mine": line.mine,
    }


def contact_json(contact: ContactView) -> dict[str, Any]:
    """A contact as the page's script reads it."""
    return {
        "id": contact.id,
        "name": contact.name,
        "handle": contact.handle,
        "verified": contact.verified,
        "safety_number": contact.safety_number,
        "relays": list(contact.relays),
        "unread": contact.unread,
        "last_activity": contact.last_activity,
        "check_in_interval_s": contact.check_in_interval_s,
        "kind": contact.kind,
        "protections": list(contact.protections),
    }


def event_json(event: Event) -> dict[str, Any]:
    """A messenger event as one WebSocket message."""
    match event:
        case MessageAdded(message):
            return {"type": "message_added", "message": message_json(message)}
        case MessageUpdated(message):
            return {"type": "message_updated", "message": message_json(message)}
        case ContactsChanged():
            return {"type": "contacts_changed"}
        case LockChanged(locked):
            return {"type": "lock_changed", "locked": locked}
        case Resync():
            return {"type": "resync"}
        case NeighbourhoodHeard(line):
            return {"type": "neighbourhood_heard", "line": public_line_json(line)}
