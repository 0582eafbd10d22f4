"""The sending side: sessions started on demand, envelopes encrypted, queued, retried, expired.

`Outbox` works inside a `Work` (one vault transaction). A first message to a contact goes at
once: an Olm session opens from the contact's prekey bundle (its card's, or one it answered a
prekey request with) and every message on it is a pre-key message to the contact's intro tag
until the contact has written on it (`PeerRecord.confirmed`); then they are normal messages to
the contact's session tag. Without a prekey bundle the messages wait and a signed prekey
request goes to the contact's intro tag (repeated every `handshake_retry_s`).
Every envelope it writes is stored in the vault outbox with the session state that produced
it, then released as a packet after the commit; `retry_due` re-offers stored envelopes with
backoff (30 s doubling, capped at the
contact's check-in interval) until a receipt clears them or they expire. Outgoing files go in a
window of `file_window` chunks: each receipt lets the next chunk be encrypted, so the outbox
and relays' spools never hold a whole 25 MB file, and a restart resumes where it stopped.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import replace
from typing import Final

from pigeon.crypto.app_bundle import AppPrekeyBundle
from pigeon.crypto.card import ContactCard
from pigeon.crypto.errors import CryptoError, StateMisuse
from pigeon.crypto.identity import Identity
from pigeon.crypto.olm_wire import (
    MESSAGE_TYPE_PREKEY,
    Initiation,
    OlmMessage,
    prekey_id,
    split_prekey,
)
from pigeon.mesh.packet import Packet, decode_packet, encode_packet
from pigeon.messenger.addressing import address, intro_tag_key
from pigeon.messenger.config import MessengerConfig
from pigeon.messenger.envelope import (
    ChunkBody,
    Envelope,
    Inner,
    MessageEnvelope,
    OpenedBody,
    PrekeyEnvelope,
    PrekeyRequest,
    ShortPrekeyEnvelope,
    TextBody,
    encode_envelope,
    encode_inner,
    request_message,
)
from pigeon.messenger.olm_ops import OlmOps
from pigeon.messenger.packets import (
    BULK_FLAGS,
    HANDSHAKE_FLAGS,
    PRIORITY_CHUNK,
    PRIORITY_HANDSHAKE,
    PRIORITY_TEXT,
    EnvelopeFrame,
    Random,
    is_handshake,
    retry_delay_s,
)
from pigeon.messenger.records import PEER_RECORD_VERSION, PeerRecord, Transfer
from pigeon.messenger.work import Work
from pigeon.store.vault_records import MessageState, OutboxEntry, SessionState

_LOGGER = logging.getLogger(__name__)

ATTACH_HINTS_SETTING: Final = "attach_mailbox_hints"  # "1" or "0"; absent: the config

TRANSFER_SECRET: str = "transfer:"
RENEW_EVERY: Final = 4  # retries: 30 + 60 + 120 + 240 s, then a fresh envelope
EXPIRED_REASON: str = "expired: no delivery receipt before the envelope's lifetime ended"


def transfer_key(file_id: str) -> str:
    """The owner-secret name of an outgoing file's transfer record."""
    return TRANSFER_SECRET + file_id


class Outbox:
    """Writes and re-offers our envelopes (see the module docstring)."""

    def __init__(
        self,
        identity: Identity,
        ops: OlmOps,
        rng: Random,
        config: MessengerConfig,
        *,
        attach_hints: bool = False,
    ) -> None:
        self._identity = identity
        self._sessions = ops
        self._rng = rng
        self._config = config
        self.attach_hints = attach_hints  # the owner's choice (vault setting), read at unlock

    # -- records -------------------------------------------------------------------------------

    def record(self, work: Work, contact_id: str) -> PeerRecord:
        """The contact's peer record (every contact has one from the moment it is added)."""
        stored = work.tx.session(contact_id)
        if stored is None:
            raise LookupError("contact has no peer record")
        return PeerRecord.from_bytes(stored.state)

    def save(self, work: Work, contact_id: str, record: PeerRecord, now: float) -> None:
        """Store the contact's peer record."""
        work.tx.save_session(contact_id, SessionState(PEER_RECORD_VERSION, record.to_bytes(), now))

    def card(self, work: Work, contact_id: str) -> ContactCard:
        """The contact's card as stored (parsed once per card: parsing checks signatures)."""
        return parsed_card(work.tx.contact(contact_id).card)

    # -- queueing messages ---------------------------------------------------------------------

    def queue(self, work: Work, contact_id: str, message_id: str, now: float) -> None:
        """Send a stored outgoing message now if a session is up or can open, else after the
        prekey request is answered."""
        record = self.record(work, contact_id)
        if record.session is not None:
            updated = self._send_message(work, contact_id, record, message_id, now)
        else:
            # One row, whatever the queue's length; the record changes only for a session.
            work.tx.add_waiting(contact_id, (message_id,))
            updated = self.ensure_session(work, contact_id, record, now)
        if updated is not record:
            self.save(work, contact_id, updated, now)

    def prekey_bundle(self, work: Work, contact_id: str, record: PeerRecord) -> AppPrekeyBundle:
        """The contact's freshest prekey bundle we hold (answered, else its card's); raises
        LookupError when there is none."""
        if record.prekey:
            return AppPrekeyBundle.from_bytes(record.prekey)
        card = self.card(work, contact_id)
        if card.prekey is None:
            raise LookupError("no prekey bundle for this contact")
        return card.prekey

    def ensure_session(
        self, work: Work, contact_id: str, record: PeerRecord, now: float
    ) -> PeerRecord:
        """Open a session from the contact's prekey bundle and send what waits; without a
        bundle, ask for one (again once `handshake_retry_s` has passed)."""
        if record.session is not None:
            return record
        try:
            bundle = self.prekey_bundle(work, contact_id, record)
            state = self._sessions.outbound(work.tx, bundle, now)
        except (LookupError, CryptoError):
            return self.request_prekey(work, contact_id, record, now)
        _LOGGER.debug("an Olm session opened to a contact")
        return self.session_up(work, contact_id, record.with_current(state, False), now)

    def request_prekey(
        self, work: Work, contact_id: str, record: PeerRecord, now: float
    ) -> PeerRecord:
        """Send a signed prekey request to the contact's intro tag, unless one is recent."""
        if record.requested_at and now < record.requested_at + self._config.handshake_retry_s:
            return record
        self._drop_handshakes(work, contact_id)
        card = self.card(work, contact_id)
        sent_at_ms = int(now * 1000)
        signed = request_message(card.mailbox_key, self._identity.public_key, sent_at_ms)
        request = PrekeyRequest(self._identity.public_key, sent_at_ms, self._identity.sign(signed))
        frame = self.frame(
            work, contact_id, intro_tag_key(card.mailbox_key), now, HANDSHAKE_FLAGS, receipted=False
        )
        packet = frame.packet(encode_envelope(request))
        self._enqueue(work, contact_id, None, packet, PRIORITY_HANDSHAKE, now)
        _LOGGER.debug("prekey request sent to a contact")
        return replace(record, requested_at=now)

    def session_up(
        self, work: Work, contact_id: str, record: PeerRecord, now: float, *, opened: bool = False
    ) -> PeerRecord:
        """A new current session: answer a session the contact `opened` (so it learns our tag
        key and that we have it), then send what waited."""
        self._drop_handshakes(work, contact_id)
        if opened:
            record = self._send_inner(work, contact_id, record, OpenedBody(), None, now)
        for message_id in work.tx.take_waiting(contact_id):
            record = self._send_message(work, contact_id, record, message_id, now)
        return record

    def requeue(self, work: Work, contact_id: str) -> None:
        """The current session is being replaced: its undelivered messages wait for the next."""
        again: list[str] = []
        for entry in work.tx.outbox_for_contact(contact_id):
            work.tx.remove_from_outbox(entry.envelope_id)
            if entry.message_id is not None:
                again.append(entry.message_id)
        work.tx.add_waiting(contact_id, again)  # behind those already waiting, each id once

    def _send_message(
        self, work: Work, contact_id: str, record: PeerRecord, message_id: str, now: float
    ) -> PeerRecord:
        message = work.tx.message(message_id)
        if message.state in (MessageState.DELIVERED, MessageState.FAILED):
            return record
        if message.file_id is not None:
            return self._pump_transfer(work, contact_id, record, message.file_id, now, True)
        body = TextBody(
            bytes.fromhex(message_id), int(message.created_at * 1000), message.body or ""
        )
        return self._send_inner(work, contact_id, record, body, message_id, now)

    # -- files ---------------------------------------------------------------------------------

    def chunk_delivered(
        self, work: Work, contact_id: str, file_id: str, envelope_id: bytes, now: float
    ) -> Transfer | None:
        """Count a receipted chunk and fill the window; the transfer, or None if unknown."""
        transfer = self._transfer(work, file_id)
        if transfer is None or transfer.in_flight.pop(envelope_id, None) is None:
            return transfer
        transfer = replace(transfer, delivered=transfer.delivered + 1)
        self._save_transfer(work, file_id, transfer, now)
        record = self.record(work, contact_id)
        if record.session is not None:
            record = self._pump_transfer(work, contact_id, record, file_id, now, False)
            self.save(work, contact_id, record, now)
        return self._transfer(work, file_id)

    def _pump_transfer(
        self,
        work: Work,
        contact_id: str,
        record: PeerRecord,
        file_id: str,
        now: float,
        resend: bool,
    ) -> PeerRecord:
        transfer = self._transfer(work, file_id)
        info = work.tx.file_info(file_id)
        if transfer is None or info is None:
            return record
        in_flight = dict(transfer.in_flight)
        pending = sorted(in_flight.values()) if resend else []
        in_flight = {} if resend else in_flight
        next_index = transfer.next_index
        while (
            len(pending) + len(in_flight) < self._config.file_window
            and next_index < info.chunk_count
        ):
            pending.append(next_index)
            next_index += 1
        for index in pending:
            data = work.tx.chunk(file_id, index) or b""
            body = ChunkBody(
                bytes.fromhex(file_id), info.size, info.chunk_count, index, info.name, data
            )
            record, envelope_id = self._send_chunk(work, contact_id, record, body, transfer, now)
            in_flight[envelope_id] = index
        transfer = replace(transfer, next_index=next_index, in_flight=in_flight)
        self._save_transfer(work, file_id, transfer, now)
        return record

    def _send_chunk(
        self,
        work: Work,
        contact_id: str,
        record: PeerRecord,
        body: ChunkBody,
        transfer: Transfer,
        now: float,
    ) -> tuple[PeerRecord, bytes]:
        return self._write(
            work, contact_id, record, BULK_FLAGS, body, transfer.message_id, PRIORITY_CHUNK, now
        )

    def start_transfer(
        self, work: Work, file_id: str, message_id: str, chunk_count: int, now: float
    ) -> None:
        """Record a new outgoing file (its chunks are stored already)."""
        self._save_transfer(work, file_id, Transfer(message_id, chunk_count), now)

    def _transfer(self, work: Work, file_id: str) -> Transfer | None:
        data = work.tx.owner_secret(transfer_key(file_id))
        return None if data is None else Transfer.from_bytes(data)

    def _save_transfer(self, work: Work, file_id: str, transfer: Transfer, now: float) -> None:
        work.tx.put_owner_secret(transfer_key(file_id), transfer.to_bytes(), now)

    # -- writing envelopes ---------------------------------------------------------------------

    def peer_tag_key(self, work: Work, contact_id: str, record: PeerRecord) -> bytes:
        """The tag key the contact serves us under: its session key, else its intro key."""
        if record.outbound_tag_key is not None:
            return record.outbound_tag_key
        return intro_tag_key(self.card(work, contact_id).mailbox_key)

    def _send_inner(
        self,
        work: Work,
        contact_id: str,
        record: PeerRecord,
        body: TextBody | OpenedBody,
        message_id: str | None,
        now: float,
    ) -> PeerRecord:
        written = self._write(work, contact_id, record, 0, body, message_id, PRIORITY_TEXT, now)
        return written[0]

    def _write(
        self,
        work: Work,
        contact_id: str,
        record: PeerRecord,
        flags: int,
        body: TextBody | OpenedBody | ChunkBody,
        message_id: str | None,
        priority: int,
        now: float,
        *,
        expires_at: int | None = None,
        full_prekey: bool = False,
    ) -> tuple[PeerRecord, bytes]:
        """Encrypt `body` on the current session and queue it: the new record and the
        envelope's id. Unconfirmed: a pre-key message to the contact's intro tag (short, unless
        `full_prekey` or the contact's card does not name the prekey the session opened on)."""
        state = record.session
        if state is None:
            raise StateMisuse("no session to write on")
        normal = record.confirmed and record.outbound_tag_key is not None
        tag_key = record.outbound_tag_key if normal else None
        if tag_key is None:
            tag_key = intro_tag_key(self.card(work, contact_id).mailbox_key)
        frame = self.frame(work, contact_id, tag_key, now, flags, expires_at=expires_at)
        assert frame.receipt_secret is not None  # Olm messages are always receipted
        inner = Inner(frame.receipt_secret, record.inbound_tag_key, body)
        state, message = self._sessions.encrypt(state, encode_inner(inner, frame.associated_data()))
        if (message.message_type == MESSAGE_TYPE_PREKEY) == normal:
            raise StateMisuse("the session's message type disagrees with its record")
        if normal:
            envelope: Envelope = MessageEnvelope(message.ciphertext)
        else:
            envelope = self._prekey_envelope(work, contact_id, message, now, full=full_prekey)
        packet = frame.packet(encode_envelope(envelope))
        self._enqueue(work, contact_id, message_id, packet, priority, now)
        return record.with_session_at(0, state), packet.packet_id

    def _prekey_envelope(
        self, work: Work, contact_id: str, message: OlmMessage, now: float, *, full: bool
    ) -> PrekeyEnvelope | ShortPrekeyEnvelope:
        """A pre-key message in its short form when the session opened on the fallback key of
        the contact's card (a v2 card: the contact paired with ours, which binds our Olm key,
        so it normally holds it); else, or if `full`, with our signed identity bundle."""
        keys, inner = split_prekey(message.ciphertext)
        card_prekey = self.card(work, contact_id).prekey
        if not full and card_prekey is not None and card_prekey.prekey == keys.one_time_key:
            return ShortPrekeyEnvelope(
                self._identity.public_key, prekey_id(keys.one_time_key), keys.base_key, inner
            )
        bundle = self._sessions.account(work.tx, now).identity_bundle()
        return PrekeyEnvelope(Initiation(bundle, message).to_bytes())

    def frame(
        self,
        work: Work,
        contact_id: str,
        tag_key: bytes,
        now: float,
        flags: int,
        *,
        receipted: bool = True,
        expires_at: int | None = None,
    ) -> EnvelopeFrame:
        """A new envelope's header for the contact (expiring `envelope_lifetime_s` from now
        unless `expires_at` says), with its mailbox hint if we attach those."""
        expires = int(now + self._config.envelope_lifetime_s) if expires_at is None else expires_at
        hint = b""
        if self.attach_hints:
            hint = mailbox_hint_of(work.tx.contact(contact_id).card)
        return EnvelopeFrame.new(
            self._rng, address(tag_key, now), expires, flags, receipted=receipted, mailbox_hint=hint
        )

    def _enqueue(
        self,
        work: Work,
        contact_id: str,
        message_id: str | None,
        packet: Packet,
        priority: int,
        now: float,
    ) -> None:
        interval = work.tx.contact(contact_id).check_in_interval_s
        entry = OutboxEntry(
            envelope_id=packet.packet_id,
            contact_id=contact_id,
            message_id=message_id,
            priority=priority,
            envelope=encode_packet(packet),
            created_at=now,
            expires_at=packet.expires_at_s,
            next_attempt_at=now + retry_delay_s(0, interval, self._fraction()),
        )
        work.tx.enqueue(entry)
        work.send(packet, contact_id)

    def _drop_handshakes(self, work: Work, contact_id: str) -> None:
        for entry in work.tx.outbox_for_contact(contact_id):
            if entry.message_id is None and is_handshake(decode_packet(entry.envelope)):
                work.tx.remove_from_outbox(entry.envelope_id)

    def _fraction(self) -> float:
        return int.from_bytes(self._rng(2), "big") / 65536

    # -- retries and expiry --------------------------------------------------------------------

    def retry_due(self, work: Work, now: float, limit: int = 200) -> None:
        """Re-offer the envelopes whose next attempt is due, and schedule the one after."""
        intervals: dict[str, float] = {}
        for entry in work.tx.outbox_due(now, limit):
            if self._renew(work, entry, now):
                continue
            interval = intervals.get(entry.contact_id)
            if interval is None:
                interval = work.tx.contact(entry.contact_id).check_in_interval_s
                intervals[entry.contact_id] = interval
            delay = retry_delay_s(entry.attempts + 1, interval, self._fraction())
            work.tx.reschedule(entry.envelope_id, now + delay)
            work.send(decode_packet(entry.envelope), entry.contact_id)

    def _renew(self, work: Work, entry: OutboxEntry, now: float) -> bool:
        """Every `RENEW_EVERY`-th retry a text goes out encrypted afresh, in a new envelope
        with the old one's expiry: a relay hands an envelope to its recipient at most
        1 + `handover_max_retries` times (frames lost each time leave it stuck there), and
        only a new packet id is handed over afresh. The old envelope stays in the outbox,
        no longer offered but still counted: the recipient stores the text once (by its
        message id) and receipts each envelope it reads, so whichever receipt comes back
        first delivers the text and withdraws the others. A pre-key message is renewed in
        full (with our identity bundle), for a contact that cannot bind the short form.
        True if it was renewed."""
        if (entry.attempts + 1) % RENEW_EVERY or entry.message_id is None:
            return False
        message = work.tx.message(entry.message_id)
        record = self.record(work, entry.contact_id)
        if message.file_id is not None or record.session is None:
            return False
        work.tx.reschedule(entry.envelope_id, entry.expires_at)  # never due again: dormant
        body = TextBody(
            bytes.fromhex(message.message_id), int(message.created_at * 1000), message.body or ""
        )
        record, _ = self._write(
            work,
            entry.contact_id,
            record,
            0,
            body,
            message.message_id,
            entry.priority,
            now,
            expires_at=int(entry.expires_at),
            full_prekey=True,
        )
        self.save(work, entry.contact_id, record, now)
        return True

    def expire(self, work: Work, now: float) -> None:
        """Drop expired envelopes; their messages fail (a file fails with any of its chunks)."""
        for entry in work.tx.expire_outbox(now):
            if entry.message_id is None:
                continue
            message = work.tx.message(entry.message_id)
            if message.state not in (MessageState.DELIVERED, MessageState.FAILED):
                self.fail(work, entry.contact_id, entry.message_id, EXPIRED_REASON, now)

    def fail(self, work: Work, contact_id: str, message_id: str, reason: str, now: float) -> None:
        """Mark a message failed and withdraw its remaining envelopes."""
        work.tx.set_message_state(message_id, MessageState.FAILED, now, reason)
        for entry in work.tx.outbox_for_contact(contact_id):
            if entry.message_id == message_id:
                work.tx.remove_from_outbox(entry.envelope_id)
        work.message_updated(message_id)


@functools.lru_cache(maxsize=256)
def parsed_card(card: bytes) -> ContactCard:
    """A stored card, parsed (cached: parsing verifies signatures; cards are immutable)."""
    return ContactCard.from_bytes(card)


def mailbox_hint_of(card: bytes) -> bytes:
    """The mailbox hint a stored card publishes, or b""."""
    hint = parsed_card(card).mailbox_hint
    return b"" if hint is None else hint.to_bytes()
