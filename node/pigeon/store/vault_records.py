"""Records of the vault: what the messenger stores and gets back. Times are epoch seconds.

Reprs never show message bodies, names, cards, secrets or session states.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

DEFAULT_CHECK_IN_INTERVAL_S: Final = 300.0


class Direction(StrEnum):
    """Who wrote a message: the contact (`IN`) or the owner (`OUT`)."""

    IN = "in"
    OUT = "out"


class MessageState(StrEnum):
    """Where a message is: outgoing ones move queued -> sent -> relayed -> delivered or failed."""

    QUEUED = "queued"
    SENT = "sent"
    RELAYED = "relayed"
    DELIVERED = "delivered"
    FAILED = "failed"
    RECEIVED = "received"


@dataclass(frozen=True, slots=True)
class Verification:
    """The owner confirmed `safety_number` with the contact at `verified_at`."""

    verified_at: float
    safety_number: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact from its card; `verification` is None until the owner confirms the number."""

    contact_id: str
    display_name: str = field(repr=False)
    card: bytes = field(repr=False)
    created_at: float
    check_in_interval_s: float = DEFAULT_CHECK_IN_INTERVAL_S
    verification: Verification | None = None

    @property
    def is_verified(self) -> bool:
        """Whether the owner has confirmed this contact's safety number."""
        return self.verification is not None


@dataclass(frozen=True, slots=True)
class SessionState:
    """A contact's session as the crypto room serialised it, with that encoding's version."""

    format_version: int
    state: bytes = field(repr=False)
    updated_at: float


@dataclass(frozen=True, slots=True)
class Message:
    """One history entry: a text `body` or a `file_id`, exactly one of them.

    `seq` orders history; it is assigned by the vault (0 before `append_message`).
    """

    message_id: str
    contact_id: str
    direction: Direction
    state: MessageState
    created_at: float
    updated_at: float
    body: str | None = field(default=None, repr=False)
    file_id: str | None = None
    failure_reason: str | None = None
    seq: int = 0

    def __post_init__(self) -> None:
        if (self.body is None) == (self.file_id is None):
            raise ValueError("a message has either a body or a file_id")


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An encoded envelope waiting for delivery, with its retry schedule."""

    envelope_id: bytes
    contact_id: str
    message_id: str | None
    priority: int
    envelope: bytes = field(repr=False)
    created_at: float
    expires_at: float
    next_attempt_at: float
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A file being sent or received in `chunk_count` chunks (their size is the sender's)."""

    file_id: str
    contact_id: str
    name: str = field(repr=False)
    size: int
    chunk_count: int
    created_at: float


@dataclass(frozen=True, slots=True)
class PublicChatLine:
    """One public bitchat message heard (or posted) in the neighbourhood; `seq` by the vault."""

    sender: bytes  # the bitchat peer id (8 bytes)
    nickname: str
    body: str = field(repr=False)
    sent_at_ms: int  # the sender's clock
    heard_at: float
    mine: bool = False  # posted by the owner from the page
    seq: int = 0
