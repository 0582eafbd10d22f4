"""`Messenger`: the owner's endpoint over the vault; see `pigeon.messenger.api` for the contract."""

from __future__ import annotations

import logging
import os
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Final

from pigeon.appmesh.envelope import Envelope, decode_envelope
from pigeon.appmesh.errors import MalformedEnvelope as MalformedAppEnvelope
from pigeon.crypto.card import ContactCard
from pigeon.crypto.errors import CryptoError
from pigeon.crypto.identity import Identity
from pigeon.crypto.signing import SigningKey
from pigeon.mesh.errors import MalformedPacket
from pigeon.mesh.packet import Packet, decode_packet, encode_packet, priority
from pigeon.mesh.tags import day_number
from pigeon.messenger.addressing import TagBook
from pigeon.messenger.app_chat import AppChat, is_app_card
from pigeon.messenger.app_outgoing import AppOutgoing
from pigeon.messenger.config import MessengerConfig
from pigeon.messenger.errors import (
    StorageFailed,
    UnknownContact,
    UnknownMessage,
    VaultLocked,
    WrongPassphrase,
)
from pigeon.messenger.events import (
    ContactsChanged,
    EventHub,
    LockChanged,
    MessageAdded,
    MessageUpdated,
    Subscription,
)
from pigeon.messenger.first_contact import MESH, FirstContactBudget, Source
from pigeon.messenger.inbox import Inbox
from pigeon.messenger.olm_ops import OlmOps
from pigeon.messenger.outbox import ATTACH_HINTS_SETTING, Outbox
from pigeon.messenger.packets import Random
from pigeon.messenger.records import PeerRecord
from pigeon.messenger.routing import Routes
from pigeon.messenger.upgrade import upgrade_peer_records
from pigeon.messenger.viewing import message_view
from pigeon.messenger.views import MessageView
from pigeon.messenger.work import Work
from pigeon.store.errors import Locked, NotFound, StoreError, WrongKey
from pigeon.store.keeper import VaultKeeper
from pigeon.store.spool_db import DropEnvelope, Spool, SpooledEnvelope, StoreEnvelope
from pigeon.store.vault import Vault
from pigeon.store.vault_records import MessageState

_LOGGER = logging.getLogger(__name__)

APP_PACKET_CLAIM: Final = b"app-packet:"  # prefix of an app packet id's claim on arrival

IDENTITY_SECRET: Final = "identity"
HELD_BATCH: Final = 500
HELD_SLICE: Final = 32  # held envelopes processed per call: the event loop gets control between
HELD_SOURCE: Final = Source("held")  # first contact read from the spool after an unlock
HELD_LOCKED: Final = "owner"  # arrived while the vault was locked (or refused a write)
RECIPIENTS_KEPT: Final = 4_096  # packet id -> contact id of the packets we emitted lately


@contextmanager
def storage_errors() -> Iterator[None]:
    """Translate the store's errors into the messenger's (the cause stays chained)."""
    try:
        yield
    except Locked as exc:
        raise VaultLocked("the vault is locked") from exc
    except WrongKey as exc:
        raise WrongPassphrase("the passphrase does not open the vault") from exc
    except NotFound as exc:
        raise UnknownContact(str(exc)) from exc
    except StoreError as exc:
        raise StorageFailed(str(exc)) from exc


class MessengerCore:
    """Lock state, the protocol parts and the unit-of-work plumbing; `Messenger` adds commands."""

    def __init__(
        self,
        keeper: VaultKeeper,
        spool: Spool | None = None,
        *,
        rng: Random = os.urandom,
        config: MessengerConfig | None = None,
    ) -> None:
        self._keeper = keeper
        self._spool = spool
        self._rng = rng
        self._config = config or MessengerConfig()
        self._hub = EventHub()
        self._outgoing: list[Packet] = []
        self._app_outgoing: list[AppOutgoing] = []
        self._app: AppChat | None = None
        self._recipients: OrderedDict[bytes, str] = OrderedDict()
        self.stats: Counter[str] = Counter()
        self._identity: Identity | None = None
        self._outbox: Outbox | None = None
        self._inbox: Inbox | None = None
        self._sessions: OlmOps | None = None
        self._routes: Routes | None = None
        self._served: tuple[bytes, ...] = ()
        self._announced: tuple[bytes, ...] = ()
        self._budget = FirstContactBudget(self._config.first_contact)
        self._held_dirty = True  # the spool may hold envelopes not queued for processing yet
        self._held: deque[Packet] = deque()

    # -- lock ----------------------------------------------------------------------------------

    @property
    def is_locked(self) -> bool:
        """Whether the vault is locked (the node still relays; owner envelopes wait)."""
        return not self._keeper.is_unlocked or self._identity is None

    @property
    def is_read_only(self) -> bool:
        """Whether the open vault is on a read-only card: history reads, nothing is written."""
        return not self.is_locked and self._keeper.vault.read_only

    @property
    def is_initialised(self) -> bool:
        """Whether a vault has been created."""
        return self._keeper.is_initialised

    def initialise(self, passphrase: str, now: float) -> None:
        """Create the vault and our identity; raises StorageFailed if one exists."""
        with storage_errors():
            self._keeper.initialise(passphrase)
        self._opened(now)

    def unlock(self, passphrase: str, now: float) -> list[Packet]:
        """Open the vault and process envelopes held while locked; the packets to send.

        Raises WrongPassphrase, VaultLocked (no vault yet) or StorageFailed.
        """
        if not self.is_locked:
            return self.take_outgoing()
        with storage_errors():
            try:
                self._keeper.unlock(passphrase)
            except NotFound as exc:
                raise VaultLocked("no vault has been created yet") from exc
        self._opened(now)
        self._process_held(now)
        return self.take_outgoing()

    def lock(self, now: float) -> None:
        """Close the vault; envelopes for the owner wait in the spool until the next unlock.

        The tags served at `now` stay served (they cover yesterday to tomorrow): after a longer
        lock, envelopes for the owner wait in the mesh's spools instead of ours.
        """
        if not self.is_locked:
            self.served_tags(now)
        self._keeper.lock()
        if self._sessions is not None:
            self._sessions.forget()
        self._identity = self._outbox = self._inbox = self._sessions = None
        self._app = None
        self._app_outgoing.clear()
        self._recipients.clear()
        self._routes = None
        self._held.clear()
        self._held_dirty = True
        self._hub.publish(LockChanged(locked=True))

    def change_passphrase(self, old: str, new: str) -> None:
        """Rewrap the vault key; raises WrongPassphrase."""
        with storage_errors():
            self._keeper.change_passphrase(old, new)

    @property
    def ephemeral(self) -> bool:
        """Whether history lives in memory only (keys and contacts persist)."""
        return self._keeper.ephemeral

    def set_ephemeral(self, enabled: bool) -> None:
        """Choose ephemeral history; it takes effect at the next unlock."""
        self._keeper.set_ephemeral(enabled)

    def _opened(self, now: float) -> None:
        vault = self._vault()
        with storage_errors(), vault.transaction() as tx:
            secrets = tx.owner_secret(IDENTITY_SECRET)
            if secrets is None:
                secrets = self._rng(32) + self._rng(32)
                tx.put_owner_secret(IDENTITY_SECRET, secrets, now)
            hints = tx.setting(ATTACH_HINTS_SETTING)
            upgrade_peer_records(tx)
            sessions = OlmOps(SigningKey(secrets[:32]), secrets[:32])
            sessions.account(tx, now)  # made on the first unlock: our card names its keys
        identity = Identity.from_secrets(secrets[:32], secrets[32:])
        self._identity = identity
        self._sessions = sessions
        attach_hints = self._config.attach_mailbox_hints if hints is None else hints == "1"
        self._outbox = Outbox(
            identity, self._sessions, self._rng, self._config, attach_hints=attach_hints
        )
        self._inbox = Inbox(
            identity,
            self._rng,
            self._config,
            self._outbox,
            self.stats,
            self._sessions,
            self._budget,
        )
        self._app = AppChat(identity.public_key, sessions, self.stats)
        self._routes = None
        self._hub.publish(LockChanged(locked=False))
        _LOGGER.info("vault unlocked")

    def _vault(self) -> Vault:
        try:
            return self._keeper.vault
        except Locked as exc:
            raise VaultLocked("the vault is locked") from exc

    def _ops(self) -> OlmOps:
        if self._sessions is None:
            raise VaultLocked("the vault is locked")
        return self._sessions

    def _app_chat(self) -> AppChat:
        if self._app is None:
            raise VaultLocked("the vault is locked")
        return self._app

    def _parts(self) -> tuple[Identity, Outbox, Inbox]:
        if self._identity is None or self._outbox is None or self._inbox is None:
            raise VaultLocked("the vault is locked")
        return self._identity, self._outbox, self._inbox

    # -- units of work -------------------------------------------------------------------------

    @contextmanager
    def _work(self) -> Iterator[Work]:
        """A vault transaction whose packets and events are released after it commits."""
        vault = self._vault()
        with storage_errors(), vault.transaction() as tx:
            work = Work(tx)
            yield work
        self._outgoing.extend(work.packets)
        self._app_outgoing.extend(work.app_envelopes)
        self._remember_recipients(work.recipients)
        if work.tags_changed:
            self._routes = None
        self._announce(work)

    def _remember_recipients(self, recipients: dict[bytes, str]) -> None:
        for packet_id, contact_id in recipients.items():
            self._recipients[packet_id] = contact_id
            self._recipients.move_to_end(packet_id)
        while len(self._recipients) > RECIPIENTS_KEPT:
            self._recipients.popitem(last=False)

    def _announce(self, work: Work) -> None:
        for message_id in work.added:
            self._hub.publish(MessageAdded(self.message(message_id)))
        for message_id in work.updated:
            self._hub.publish(MessageUpdated(self.message(message_id)))
        if work.contacts_changed:
            self._hub.publish(ContactsChanged())

    def message(self, message_id: str) -> MessageView:
        """The view of message `message_id`; raises UnknownMessage or VaultLocked."""
        vault = self._vault()
        with storage_errors():
            try:
                record = vault.message(message_id)
            except NotFound as exc:
                raise UnknownMessage("no such message") from exc
            return message_view(vault, record)

    def subscribe(
        self, maxlen: int = 256, wakeup: Callable[[], None] | None = None
    ) -> Subscription:
        """A subscription to MessageAdded, MessageUpdated, ContactsChanged and LockChanged."""
        return self._hub.subscribe(maxlen, wakeup)

    # -- the mesh side (for the daemon) --------------------------------------------------------

    def take_outgoing(self) -> list[Packet]:
        """The packets produced since the last call, to hand to the router as LocalSend."""
        packets, self._outgoing = self._outgoing, []
        return packets

    def take_app_outgoing(self) -> list[AppOutgoing]:
        """The app envelopes produced since the last call, for the app mesh and app relays."""
        envelopes, self._app_outgoing = self._app_outgoing, []
        return envelopes

    def handle_app_envelope(
        self, data: bytes, now: float, packet_id: bytes | None = None
    ) -> list[AppOutgoing]:
        """An app envelope (an app mesh packet's payload, or one read from the owner's app
        mailbox); the app envelopes to send. Ones not for us, malformed or opening nothing
        are counted and dropped (the app resends, and asks again after a rehandshake).

        With the packet's `packet_id`, a packet whose envelope was taken (Olm opened it, or a
        rehandshake request) is claimed in the same transaction, and a later copy of it (the
        app sends one packet by radio and to every relay) is dropped unread: a second copy
        would fail Olm, its key spent, or restart the session again. Nothing Olm refused is
        claimed, so a forged copy sent first (the id is visible to every hop) cannot suppress
        the real one."""
        if self.is_locked or self._app is None:
            self.stats["app_dropped_locked"] += 1
            return []
        try:
            envelope = decode_envelope(data)
        except MalformedAppEnvelope:
            self.stats["app_dropped_malformed"] += 1
            return []
        if self._identity is None or envelope.recipient != self._identity.public_key:
            self.stats["app_dropped_not_ours"] += 1
            return []
        self._handle_app(envelope, now, packet_id)
        return self.take_app_outgoing()

    def _handle_app(self, envelope: Envelope, now: float, packet_id: bytes | None) -> None:
        app = self._app
        assert app is not None
        # Its own namespace: the table also holds our mesh packets' ids, seen in the clear.
        claim = None if packet_id is None else APP_PACKET_CLAIM + packet_id
        try:
            with self._work() as work:
                if claim is not None and work.tx.incoming_seen(claim):
                    self.stats["app_duplicate_packet"] += 1
                    return
                if app.handle(work, envelope, now) and claim is not None:
                    work.tx.claim_incoming(claim, now)
        except CryptoError as exc:
            # Rolled back: nothing it touched (a one-time key, a session) changed.
            self.stats["app_dropped_" + type(exc).__name__] += 1

    def recipient_of(self, packet_id: bytes) -> str | None:
        """The contact id a packet we emitted is for; None if unknown, not ours, or locked.

        The last RECIPIENTS_KEPT packets are remembered in memory; older ones (envelopes
        re-offered after a restart) are found in the vault outbox. Raises StorageFailed.
        """
        if self.is_locked:
            return None
        contact_id = self._recipients.get(packet_id)
        if contact_id is not None:
            return contact_id
        vault = self._vault()
        with storage_errors():
            entry = vault.outbox_entry(packet_id)
        return None if entry is None else entry.contact_id

    def contact_mailbox_key(self, contact_id: str) -> bytes:
        """The contact's mailbox key (its Ed25519 identity key, from its signed card).

        Raises UnknownContact, VaultLocked, StorageFailed.
        """
        vault = self._vault()
        with storage_errors():
            card = vault.contact(contact_id).card
        return ContactCard.from_bytes(card).mailbox_key

    def served_tags(self, now: float) -> tuple[bytes, ...]:
        """The recipient tags to serve now (ServeTags); the last known set while locked."""
        if self.is_locked:
            return self._served
        book = self._routing(now).book
        self._served, self._announced = book.tags, book.announced_tags
        return self._served

    def announced_tags(self, now: float) -> tuple[bytes, ...]:
        """The part of `served_tags(now)` to announce (today's tags; the rest are served
        silently); the last known set while locked."""
        self.served_tags(now)
        return self._announced

    def _routing(self, now: float) -> Routes:
        identity, _outbox, _ = self._parts()
        routes = self._routes
        if routes is not None and routes.book.day == day_number(now):
            return routes
        vault = self._vault()
        with storage_errors():
            keys: list[tuple[str, bytes]] = []
            for contact in vault.contacts():
                stored = vault.session(contact.contact_id)
                if stored is not None:
                    record = PeerRecord.from_bytes(stored.state)
                    keys.append((contact.contact_id, record.inbound_tag_key))
        book = TagBook.build(identity.public_key, keys, (), now)
        self._routes = Routes.build(book, identity.public_key, now)
        return self._routes

    def handle_packet(self, packet: Packet, now: float, source: Source = MESH) -> list[Packet]:
        """An envelope or receipt the router delivered for our tags (or one read from the
        owner's relay mailbox: `source` says which); the packets to send.

        While locked it waits in the spool (unacknowledged) for the next unlock.
        """
        return self.handle_packets([packet], now, source)

    def handle_packets(
        self, packets: Sequence[Packet], now: float, source: Source = MESH
    ) -> list[Packet]:
        """Several delivered packets in one vault transaction (one disk flush); see above."""
        if self.is_locked:
            for packet in packets:
                self._hold(packet, now)
            return []
        try:
            self._handle(packets, now, source)
        except StorageFailed:
            # The vault refused the batch (disk full, damage): keep the envelopes, still
            # unacknowledged, in the spool for a later unlock rather than lose them.
            if self._spool is None:
                raise
            for packet in packets:
                self._hold(packet, now)
            _LOGGER.warning(
                "the vault refused %d delivered packets; held in the spool", len(packets)
            )
            return []
        return self.take_outgoing()

    def _handle(self, packets: Sequence[Packet], now: float, source: Source) -> None:
        """Process `packets` in one transaction (a new one whenever the served tags change)."""
        _, _, inbox = self._parts()
        remaining = list(reversed(packets))
        while remaining:
            routes = self._routing(now)
            with self._work() as work:
                while remaining and not work.tags_changed:
                    inbox.handle(work, remaining.pop(), routes, now, source)

    def _hold(self, packet: Packet, now: float, depositor: str = HELD_LOCKED) -> None:
        if self._spool is None:
            self.stats["dropped_locked_no_spool"] += 1
            return
        held = SpooledEnvelope(
            packet_id=packet.packet_id,
            recipient_tag=packet.recipient_tag,
            depositor=depositor,
            priority=int(priority(packet)),
            expires_at=packet.expires_at_s,
            receipt_hash=packet.receipt_hash or None,
            packet=encode_packet(packet),
            stored_at=now,
            held_for_owner=True,
        )
        with storage_errors():
            self._spool.apply([StoreEnvelope(held)])
        self.stats["held_" + depositor] += 1
        self._held_dirty = True

    @property
    def held_pending(self) -> bool:
        """Whether envelopes held in the spool wait to be processed (see `process_held`)."""
        return (
            not self.is_locked
            and not self.is_read_only
            and self._spool is not None
            and (self._held_dirty or bool(self._held))
        )

    def process_held(self, now: float) -> list[Packet]:
        """Process the next few held envelopes (at most HELD_SLICE); the packets to send.

        Call again while `held_pending`, letting other work run in between.
        """
        if self.is_locked:
            return []
        self._process_held(now)
        return self.take_outgoing()

    def _process_held(self, now: float) -> None:
        """Process a slice of the envelopes held while locked; drop each from the spool once
        the vault has it (not on a read-only card: they stay held, unacknowledged)."""
        spool = self._spool
        if spool is None or self.is_read_only:
            return
        if not self._held and self._held_dirty:
            self._queue_held(spool, now)
        batch = [self._held.popleft() for _ in range(min(HELD_SLICE, len(self._held)))]
        if not batch:
            return
        self._handle(batch, now, HELD_SOURCE)
        with storage_errors():  # only after the vault recorded them: a crash replays
            spool.apply([DropEnvelope(packet.packet_id) for packet in batch])

    def _queue_held(self, spool: Spool, now: float) -> None:
        """Queue what the spool holds for the owner (a batch at a time)."""
        with storage_errors():
            batch = spool.owner_held(HELD_BATCH)
        expired: list[bytes] = []
        for held in batch:
            try:
                packet = decode_packet(held.packet)
            except MalformedPacket:
                self.stats["dropped_held_malformed"] += 1
                expired.append(held.packet_id)
                continue
            if packet.expires_at_s <= now:
                expired.append(held.packet_id)
            else:
                self._held.append(packet)
        with storage_errors():
            spool.apply([DropEnvelope(packet_id) for packet_id in expired])
        self._held_dirty = len(batch) == HELD_BATCH  # more wait: queued once these are done

    def tick(self, now: float) -> list[Packet]:
        """Time passed: expire, re-offer due envelopes, ask again for missing prekeys, rotate
        our fallback prekey when due. Nothing on a read-only card: each step is a write."""
        if self.is_locked or self.is_read_only:
            return []
        outbox = self._parts()[1]
        self._process_held(now)  # anything the vault could not take earlier
        with self._work() as work:
            outbox.expire(work, now)
            outbox.retry_due(work, now)
            for contact in work.tx.contacts():
                if not is_app_card(contact.card):
                    self._tend_session(work, contact.contact_id, now)
                else:
                    self._app_chat().resend_due(
                        work,
                        contact.contact_id,
                        contact.check_in_interval_s,
                        self._config.envelope_lifetime_s,
                        now,
                    )
            self._ops().rotate_if_due(work.tx, now)
            work.tx.forget_incoming_before(now - 2 * self._config.envelope_lifetime_s)
        return self.take_outgoing()

    def _tend_session(self, work: Work, contact_id: str, now: float) -> None:
        """Messages wait with no session: open one, or ask for the contact's prekeys again."""
        outbox = self._parts()[1]
        record = outbox.record(work, contact_id)
        if record.session is not None or not work.tx.waiting(contact_id):
            return
        renewed = outbox.ensure_session(work, contact_id, record, now)
        if renewed is not record:
            outbox.save(work, contact_id, renewed, now)

    def note_sent(self, envelope_ids: list[bytes], now: float) -> None:
        """The driver saw these envelopes of ours handed to a neighbour: queued -> sent."""
        self._advance(envelope_ids, (MessageState.QUEUED,), MessageState.SENT, now)

    def note_relayed(self, envelope_ids: list[bytes], now: float) -> None:
        """A relay server acknowledged storing these envelopes: queued or sent -> relayed."""
        states = (MessageState.QUEUED, MessageState.SENT)
        self._advance(envelope_ids, states, MessageState.RELAYED, now)

    def _advance(
        self,
        envelope_ids: list[bytes],
        from_states: tuple[MessageState, ...],
        to_state: MessageState,
        now: float,
    ) -> None:
        if self.is_locked or not envelope_ids:
            return
        with self._work() as work:
            for envelope_id in envelope_ids:
                entry = work.tx.outbox_entry(envelope_id)
                if entry is None or entry.message_id is None:
                    continue
                message = work.tx.message(entry.message_id)
                if message.state in from_states:
                    work.tx.set_message_state(message.message_id, to_state, now)
                    work.message_updated(message.message_id)

    def outstanding_envelopes(self) -> list[bytes]:
        """Ids of our envelopes still waiting for a receipt (for the driver's sent checks)."""
        vault = self._vault()
        with storage_errors():
            return [
                entry.envelope_id
                for contact in vault.contacts()
                for entry in vault.outbox_for_contact(contact.contact_id)
            ]
