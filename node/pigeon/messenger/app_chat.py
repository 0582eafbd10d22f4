"""Conversations with Pigeon app users, framed exactly as the app frames them.

The same Olm account and session steps as node contacts (`OlmOps`), but inside the app's
envelope (`pigeon.appmesh.envelope`: type, sender and recipient Ed25519 keys in clear,
protobuf payloads): X3DH init (6) carrying our identity bundle and a pre-key message with
the empty first plaintext, when our key is the lower one (the app's rule); otherwise a
rehandshake request (3) asks the contact to start. Texts go as JSON app messages in message
envelopes (2); each is answered by an ack (4) holding its id, a new session by the
"established" ack 0x00. Control envelopes (5) are read and counted, not shown yet.
A one-time key and the session it opens commit in one vault transaction, and a replayed
init that matches a session we hold opens nothing. Outgoing envelopes are released only
after the transaction that made them commits (see `Work`).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import replace
from typing import Final

from pigeon.appmesh.envelope import Envelope, EnvelopeType, encode_envelope
from pigeon.crypto.app_card import AppContactCard
from pigeon.crypto.app_plaintext import (
    ESTABLISHMENT_ACK,
    AppMessage,
    decode_ack,
    decode_app_message,
    decode_control,
    encode_ack,
    encode_app_message,
)
from pigeon.crypto.errors import BundleMismatch, CryptoError
from pigeon.crypto.identity import handle
from pigeon.crypto.olm_wire import Initiation, OlmMessage
from pigeon.messenger.app_outgoing import AppOutgoing
from pigeon.messenger.app_records import MAX_WAITING, AppRecord, app_record_key
from pigeon.messenger.olm_ops import OlmOps
from pigeon.messenger.work import Work
from pigeon.store.errors import NotFound
from pigeon.store.vault_records import Direction, Message, MessageState

_LOGGER = logging.getLogger(__name__)

APP_MESSAGE_CLAIM: Final = b"app-message:"  # prefix of an app message id's claim on arrival
REHANDSHAKE_GATE_S: Final = 30.0  # the app's RehandshakeGate: one request a contact per 30 s
APP_CARD_FIRST_BYTE: Final = 0x08  # protobuf field 1 varint (version 3); our cards start 1 or 2
RESEND_WINDOW: Final = 50  # latest messages of a conversation looked at for resends
_OPEN_STATES: Final = (MessageState.QUEUED, MessageState.SENT, MessageState.RELAYED)


def is_app_card(card: bytes) -> bool:
    """Whether stored card bytes are the app's card (else they are ours)."""
    return bool(card) and card[0] == APP_CARD_FIRST_BYTE


class AppChat:
    """App-contact sessions for the owner with Ed25519 key `own_key` (see module docstring)."""

    def __init__(self, own_key: bytes, ops: OlmOps, stats: Counter[str]) -> None:
        self._own_key = own_key
        self._ops = ops
        self.stats = stats
        self._last_rehandshake: dict[str, float] = {}

    # -- records -------------------------------------------------------------------------------

    def card(self, work: Work, contact_id: str) -> AppContactCard:
        """The app contact's stored card; raises NotFound, or CryptoError if it is not one."""
        return AppContactCard.from_bytes(work.tx.contact(contact_id).card)

    def record(self, work: Work, contact_id: str) -> AppRecord:
        """The contact's record (empty before its first session)."""
        stored = work.tx.owner_secret(app_record_key(contact_id))
        return AppRecord() if stored is None else AppRecord.from_bytes(stored)

    def save(self, work: Work, contact_id: str, record: AppRecord, now: float) -> None:
        """Store the contact's record in the unit of work."""
        work.tx.put_owner_secret(app_record_key(contact_id), record.to_bytes(), now)

    def forget(self, work: Work, contact_id: str) -> None:
        """Drop the record of a removed contact."""
        work.tx.delete_owner_secret(app_record_key(contact_id))

    # -- sending -------------------------------------------------------------------------------

    def send(self, work: Work, contact_id: str, message_id: str, now: float) -> None:
        """Send stored text `message_id` now, or keep it waiting for a session."""
        record = self.record(work, contact_id)
        waiting = (*record.waiting, message_id)
        for dropped in waiting[:-MAX_WAITING]:
            work.tx.set_message_state(dropped, MessageState.FAILED, now, "no session")
            work.message_updated(dropped)
        record = replace(record, waiting=waiting[-MAX_WAITING:])
        self.save(work, contact_id, self._flush(work, contact_id, record, now), now)

    def _flush(self, work: Work, contact_id: str, record: AppRecord, now: float) -> AppRecord:
        """Send what waits; open a session first if the app's rule lets us start one."""
        if not record.waiting:
            return record
        card = self.card(work, contact_id)
        if record.session is None:
            record = self._rehandshake(work, contact_id, card, record, now)
            if record.session is None:
                return record
        for message_id in record.waiting:
            record = self._send_text(work, card, record, work.tx.message(message_id), now)
        return replace(record, waiting=())

    def _send_text(
        self, work: Work, card: AppContactCard, record: AppRecord, message: Message, now: float
    ) -> AppRecord:
        """Encrypt and send one stored text (again, for a resend: the same id and send time)."""
        plaintext = encode_app_message(
            AppMessage(
                uuid.UUID(hex=message.message_id), message.body or "", None, message.created_at
            )
        )
        record = self._send_on(work, card, record, EnvelopeType.MESSAGE, plaintext)
        work.tx.set_message_state(message.message_id, MessageState.SENT, now)
        work.message_updated(message.message_id)
        return record

    def resend_due(
        self, work: Work, contact_id: str, interval_s: float, lifetime_s: float, now: float
    ) -> None:
        """Send again our texts not acked within `interval_s` (the app resends from the sender
        too, and acks a text it already has); fail them after `lifetime_s`."""
        record = self.record(work, contact_id)
        due = [
            m
            for m in work.tx.messages(contact_id, limit=RESEND_WINDOW)
            if m.direction is Direction.OUT
            and m.state is MessageState.SENT
            and m.updated_at + interval_s <= now
        ]
        if not due or record.session is None:
            return
        card = self.card(work, contact_id)
        if not record.confirmed:  # the contact may never have had our init: offer it again
            state, first = self._ops.encrypt(record.session, b"")
            identity = self._ops.account(work.tx, now).identity_bundle()
            self._emit(work, card, EnvelopeType.X3DH_INIT, Initiation(identity, first).to_bytes())
            record = record.with_session_at(0, state)
        for message in due:
            if message.created_at + lifetime_s <= now:
                work.tx.set_message_state(message.message_id, MessageState.FAILED, now, "expired")
                work.message_updated(message.message_id)
                continue
            self.stats["app_resent"] += 1
            record = self._send_text(work, card, record, message, now)
        self.save(work, contact_id, record, now)

    def _send_on(
        self,
        work: Work,
        card: AppContactCard,
        record: AppRecord,
        kind: EnvelopeType,
        plaintext: bytes,
    ) -> AppRecord:
        state = record.session
        if state is None:
            raise LookupError("no session to send on")
        state, message = self._ops.encrypt(state, plaintext)
        self._emit(work, card, kind, message.to_bytes())
        return record.with_session_at(0, state)

    def _emit(self, work: Work, card: AppContactCard, kind: EnvelopeType, payload: bytes) -> None:
        envelope = encode_envelope(
            Envelope(kind, self._own_key, card.identity.identity_key, payload)
        )
        work.app_envelopes.append(
            AppOutgoing(card.identity.identity_key, envelope, card.relay_urls)
        )
        self.stats[f"app_sent_{kind.name.lower()}"] += 1

    def _rehandshake(
        self, work: Work, contact_id: str, card: AppContactCard, record: AppRecord, now: float
    ) -> AppRecord:
        """Start a new session if ours is the lower key, else ask the contact (gated)."""
        if self._own_key < card.identity.identity_key and card.prekey_bundle is not None:
            state = self._ops.outbound(work.tx, card.prekey_bundle, now)
            state, first = self._ops.encrypt(state, b"")
            identity = self._ops.account(work.tx, now).identity_bundle()
            self._emit(work, card, EnvelopeType.X3DH_INIT, Initiation(identity, first).to_bytes())
            return record.with_current(state, confirmed=False)
        last = self._last_rehandshake.get(contact_id)
        if last is None or now - last >= REHANDSHAKE_GATE_S:
            self._last_rehandshake[contact_id] = now
            self._emit(work, card, EnvelopeType.REHANDSHAKE_REQUEST, b"")
        return record

    # -- receiving -----------------------------------------------------------------------------

    def handle(self, work: Work, envelope: Envelope, now: float) -> bool:
        """One app envelope addressed to us; True if it was taken: Olm opened it (a new session,
        or a message on one: only the contact could have made it), or it is a rehandshake
        request (not authenticated, but the same whoever sent it). Raises CryptoError for a
        malformed one."""
        contact_id = self._contact_of(work, envelope.sender)
        if contact_id is None:
            return False
        record = self.record(work, contact_id)
        kind = envelope.type
        opened = False
        if kind is EnvelopeType.X3DH_INIT:
            record, opened = self._on_init(work, contact_id, envelope.payload, record, now)
        elif kind is EnvelopeType.REHANDSHAKE_REQUEST:
            record, opened = self._on_request(work, contact_id, record, now), True
        elif kind in (EnvelopeType.MESSAGE, EnvelopeType.ACK, EnvelopeType.CONTROL):
            record, opened = self._on_sealed(work, contact_id, envelope, record, now)
        else:
            self.stats["app_ignored_handshake"] += 1
            return False
        self.save(work, contact_id, record, now)
        return opened

    def _contact_of(self, work: Work, sender: bytes) -> str | None:
        contact_id = handle(sender)
        try:
            stored = work.tx.contact(contact_id).card
        except NotFound:
            self.stats["app_unknown_sender"] += 1
            return None
        if not is_app_card(stored) or AppContactCard.from_bytes(stored).identity.identity_key != (
            sender
        ):
            self.stats["app_unknown_sender"] += 1
            return None
        return contact_id

    def _on_init(
        self, work: Work, contact_id: str, payload: bytes, record: AppRecord, now: float
    ) -> tuple[AppRecord, bool]:
        initiation = Initiation.from_bytes(payload)
        card = self.card(work, contact_id)
        if initiation.identity != card.identity:
            raise BundleMismatch("the init's identity bundle differs from the contact's card")
        if any(self._ops.matches(state, initiation.message) for state in record.sessions):
            self.stats["app_init_repeated"] += 1  # a retransmit or replay: opens nothing
            return record, False
        state, _first, account = self._ops.inbound(
            work.tx, initiation.identity, initiation.message, now
        )
        self._ops.save_account(work.tx, account, now)  # the one-time key is spent with it
        record = record.with_current(state, confirmed=True)
        record = self._send_on(work, card, record, EnvelopeType.ACK, ESTABLISHMENT_ACK)
        _LOGGER.info("an app contact opened an Olm session")
        return self._flush(work, contact_id, record, now), True

    def _on_request(self, work: Work, contact_id: str, record: AppRecord, now: float) -> AppRecord:
        card = self.card(work, contact_id)
        if self._own_key > card.identity.identity_key:
            self.stats["app_request_not_ours"] += 1  # the contact starts sessions, not us
            return record
        self._last_rehandshake.pop(contact_id, None)
        return self._flush(
            work,
            contact_id,
            self._rehandshake(work, contact_id, card, replace(record, sessions=()), now),
            now,
        )

    def _on_sealed(
        self, work: Work, contact_id: str, envelope: Envelope, record: AppRecord, now: float
    ) -> tuple[AppRecord, bool]:
        message = OlmMessage.from_bytes(envelope.payload)
        opened = self._open(record, message)
        if opened is None:
            self.stats["app_undecryptable"] += 1
            card = self.card(work, contact_id)
            return self._rehandshake(work, contact_id, card, record, now), False
        index, state, plaintext = opened
        record = record.with_session_at(index, state)
        if index == 0:
            record = replace(record, confirmed=True)
        if envelope.type is EnvelopeType.MESSAGE:
            return self._on_text(work, contact_id, record, plaintext, now), True
        if envelope.type is EnvelopeType.ACK:
            return self._on_ack(work, contact_id, record, plaintext, now), True
        decode_control(plaintext)  # parsed for validity; no screen shows controls yet
        self.stats["app_control"] += 1
        return record, True

    def _open(self, record: AppRecord, message: OlmMessage) -> tuple[int, bytes, bytes] | None:
        for index, state in enumerate(record.sessions):
            try:
                new_state, plaintext = self._ops.decrypt(state, message)
            except CryptoError:
                continue
            return index, new_state, plaintext
        return None

    def _on_text(
        self, work: Work, contact_id: str, record: AppRecord, plaintext: bytes, now: float
    ) -> AppRecord:
        message = decode_app_message(plaintext, now)
        message_id = message.id.hex
        # The contact picks the id; claimed bare, it would share the table with our mesh packet
        # ids (in clear on the air) and could make us drop a mesh envelope unread. Claims made
        # before the prefix still count.
        claim = APP_MESSAGE_CLAIM + contact_id.encode() + b":" + message.id.bytes
        legacy = work.tx.incoming_seen(message.id.bytes)
        if not legacy and work.tx.claim_incoming(claim, now):
            sent_at = now if message.sent_at_unix_s is None else message.sent_at_unix_s
            work.tx.append_message(
                Message(
                    message_id,
                    contact_id,
                    Direction.IN,
                    MessageState.RECEIVED,
                    sent_at,
                    now,
                    message.text,
                )
            )
            work.message_added(message_id)
        else:
            self.stats["app_duplicate_message"] += 1  # the app resends until acked: ack again
        card = self.card(work, contact_id)
        return self._send_on(work, card, record, EnvelopeType.ACK, encode_ack(message.id))

    def _on_ack(
        self, work: Work, contact_id: str, record: AppRecord, plaintext: bytes, now: float
    ) -> AppRecord:
        ack = decode_ack(plaintext)
        if ack.message_id is None:
            return self._flush(work, contact_id, replace(record, confirmed=True), now)
        try:
            message = work.tx.message(ack.message_id.hex)
        except NotFound:
            self.stats["app_ack_unknown"] += 1
            return record
        ours = message.contact_id == contact_id and message.direction is Direction.OUT
        if ours and message.state in _OPEN_STATES:
            work.tx.set_message_state(message.message_id, MessageState.DELIVERED, now)
            work.message_updated(message.message_id)
        return record
