"""What the screens see: frozen snapshots of contacts and messages (no keys, no crypto types).

Reprs leave out names and texts: views end up in logs of the layers that show them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["in", "out"]
MessageKind = Literal["text", "file"]
# Outgoing: queued -> sent -> relayed -> delivered, or failed. Incoming: received.
ContactKind = Literal["node", "app"]
MessageStateName = Literal["queued", "sent", "relayed", "delivered", "failed", "received"]


@dataclass(frozen=True, slots=True)
class ContactView:
    """A contact as a screen shows it; `verified` only after the owner confirmed the number."""

    id: str
    name: str = field(repr=False)
    handle: str
    verified: bool
    safety_number: str = field(repr=False)
    relays: tuple[str, ...]
    unread: int
    last_activity: float
    check_in_interval_s: float
    kind: ContactKind = "node"  # "app": a Pigeon app user, on the app's envelope
    protections: tuple[str, ...] = ()  # what this kind of contact's envelopes get (security.md)


@dataclass(frozen=True, slots=True)
class MessageView:
    """One message of a conversation; `file_progress` is 0.0 to 1.0 for files, else None."""

    id: str
    contact_id: str
    direction: Direction
    kind: MessageKind
    text: str | None = field(repr=False)
    file_name: str | None = field(repr=False)
    file_size: int | None
    file_progress: float | None
    state: MessageStateName
    failure_reason: str | None
    created_at: float
    updated_at: float
    seq: int
