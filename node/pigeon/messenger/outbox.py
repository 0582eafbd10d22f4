"""The sending side: sessions started on demand, envelopes encrypted, queued, retried, expired.

`Outbox` works inside a `Work` (one vault transaction). Every envelope it writes is stored in
the vault outbox with the ratchet state that produced it, then released as a packet after the
commit; `retry_due` re-offers stored envelopes with backoff (30 s doubling, capped at the
contact's check-in interval) until a receipt clears them or they expire. Outgoing files go in a
window of `file_window` chunks: each receipt lets the next chunk be encrypted, so the outbox
and relays' spools never hold a whole 25 MB file, and a restart resumes where it stopped.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import replace
from typing import Final

from pigeon.crypto.card import ContactCard
from pigeon.crypto.identity import Identity
from pigeon.crypto.sealed import seal
from pigeon.mesh.packet import Packet, decode_packet, encode_packet
from pigeon.messenger.addressing import address, intro_tag_key
from pigeon.messenger.config import MessengerConfig
from pigeon.messenger.envelope import (
    ChunkBody,
    Hello,
    Inner,
    RatchetEnvelope,
    TagKeyBody,
    TextBody,
    encode_envelope,
)
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
from pigeon.messenger.sessions import SessionOps
from pigeon.messenger.work import Work
from pigeon.store.vault_records import MessageState, OutboxEntry, SessionState

_LOGGER = logging.getLogger(__name__)

ATTACH_HINTS_SETTING: Final = "attach_mailbox_hints"  # "1" or "0"; absent: the config

TRANSFER_SECRET: str = "transfer:"
EXPIRED_REASON: str = "expired: no delivery receipt before the envelope's lifetime ended"


def transfer_key(file_id: str) -> str:
    """The owner-secret name of an outgoing file's transfer record."""
    return TRANSFER_SECRET + file_id


class Outbox:
    """Writes and re-offers our envelopes (see the module docstring)."""

    def __init__(
        self,
        identity: Identity,
        ops: SessionOps,
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
        """The contact's card as stored."""
        return ContactCard.from_bytes(work.tx.contact(contact_id).card)

    # -- queueing messages ---------------------------------------------------------------------

    def queue(self, work: Work, contact_id: str, message_id: str, now: float) -> None:
        """Send a stored outgoing message now if a session is up, else after the handshake."""
        record = self.record(work, contact_id)
        if self._sessions.is_established(record.session):
            updated = self._send_message(work, contact_id, record, message_id, now)
        else:
            # One row, whatever the queue's length; the record changes only for a handshake.
            work.tx.add_waiting(contact_id, (message_id,))
            updated = self.ensure_handshake(work, contact_id, record, now)
        if updated is not record:
            self.save(work, contact_id, updated, now)

    def ensure_handshake(
        self, work: Work, contact_id: str, record: PeerRecord, now: float
    ) -> PeerRecord:
        """Start an initiation unless one is pending and recent, or a session is up."""
        if record.session and (
            self._sessions.is_established(record.session)
            or now < record.handshake_started_at + self._config.handshake_retry_s
        ):
            return record
        self._drop_handshakes(work, contact_id)
        state, message1 = self._sessions.initiate()
        handshake_id, reply_key = self._rng(16), self._rng(32)
        card = self.card(work, contact_id)
        frame = self.frame(
            work, contact_id, intro_tag_key(card.mailbox_key), now, HANDSHAKE_FLAGS, receipted=False
        )
        # Tells the responder (only it) whose relay mailbox may take message 2; see `Hello`.
        reply_to = seal(card.bundle.noise_static_public, self._identity.public_key)
        payload = encode_envelope(Hello(handshake_id, reply_key, message1, reply_to))
        self._enqueue(work, contact_id, None, frame.packet(payload), PRIORITY_HANDSHAKE, now)
        work.tags_changed = True
        _LOGGER.debug("handshake started with a contact")
        return replace(
            record,
            session=state,
            handshake_id=handshake_id,
            reply_tag_key=reply_key,
            handshake_started_at=now,
        )

    def session_up(self, work: Work, contact_id: str, record: PeerRecord, now: float) -> PeerRecord:
        """A new session is established: tell the peer our tag key, then send what waited."""
        self._drop_handshakes(work, contact_id)
        record = self._send_inner(
            work, contact_id, record, TagKeyBody(record.inbound_tag_key), None, now
        )
        for message_id in work.tx.take_waiting(contact_id):
            record = self._send_message(work, contact_id, record, message_id, now)
        return record

    def requeue(self, work: Work, contact_id: str, record: PeerRecord) -> PeerRecord:
        """The session is being replaced: its undelivered envelopes wait for the new one."""
        again: list[str] = []
        for entry in work.tx.outbox_for_contact(contact_id):
            work.tx.remove_from_outbox(entry.envelope_id)
            if entry.message_id is not None:
                again.append(entry.message_id)
        work.tx.add_waiting(contact_id, again)  # behind those already waiting, each id once
        return record

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
        if self._sessions.is_established(record.session):
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
        tag_key = self.peer_tag_key(work, contact_id, record)
        frame = self.frame(work, contact_id, tag_key, now, BULK_FLAGS)
        return self._write(
            work, contact_id, record, frame, body, transfer.message_id, PRIORITY_CHUNK, now
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
        body: TextBody | TagKeyBody,
        message_id: str | None,
        now: float,
    ) -> PeerRecord:
        frame = self.frame(work, contact_id, self.peer_tag_key(work, contact_id, record), now, 0)
        written = self._write(work, contact_id, record, frame, body, message_id, PRIORITY_TEXT, now)
        return written[0]

    def _write(
        self,
        work: Work,
        contact_id: str,
        record: PeerRecord,
        frame: EnvelopeFrame,
        body: TextBody | TagKeyBody | ChunkBody,
        message_id: str | None,
        priority: int,
        now: float,
    ) -> tuple[PeerRecord, bytes]:
        """Encrypt `body` into an envelope and queue it: the new record and the envelope's id."""
        assert frame.receipt_secret is not None  # ratchet messages are always receipted
        inner = Inner(frame.receipt_secret, body)
        state, message = self._sessions.encrypt(record.session, inner, frame.associated_data())
        packet = frame.packet(encode_envelope(RatchetEnvelope(message)))
        self._enqueue(work, contact_id, message_id, packet, priority, now)
        return record.with_session(state), packet.packet_id

    def frame(
        self,
        work: Work,
        contact_id: str,
        tag_key: bytes,
        now: float,
        flags: int,
        *,
        receipted: bool = True,
    ) -> EnvelopeFrame:
        """A new envelope's header for the contact, with its mailbox hint if we attach those."""
        expires = int(now + self._config.envelope_lifetime_s)
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
            interval = intervals.get(entry.contact_id)
            if interval is None:
                interval = work.tx.contact(entry.contact_id).check_in_interval_s
                intervals[entry.contact_id] = interval
            delay = retry_delay_s(entry.attempts + 1, interval, self._fraction())
            work.tx.reschedule(entry.envelope_id, now + delay)
            work.send(decode_packet(entry.envelope), entry.contact_id)

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


@functools.lru_cache(maxsize=64)
def mailbox_hint_of(card: bytes) -> bytes:
    """The mailbox hint a stored card publishes, or b"" (cached: parsing verifies signatures)."""
    hint = ContactCard.from_bytes(card).mailbox_hint
    return b"" if hint is None else hint.to_bytes()
