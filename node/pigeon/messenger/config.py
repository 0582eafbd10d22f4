"""Tunables of the messenger; the defaults suit a Pi on a store-and-forward mesh."""

from __future__ import annotations

from dataclasses import dataclass, field

from pigeon.messenger.first_contact import FirstContactPolicy


@dataclass(frozen=True, slots=True)
class MessengerConfig:
    """Lifetimes in seconds, counts in envelopes."""

    # How often queued envelopes are offered again to a new contact (changeable per contact).
    check_in_interval_s: float = 300.0
    # Mesh spools keep envelopes at most a day; a message not delivered by then has failed.
    envelope_lifetime_s: float = 24 * 3600.0
    # Chunks of one file in flight (sent, not yet receipted): bounds spool use on relays.
    file_window: int = 32
    # Responder handshakes waiting for message 3 from senders not known yet; a new HELLO
    # evicts the oldest when all are taken.
    max_pending_responders: int = 64
    # HELLOs answered per source and per path (see `first_contact`).
    first_contact: FirstContactPolicy = field(default_factory=FirstContactPolicy)
    # Message 2 and 3 payloads are fresh for 600 s (the crypto guard): a pending handshake
    # older than this cannot complete and is started again.
    handshake_retry_s: float = 900.0
    # Both sides initiated: the lower identity key's initiation wins if it is this recent.
    race_window_s: float = 1800.0
    # Attach the recipient's signed mailbox hint (from its card) to every envelope, so a
    # neighbouring node with internet can deposit it at the recipient's relays. It shows every
    # hop whose mailbox the envelope is for (see docs/security.md), so it is off by default.
    attach_mailbox_hints: bool = False
    # The app relays (`/ws` URLs) where the owner's app mailbox is read: our app card lists
    # them, because the app deposits for a contact only at the relays its card lists. (The
    # profile's relays are our own protocol's `/v1` mailboxes, which the app cannot speak.)
    app_mailbox_relays: tuple[str, ...] = ()
