"""The receiving side: Olm messages opened, first contacts and prekey requests answered, receipts.

`Inbox.handle` works inside a `Work` (one vault transaction): an envelope is claimed in the
vault's dedup table in the same transaction that stores the session step, the account change
(a one-time key spent) and what the message carried, so a duplicate reaches the owner once, a
replayed pre-key message opens nothing, and a crash replays rather than loses. Anything that
fails to parse, authenticate or decrypt is counted in `stats` and dropped: nothing goes back on
the network about why (except a prekey answer to a contact whose pre-key message named a
prekey we no longer hold). Receipts go to the sender's tag only after the commit.
An envelope is routed by its recipient tag alone (`routing`): one for a tag we do not serve is
dropped unread; a session tag takes Olm normal messages, tried only with that contact's few
sessions; our intro tag takes only first-contact envelopes, each naming its sender: a pre-key
message of a session we hold is read with it, any other is charged to its source's
first-contact budget before any public-key work and then opens at most one session.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import replace
from typing import Final

from pigeon.crypto.app_bundle import AppIdentityBundle, AppPrekeyBundle
from pigeon.crypto.errors import BundleMismatch, CryptoError, UnknownPrekey
from pigeon.crypto.identity import Identity, handle
from pigeon.crypto.olm_wire import (
    MESSAGE_TYPE_NORMAL,
    MESSAGE_TYPE_PREKEY,
    Initiation,
    OlmMessage,
    PrekeyKeys,
    join_prekey,
)
from pigeon.crypto.signing import verify
from pigeon.mesh.packet import Packet, PacketType, decode_packet
from pigeon.mesh.receipt import open_notice, receipt_hash, verify_receipt
from pigeon.messenger.addressing import TagBook, intro_tag_key
from pigeon.messenger.app_chat import is_app_card
from pigeon.messenger.config import MessengerConfig
from pigeon.messenger.envelope import (
    ChunkBody,
    Envelope,
    Inner,
    MessageEnvelope,
    PrekeyAnswer,
    PrekeyEnvelope,
    PrekeyRequest,
    ShortPrekeyEnvelope,
    TextBody,
    decode_envelope,
    decode_inner,
    encode_envelope,
    request_message,
)
from pigeon.messenger.errors import MalformedEnvelope
from pigeon.messenger.first_contact import FirstContactBudget, Source
from pigeon.messenger.olm_ops import OlmOps
from pigeon.messenger.outbox import Outbox
from pigeon.messenger.packets import (
    HANDSHAKE_FLAGS,
    Random,
    notice_for,
    receipt_for,
    received_associated_data,
)
from pigeon.messenger.records import PeerRecord
from pigeon.messenger.routing import RouteKind, Routes
from pigeon.messenger.work import Work
from pigeon.store.errors import NotFound
from pigeon.store.vault_records import Direction, FileInfo, Message, MessageState

_LOGGER = logging.getLogger(__name__)

_INTRO_KINDS: Final = (PrekeyEnvelope, ShortPrekeyEnvelope, PrekeyRequest, PrekeyAnswer)


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
        ops: OlmOps,
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
        self, work: Work, packet: Packet, routes: Routes, now: float, source: Source
    ) -> None:
        """Process one delivered envelope or notice."""
        if packet.type is PacketType.NOTICE:
            self._on_notice(work, packet, routes.book, now)
            return
        if packet.type is not PacketType.ENVELOPE:
            return
        route = routes.kind(packet.recipient_tag)
        if route is RouteKind.UNSERVED:
            self.stats["unserved_tag"] += 1  # from a relay mailbox: anyone may deposit there
            return
        if work.tx.incoming_seen(packet.packet_id):
            self.stats["duplicates"] += 1
            return
        try:
            envelope = decode_envelope(packet.payload)
            accepted = self._dispatch(work, packet, envelope, routes, now, source)
        except (MalformedEnvelope, CryptoError) as exc:
            self.stats["dropped_" + type(exc).__name__] += 1
            _LOGGER.debug("dropped an envelope: %s", type(exc).__name__)
            return
        if accepted:
            work.tx.claim_incoming(packet.packet_id, now)

    def _dispatch(
        self,
        work: Work,
        packet: Packet,
        envelope: Envelope,
        routes: Routes,
        now: float,
        source: Source,
    ) -> bool:
        owner = routes.owner(packet.recipient_tag)
        if owner is not None:
            if not isinstance(envelope, MessageEnvelope):
                self.stats["dropped_session_tag_not_message"] += 1
                return False
            return self._on_message(work, packet, envelope, owner, now)
        if not isinstance(envelope, _INTRO_KINDS):
            self.stats["dropped_intro_not_first_contact"] += 1  # unread: no session is tried
            return False
        if isinstance(envelope, PrekeyEnvelope):
            return self._on_prekey(work, packet, envelope, now, source)
        if isinstance(envelope, ShortPrekeyEnvelope):
            return self._on_short_prekey(work, packet, envelope, now, source)
        if isinstance(envelope, PrekeyRequest):
            return self._on_request(work, envelope, now, source)
        return self._on_answer(work, envelope, now, source)

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
        if message.file_id is None:
            work.tx.remove_message_from_outbox(message.message_id)  # a renewed text's others
        work.message_updated(message.message_id)

    # -- first contact (our intro tag) ---------------------------------------------------------

    def _contact_of(self, work: Work, identity_key: bytes) -> str | None:
        """The contact whose Ed25519 key this is, or None (a stranger: dropped unread)."""
        contact_id = handle(identity_key)
        try:
            if is_app_card(work.tx.contact(contact_id).card):
                raise NotFound("an app contact speaks the app's envelope, not ours")
            card = self._outbox.card(work, contact_id)
        except NotFound:
            self.stats["unknown_sender"] += 1
            return None
        if card.mailbox_key != identity_key:
            self.stats["unknown_sender"] += 1
            return None
        return contact_id

    def _charge(self, source: Source, now: float) -> bool:
        """Spend one first-contact token of `source`, before any public-key work."""
        if self._budget.allow(source, now):
            return True
        self.stats["first_contact_over_budget"] += 1
        return False

    def _check_olm_identity(self, work: Work, contact_id: str, sender: AppIdentityBundle) -> None:
        """Raise BundleMismatch if the contact's card binds another Olm identity key."""
        card = self._outbox.card(work, contact_id)
        if card.prekey is not None and card.prekey.identity != sender:
            raise BundleMismatch("the Olm identity differs from the contact's card")

    def _on_prekey(
        self, work: Work, packet: Packet, envelope: PrekeyEnvelope, now: float, source: Source
    ) -> bool:
        initiation = Initiation.from_bytes(envelope.initiation)
        sender, message = initiation.identity, initiation.message
        contact_id = self._contact_of(work, sender.identity_key)
        if contact_id is None:
            return False
        return self._open_prekey(work, packet, contact_id, sender, message, now, source)

    def _on_short_prekey(
        self, work: Work, packet: Packet, envelope: ShortPrekeyEnvelope, now: float, source: Source
    ) -> bool:
        """A pre-key message without the sender's identity bundle: bound to the Olm identity we
        hold for the contact (its card's, else its answered bundle's), or dropped unread."""
        contact_id = self._contact_of(work, envelope.sender_key)
        if contact_id is None:
            return False
        sender = self._olm_identity_of(work, contact_id)
        if sender is None:
            self.stats["short_prekey_unbound"] += 1  # we hold no Olm key of it: it sends in full
            return False
        try:
            prekey = self._sessions.account(work.tx, now).fallback_named(envelope.prekey_id)
        except UnknownPrekey:
            if self._charge(source, now):  # an answer costs a one-time key: budgeted
                self._answer_prekey(work, contact_id, now)  # it holds a retired card of ours
            raise
        keys = PrekeyKeys(prekey, envelope.base_key, sender.curve_identity_key)
        message = OlmMessage(MESSAGE_TYPE_PREKEY, join_prekey(keys, envelope.message))
        return self._open_prekey(work, packet, contact_id, sender, message, now, source)

    def _olm_identity_of(self, work: Work, contact_id: str) -> AppIdentityBundle | None:
        """The contact's Olm identity as we hold it (verified when it was stored), or None."""
        card = self._outbox.card(work, contact_id)
        if card.prekey is not None:
            return card.prekey.identity
        answered = self._outbox.record(work, contact_id).prekey
        return AppPrekeyBundle.from_bytes(answered).identity if answered else None

    def _open_prekey(
        self,
        work: Work,
        packet: Packet,
        contact_id: str,
        sender: AppIdentityBundle,
        message: OlmMessage,
        now: float,
        source: Source,
    ) -> bool:
        """Read a pre-key message from the contact with a session we hold, else open (at most)
        one, charged to `source`'s first-contact budget before any public-key work."""
        record = self._outbox.record(work, contact_id)
        ad = received_associated_data(packet)
        for index, state in enumerate(record.sessions):
            if self._sessions.matches(state, message):  # a session we hold: no key agreement
                state, plaintext = self._sessions.decrypt(state, message)
                inner = decode_inner(plaintext, ad)
                record = record.with_session_at(index, state)
                self._accept(work, packet, contact_id, record, inner, now)
                return True
        if not self._charge(source, now):
            return False
        self._check_olm_identity(work, contact_id, sender)
        try:
            state, plaintext, account = self._sessions.inbound(work.tx, sender, message, now)
        except UnknownPrekey:
            self._answer_prekey(work, contact_id, now)  # the contact holds a stale prekey
            raise
        inner = decode_inner(plaintext, ad)
        self._sessions.save_account(work.tx, account, now)  # the one-time key is spent here
        record = self._place(record, state, sender.identity_key)
        record = self._accept(work, packet, contact_id, record, inner, now)
        if record.session == state:
            record = self._outbox.session_up(work, contact_id, record, now, opened=True)
            self._outbox.save(work, contact_id, record, now)
            _LOGGER.info("an Olm session opened by a contact")
        return True

    def _place(self, record: PeerRecord, state: bytes, peer_key: bytes) -> PeerRecord:
        """Where a session the contact opened goes: it becomes the one we send on, unless our
        own unconfirmed session is older and wins the tie (lower identity key): then both
        sides send on ours, and the contact's is kept only to read what it already sent."""
        ours_first = self._identity.public_key < peer_key
        if record.session is not None and not record.confirmed and ours_first:
            self.stats["session_race_won"] += 1
            return record.with_behind(state)
        return record.with_current(state, True)

    def _on_request(self, work: Work, request: PrekeyRequest, now: float, source: Source) -> bool:
        contact_id = self._contact_of(work, request.requester_key)
        if contact_id is None:
            return False
        if abs(now * 1000 - request.sent_at_ms) > self._config.envelope_lifetime_s * 1000:
            self.stats["stale_prekey_request"] += 1
            return False
        if not self._charge(source, now):
            return False
        signed = request_message(
            self._identity.public_key, request.requester_key, request.sent_at_ms
        )
        verify(request.requester_key, signed, request.signature)
        self._answer_prekey(work, contact_id, now)
        return True

    def _answer_prekey(self, work: Work, contact_id: str, now: float) -> None:
        """Send a fresh signed one-time prekey to the contact's intro tag (not stored: a lost
        answer is asked for again; the account bounds the one-time keys it keeps)."""
        bundle = self._sessions.one_time_bundle(work.tx, now)
        tag_key = intro_tag_key(self._outbox.card(work, contact_id).mailbox_key)
        frame = self._outbox.frame(work, contact_id, tag_key, now, HANDSHAKE_FLAGS, receipted=False)
        work.send(frame.packet(encode_envelope(PrekeyAnswer(bundle.to_bytes()))), contact_id)
        self.stats["prekey_answers"] += 1

    def _on_answer(self, work: Work, answer: PrekeyAnswer, now: float, source: Source) -> bool:
        bundle = AppPrekeyBundle.from_bytes(answer.bundle)
        contact_id = self._contact_of(work, bundle.identity.identity_key)
        if contact_id is None:
            return False
        if not self._charge(source, now):
            return False
        bundle.verify()
        self._check_olm_identity(work, contact_id, bundle.identity)
        record = self._outbox.record(work, contact_id)
        record = replace(record, prekey=bundle.to_bytes(), requested_at=0.0)
        if record.session is not None and not record.confirmed:
            # Our pre-key messages were never answered: the prekey they name may be gone.
            self._outbox.requeue(work, contact_id)
            record = replace(record, sessions=record.sessions[1:])
        if record.session is None:
            record = self._outbox.ensure_session(work, contact_id, record, now)
        self._outbox.save(work, contact_id, record, now)
        return True

    # -- session messages ----------------------------------------------------------------------

    def _on_message(
        self, work: Work, packet: Packet, envelope: MessageEnvelope, contact_id: str, now: float
    ) -> bool:
        record = self._outbox.record(work, contact_id)
        message = OlmMessage(MESSAGE_TYPE_NORMAL, envelope.ciphertext)
        ad = received_associated_data(packet)
        for index, state in enumerate(record.sessions):  # this contact's few sessions only
            self.stats["session_tries"] += 1
            try:
                state, plaintext = self._sessions.decrypt(state, message)
            except CryptoError:
                continue
            inner = decode_inner(plaintext, ad)
            record = record.with_session_at(index, state)
            if index == 0:
                record = replace(record, confirmed=True)  # the contact wrote on it
            self._accept(work, packet, contact_id, record, inner, now)
            return True
        self.stats["undecryptable"] += 1
        return False

    def _accept(
        self,
        work: Work,
        packet: Packet,
        contact_id: str,
        record: PeerRecord,
        inner: Inner,
        now: float,
    ) -> PeerRecord:
        """Deliver a decrypted message, store the record, and send its receipt and notice."""
        if receipt_hash(inner.receipt_secret) != packet.receipt_hash:
            raise MalformedEnvelope("the receipt secret does not match the packet")
        record = replace(record, outbound_tag_key=inner.tag_key)
        self._deliver(work, contact_id, inner, now)
        self._outbox.save(work, contact_id, record, now)
        # The receipt stays on the mesh (its relays clear their copies); the notice may
        # also go to the contact's relay mailbox: only it is for the contact.
        work.send(receipt_for(packet, inner.receipt_secret), None)
        work.send(notice_for(packet, inner.receipt_secret, inner.tag_key, now), contact_id)
        return record

    def _deliver(self, work: Work, contact_id: str, inner: Inner, now: float) -> None:
        body = inner.body
        if isinstance(body, TextBody):
            self._store_text(work, contact_id, body, now)
        elif isinstance(body, ChunkBody):
            self._store_chunk(work, contact_id, body, now)

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
