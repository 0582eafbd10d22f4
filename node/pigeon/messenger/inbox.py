"""The receiving side: handshakes answered and completed, ratchet messages opened, receipts.

`Inbox.handle` works inside a `Work` (one vault transaction): an envelope is claimed in the
vault's dedup table in the same transaction that stores the ratchet step and what the message
carried, so a duplicate reaches the owner once and a crash replays rather than loses. Anything
that fails to parse, authenticate or decrypt is counted in `stats` and dropped: nothing goes
back on the network about why. Receipts go to the sender's tag only after the commit.
An envelope is routed by its recipient tag alone (`routing`): one for a tag we do not serve is
dropped unread, a HELLO is read only on our intro tag and within the first-contact budget of
its source, and a ratchet message is tried only with the sessions its tag names.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from collections import Counter
from dataclasses import replace
from typing import Final

from pigeon.crypto.errors import CryptoError
from pigeon.crypto.identity import Identity, handle
from pigeon.crypto.ratchet_kdf import KEY_LEN as RATCHET_KEY_LEN
from pigeon.crypto.sealed import open_sealed
from pigeon.mesh.packet import Packet, PacketType, decode_packet
from pigeon.mesh.receipt import open_notice, receipt_hash, verify_receipt
from pigeon.messenger import sessions
from pigeon.messenger.addressing import TagBook, address, intro_tag_key
from pigeon.messenger.config import MessengerConfig
from pigeon.messenger.envelope import (
    ChunkBody,
    Confirm,
    Envelope,
    Hello,
    Inner,
    RatchetEnvelope,
    Reply,
    TagKeyBody,
    TextBody,
    decode_envelope,
    encode_envelope,
)
from pigeon.messenger.errors import MalformedEnvelope
from pigeon.messenger.first_contact import FirstContactBudget, Source
from pigeon.messenger.outbox import Outbox
from pigeon.messenger.packets import (
    HANDSHAKE_FLAGS,
    EnvelopeFrame,
    Random,
    notice_for,
    receipt_for,
    received_associated_data,
)
from pigeon.messenger.records import PeerRecord, PendingResponder
from pigeon.messenger.routing import INTRO_CLOSED_PREFIX, IntroClosed, RouteKind, Routes
from pigeon.messenger.sessions import SessionOps
from pigeon.messenger.work import Work
from pigeon.store.errors import NotFound
from pigeon.store.vault_records import Direction, FileInfo, Message, MessageState

_LOGGER = logging.getLogger(__name__)

GUARD_SECRET: Final = "handshake-guard"
RESPONDERS_SECRET: Final = "responders"
_RESPONDER_PREFIX: Final = "responder:"
_INDEX_ENTRY: Final = struct.Struct(">16sd")
_NO_HANDSHAKE: Final = bytes(16)


def local_id(contact_id: str, sender_id: bytes) -> str:
    """Our id for a contact's message or file id (so a contact cannot collide with ours)."""
    return hashlib.sha256(contact_id.encode("ascii") + b"\0" + sender_id).digest()[:16].hex()


class Inbox:
    """Processes packets the router delivered for our tags (see the module docstring)."""

    def __init__(
        self,
        identity: Identity,
        rng: Random,
        config: MessengerConfig,
        outbox: Outbox,
        stats: Counter[str],
        ops: SessionOps,
        budget: FirstContactBudget,
    ) -> None:
        self._identity = identity
        self._budget = budget
        self._sessions = ops
        self._rng = rng
        self._config = config
        self._outbox = outbox
        self.stats = stats

    def handle(
        self,
        work: Work,
        packet: Packet,
        routes: Routes,
        now: float,
        source: Source,
        only: frozenset[str] | None = None,
    ) -> bool:
        """Process one delivered envelope or notice; True if it is a ratchet message that no
        session opens yet but one may (ahead of the pending handshake that makes it readable).

        `only` (parked envelopes tried again) limits ratchet messages to these contacts' sessions.
        """
        if packet.type is PacketType.NOTICE:
            self._on_notice(work, packet, routes.book, now)
            return False
        if packet.type is not PacketType.ENVELOPE:
            return False
        route = routes.kind(packet.recipient_tag)
        if route is RouteKind.UNSERVED:
            self.stats["unserved_tag"] += 1  # from a relay mailbox: anyone may deposit there
            return False
        if work.tx.incoming_seen(packet.packet_id):
            self.stats["duplicates"] += 1
            return False
        envelope: Envelope | None = None
        try:
            envelope = decode_envelope(packet.payload)
            if isinstance(envelope, RatchetEnvelope):
                accepted = self._on_ratchet(work, packet, envelope, routes, now, only)
            elif isinstance(envelope, Hello):
                accepted = route is RouteKind.INTRO and self._on_hello(work, envelope, now, source)
            elif isinstance(envelope, Reply):
                accepted = self._on_reply(work, envelope, now)
            else:
                accepted = self._on_confirm(work, envelope, now)
        except (MalformedEnvelope, CryptoError) as exc:
            self.stats["dropped_" + type(exc).__name__] += 1
            _LOGGER.debug("dropped an envelope: %s", type(exc).__name__)
            return False
        if accepted:
            work.tx.claim_incoming(packet.packet_id, now)
        if accepted or not isinstance(envelope, RatchetEnvelope):
            return False
        # Worth keeping only while a handshake we answered may still complete (its message 3
        # and the first messages travel separately) and open it: else it is junk.
        return route in (RouteKind.INTRO, RouteKind.SESSION) and bool(self._responder_index(work))

    # -- receipts ------------------------------------------------------------------------------

    def _on_notice(self, work: Work, packet: Packet, book: TagBook, now: float) -> None:
        tag_key = book.keys.get(packet.recipient_tag)
        if tag_key is None:
            self.stats["dropped_notice"] += 1  # a tag we no longer serve
            return
        secret, envelope_id = open_notice(tag_key, packet.payload)
        entry = work.tx.outbox_entry(envelope_id)
        if entry is None:
            return  # delivered before, not ours, or sealed under another key
        envelope = decode_packet(entry.envelope)
        if not verify_receipt(secret, envelope.receipt_hash):
            self.stats["forged_receipts"] += 1
            return
        work.tx.remove_from_outbox(envelope_id)
        self.stats["receipts"] += 1
        # Our router still carries the envelope: the receipt clears it there and answers the
        # neighbours that offer it back. TTL 0: the recipient's receipt already spreads.
        work.send(receipt_for(envelope, secret, ttl=0), None)
        if entry.message_id is None:
            return
        message = work.tx.message(entry.message_id)
        if message.state in (MessageState.DELIVERED, MessageState.FAILED):
            return
        if message.file_id is not None:
            transfer = self._outbox.chunk_delivered(
                work, entry.contact_id, message.file_id, envelope_id, now
            )
            if transfer is None or not transfer.complete:
                work.message_updated(message.message_id)
                return
        work.tx.set_message_state(message.message_id, MessageState.DELIVERED, now)
        work.message_updated(message.message_id)

    # -- handshakes ----------------------------------------------------------------------------

    def _on_hello(self, work: Work, hello: Hello, now: float, source: Source) -> bool:
        index = self._responder_index(work)
        if hello.handshake_id in index:
            return True  # a retransmission: message 2 is already on its way
        if not self._budget.allow(source, now):
            self.stats["first_contact_over_budget"] += 1
            return False
        for stale in [k for k, t in index.items() if t <= now - self._config.handshake_retry_s]:
            work.tx.delete_owner_secret(_RESPONDER_PREFIX + stale.hex())
            del index[stale]
        while index and len(index) >= self._config.max_pending_responders:
            # Evict the oldest rather than refuse: a flood must not lock out real contacts,
            # whose initiators repeat their HELLO if their message 2 is lost this way.
            oldest = min(index, key=index.__getitem__)
            work.tx.delete_owner_secret(_RESPONDER_PREFIX + oldest.hex())
            del index[oldest]
            self.stats["responders_evicted"] += 1
        state, message2 = self._sessions.respond(hello.noise, now)
        pending = PendingResponder(state, hello.reply_tag_key, now)
        work.tx.put_owner_secret(
            _RESPONDER_PREFIX + hello.handshake_id.hex(), pending.to_bytes(), now
        )
        index[hello.handshake_id] = now
        self._save_responder_index(work, index, now)
        tag = address(hello.reply_tag_key, now)
        contact_id = self._hinted_contact(work, hello.reply_to)
        if contact_id is None:
            expires = int(now + self._config.envelope_lifetime_s)
            frame = EnvelopeFrame.new(self._rng, tag, expires, HANDSHAKE_FLAGS, receipted=False)
        else:
            frame = self._outbox.frame(
                work, contact_id, hello.reply_tag_key, now, HANDSHAKE_FLAGS, receipted=False
            )
        reply = frame.packet(encode_envelope(Reply(hello.handshake_id, message2)))
        work.send(reply, contact_id)
        return True

    def _hinted_contact(self, work: Work, reply_to: bytes) -> str | None:
        """The contact a Hello's reply-to hint names, if it opens and names one of ours.

        Unauthenticated until message 3: a forger can at most have message 2 (unreadable to
        anyone but the forger) deposited in the mailbox of one of our own contacts.
        """
        if not reply_to:
            return None
        try:
            mailbox_key = open_sealed(self._identity.noise_static_private, reply_to)
            contact_id = handle(mailbox_key)
            card = self._outbox.card(work, contact_id)
        except (CryptoError, NotFound):
            self.stats["reply_to_unknown"] += 1
            return None
        if card.mailbox_key != mailbox_key:
            self.stats["reply_to_unknown"] += 1
            return None
        return contact_id

    def _on_reply(self, work: Work, reply: Reply, now: float) -> bool:
        found = self._initiator_of(work, reply.handshake_id)
        if found is None:
            self.stats["unexpected_reply"] += 1
            return False
        contact_id, record = found
        card = self._outbox.card(work, contact_id)
        guard = sessions.load_guard(work.tx.owner_secret(GUARD_SECRET))
        established, message3 = self._sessions.read_reply(
            record.session, reply.noise, card.bundle, guard, now
        )
        work.tx.put_owner_secret(GUARD_SECRET, guard.to_bytes(), now)
        tag_key = intro_tag_key(card.mailbox_key)
        frame = self._outbox.frame(work, contact_id, tag_key, now, HANDSHAKE_FLAGS, receipted=False)
        # Not in the outbox: `session.handshake_to_resend` keeps message 3 until it is confirmed.
        work.send(frame.packet(encode_envelope(Confirm(reply.handshake_id, message3))), contact_id)
        record = replace(record, session=established.state)
        record = self._outbox.session_up(work, contact_id, record, now)
        self._outbox.save(work, contact_id, record, now)
        self._session_changed(work, contact_id)
        _LOGGER.info("secure session established (we initiated)")
        return True

    def _initiator_of(self, work: Work, handshake_id: bytes) -> tuple[str, PeerRecord] | None:
        if handshake_id == _NO_HANDSHAKE:
            return None
        for contact in work.tx.contacts():
            record = self._outbox.record(work, contact.contact_id)
            if record.handshake_id == handshake_id and not self._sessions.is_established(
                record.session
            ):
                return contact.contact_id, record
        return None

    def _on_confirm(self, work: Work, confirm: Confirm, now: float) -> bool:
        name = _RESPONDER_PREFIX + confirm.handshake_id.hex()
        stored = work.tx.owner_secret(name)
        if stored is None:
            self.stats["unexpected_confirm"] += 1
            return False
        pending = PendingResponder.from_bytes(stored)
        guard = sessions.load_guard(work.tx.owner_secret(GUARD_SECRET))
        established = self._sessions.read_confirm(pending.session, confirm.noise, guard, now)
        contact_id = handle(established.peer.public_key)
        try:
            card = self._outbox.card(work, contact_id)
        except NotFound:
            self.stats["unknown_sender"] += 1
            return False
        if card.bundle.to_bytes() != established.peer.to_bytes():
            self.stats["unknown_sender"] += 1
            return False
        work.tx.put_owner_secret(GUARD_SECRET, guard.to_bytes(), now)
        work.tx.delete_owner_secret(name)  # spent: a replayed message 3 finds nothing
        index = self._responder_index(work)
        index.pop(confirm.handshake_id, None)
        self._save_responder_index(work, index, now)
        record = self._outbox.record(work, contact_id)
        if self._ours_wins(record, established.peer.public_key, now):
            self.stats["handshake_race_lost_by_peer"] += 1
            return True
        if record.session:
            record = self._outbox.requeue(work, contact_id, record)
        record = replace(record, session=established.state, handshake_id=_NO_HANDSHAKE)
        record = self._outbox.session_up(work, contact_id, record, now)
        self._outbox.save(work, contact_id, record, now)
        self._session_changed(work, contact_id)
        _LOGGER.info("secure session established (the contact initiated)")
        return True

    def _session_changed(self, work: Work, contact_id: str) -> None:
        """A new session is up: the contact may not have our tag key under it yet (its intro
        window opens), and envelopes parked ahead of it are tried with it alone."""
        work.tx.delete_owner_secret(INTRO_CLOSED_PREFIX + contact_id)
        work.established.add(contact_id)
        work.tags_changed = True

    def _ours_wins(self, record: PeerRecord, peer_key: bytes, now: float) -> bool:
        """Both sides initiated recently: keep the initiation of the lower identity key."""
        return (
            record.handshake_id != _NO_HANDSHAKE
            and now < record.handshake_started_at + self._config.race_window_s
            and self._sessions.is_initiator(record.session)
            and sessions.initiation_wins(self._identity.public_key, peer_key)
        )

    def _responder_index(self, work: Work) -> dict[bytes, float]:
        data = work.tx.owner_secret(RESPONDERS_SECRET) or b""
        return dict(_INDEX_ENTRY.iter_unpack(data)) if data else {}

    def _save_responder_index(self, work: Work, index: dict[bytes, float], now: float) -> None:
        blob = b"".join(_INDEX_ENTRY.pack(k, t) for k, t in index.items())
        work.tx.put_owner_secret(RESPONDERS_SECRET, blob, now)

    # -- ratchet messages ----------------------------------------------------------------------

    def _on_ratchet(
        self,
        work: Work,
        packet: Packet,
        envelope: RatchetEnvelope,
        routes: Routes,
        now: float,
        only: frozenset[str] | None,
    ) -> bool:
        ad = received_associated_data(packet)
        ratchet_key = envelope.message[:RATCHET_KEY_LEN]
        for attempt in routes.tries(packet.recipient_tag, ratchet_key, now):
            contact_id = attempt.contact_id
            if only is not None and contact_id not in only:
                continue
            record = self._outbox.record(work, contact_id)
            if not self._sessions.is_established(record.session):
                continue
            self.stats["session_tries"] += 1
            try:
                state, plaintext = self._sessions.decrypt(
                    record.session, envelope.message, ad, new_chain=attempt.new_chain
                )
            except CryptoError:
                continue
            inner = sessions.decode(plaintext)
            if receipt_hash(inner.receipt_secret) != packet.receipt_hash:
                raise MalformedEnvelope("the receipt secret does not match the packet")
            record = record.with_session(state)
            record = self._deliver(work, contact_id, record, inner, now)
            self._outbox.save(work, contact_id, record, now)
            if routes.kind(packet.recipient_tag) is RouteKind.SESSION:
                self._close_intro_window(work, contact_id, state, routes, now)
            peer_key = self._outbox.peer_tag_key(work, contact_id, record)
            # The receipt stays on the mesh (its relays clear their copies); the notice may
            # also go to the contact's relay mailbox: only it is for the contact.
            work.send(receipt_for(packet, inner.receipt_secret), None)
            work.send(notice_for(packet, inner.receipt_secret, peer_key, now), contact_id)
            return True
        self.stats["undecryptable"] += 1
        return False

    def _close_intro_window(
        self, work: Work, contact_id: str, state: bytes, routes: Routes, now: float
    ) -> None:
        """The contact wrote to our session tag, so it has our tag key: from now on its session
        takes intro-tag messages only under the ratchet keys it knows now (see `routing`)."""
        if not routes.waits_for_tag_key(contact_id):
            return
        closed = IntroClosed(now, self._sessions.remote_ratchet_keys(state))
        work.tx.put_owner_secret(INTRO_CLOSED_PREFIX + contact_id, closed.to_bytes(), now)
        work.tags_changed = True  # rebuilds the routes

    def _deliver(
        self, work: Work, contact_id: str, record: PeerRecord, inner: Inner, now: float
    ) -> PeerRecord:
        body = inner.body
        if isinstance(body, TagKeyBody):
            return replace(record, outbound_tag_key=body.tag_key)
        if isinstance(body, TextBody):
            self._store_text(work, contact_id, body, now)
        elif isinstance(body, ChunkBody):
            self._store_chunk(work, contact_id, body, now)
        return record

    def _store_text(self, work: Work, contact_id: str, body: TextBody, now: float) -> None:
        message_id = local_id(contact_id, body.message_id)
        try:
            work.tx.message(message_id)
            return  # the same message again under a newer session
        except NotFound:
            pass
        work.tx.append_message(
            Message(
                message_id, contact_id, Direction.IN, MessageState.RECEIVED, now, now, body.text
            )
        )
        work.message_added(message_id)

    def _store_chunk(self, work: Work, contact_id: str, body: ChunkBody, now: float) -> None:
        file_id = local_id(contact_id, body.file_id)
        info = work.tx.file_info(file_id)
        if info is None:
            name = safe_file_name(body.name)
            work.tx.add_file(FileInfo(file_id, contact_id, name, body.size, body.chunk_count, now))
            work.tx.append_message(
                Message(
                    file_id,
                    contact_id,
                    Direction.IN,
                    MessageState.RECEIVED,
                    now,
                    now,
                    file_id=file_id,
                )
            )
            work.message_added(file_id)
        elif info.size != body.size or info.chunk_count != body.chunk_count:
            raise MalformedEnvelope("chunk disagrees with its file's size")
        if work.tx.put_chunk(file_id, body.index, body.data):
            work.message_updated(file_id)


def safe_file_name(name: str) -> str:
    """A contact's file name without path parts or control characters, never empty."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return cleaned or "file"
