"""The messenger's public API: the only part of `pigeon.messenger` the web page and OLED use.

    messenger = Messenger(keeper, spool, rng=os.urandom)   # store.VaultKeeper, store.Spool

Lock (the node relays while locked; envelopes for the owner wait in the spool, unacknowledged):
    is_initialised, is_locked, initialise(passphrase, now), unlock(passphrase, now) -> packets,
    lock(now), change_passphrase(old, new), ephemeral, set_ephemeral(enabled) (next unlock)
    raise WrongPassphrase, VaultLocked, StorageFailed
Own identity:
    own_card_text() -> "PIGEON:..."; set_profile(name, relays); own_handle()
    own_app_card_link() -> "pigeon://contact?card=..." (the Pigeon app's card v3, for app users);
    own_identity_key() -> the Ed25519 key app envelopes name
    mailbox_hints, set_mailbox_hints(enabled)   attach contacts' signed mailbox hints to our
        envelopes, so neighbours with internet deposit them (the config's default until set)
Contacts (ids are the contact's handle, `XXXX-XXXX-XXXX-XXXX-XXXX`):
    add_contact(card_text, name, now) -> ContactView      InvalidCard (crypto cause chained),
        OwnCard (ours), DuplicateContact, InvalidName; an empty `name` takes the card's signed one
    contacts() -> list[ContactView]; contact(id) -> ContactView
    rename_contact(id, name); remove_contact(id); set_check_in_interval(id, seconds)
    safety_number(id) -> 60 digits
    mark_verified(id, confirmed_number, now)   only if `confirmed_number` equals the number
        computed now for that contact (SafetyNumberMismatch otherwise); nothing else sets
        `verified`, and a changed card clears it
    all raise UnknownContact for an unknown id
Conversations:
    conversation(id, before_seq=None, limit=50) -> list[MessageView], oldest first; page back
        with `before_seq` = the first view's `seq`
    message(message_id) -> MessageView (UnknownMessage)
    send_text(id, text, now) -> MessageView             MessageTooLarge over 4 KiB of UTF-8,
                                                        InvalidText empty, blank or a lone surrogate
    send_file(id, name, data, now) -> MessageView       MessageTooLarge over 25 MB
    file_data(message_id) -> (name, bytes)              FileIncomplete until every chunk is in
    mark_read(id) -> None                               unread counts drop to 0
Events (no asyncio): subscribe(maxlen=256, wakeup=None) -> Subscription with get(), drain(),
    close(); events MessageAdded(view), MessageUpdated(view), ContactsChanged(), LockChanged(
    locked), and Resync() when the subscriber fell behind (reload the views).
Every method raises only MessengerError subclasses (VaultLocked while locked).

The daemon's side (sans-IO: nothing here sends; it hands over packets to send):
    served_tags(now) -> tags for the router's ServeTags (refresh daily and after changes)
    announced_tags(now) -> the part of them ServeTags announces (today's); the rest is silent
    handle_packet(packet, now, source=MESH) -> packets   a Deliver-ed envelope or notice,
        or one read from the owner's relay mailbox (`first_contact.relay_source(url)`)
    held_pending, process_held(now) -> packets  envelopes held while locked or parked wait:
        process them a slice at a time, letting other work run in between
    tick(now) -> packets                        every few seconds: retries, expiry, handshakes
    take_outgoing() -> packets                  produced by commands (send_text, ...)
    note_sent(envelope_ids, now)                a copy went to a neighbour: queued -> sent
    note_relayed(envelope_ids, now)             a relay server stored it: -> relayed
    outstanding_envelopes() -> ids awaiting receipts
    recipient_of(packet_id) -> contact id | None   whom a packet we emitted is for (every
        envelope, handshake step and notice names its contact, receipts none: they stay on
        the mesh; a handshake reply does only
        when the initiator's Hello carried a reply-to hint naming one of our contacts); the
        last 4,096 from memory, older ones from the vault outbox; None while locked
    contact_mailbox_key(id) -> bytes            the contact's Ed25519 mailbox key (relay address)
    handle_app_envelope(data, now, packet_id=None) -> [AppOutgoing]   an app envelope for our
        key (app mesh or our app mailbox), taken once per packet id; take_app_outgoing() ->
        [AppOutgoing]  app envelopes to send
Message states: queued (stored, waiting for a session or a neighbour), sent (handed to a
neighbour), relayed (an internet relay acknowledged storing it: the mesh itself gives no
per-hop acknowledgement, so mesh-only paths go sent -> delivered), delivered (the recipient's
authenticated receipt came back: it revealed the secret hidden inside the encrypted envelope),
failed (with a reason, e.g. expired after the envelope lifetime), received (incoming).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Final

from pigeon.crypto.app_card import AppContactCard
from pigeon.crypto.app_safety import app_safety_number
from pigeon.crypto.card import ContactCard
from pigeon.crypto.errors import CryptoError
from pigeon.crypto.identity import handle
from pigeon.crypto.safety import safety_number, safety_numbers_match
from pigeon.messenger.app_chat import is_app_card
from pigeon.messenger.app_outgoing import AppOutgoing
from pigeon.messenger.app_records import app_record_key
from pigeon.messenger.config import MessengerConfig
from pigeon.messenger.endpoint import MessengerCore, storage_errors
from pigeon.messenger.envelope import (
    CHUNK_BYTES,
    MAX_FILE_BYTES,
    MAX_FILE_NAME_BYTES,
    MAX_TEXT_BYTES,
    chunk_count,
)
from pigeon.messenger.errors import (
    DuplicateContact,
    FileIncomplete,
    InvalidCard,
    InvalidName,
    InvalidText,
    MalformedEnvelope,
    MessageTooLarge,
    MessengerError,
    OwnCard,
    RefusedToSign,
    SafetyNumberMismatch,
    StorageFailed,
    UnknownContact,
    UnknownMessage,
    VaultLocked,
    WrongPassphrase,
)
from pigeon.messenger.events import (
    ContactsChanged,
    Event,
    LockChanged,
    MessageAdded,
    MessageUpdated,
    NeighbourhoodHeard,
    Resync,
    Subscription,
)
from pigeon.messenger.outbox import ATTACH_HINTS_SETTING
from pigeon.messenger.records import PEER_RECORD_VERSION, PeerRecord
from pigeon.messenger.viewing import READ_SEQ_SETTING, contact_view, message_view
from pigeon.messenger.views import ContactView, MessageView
from pigeon.store.errors import Conflict, NotFound
from pigeon.store.vault_records import Direction, FileInfo, Message, MessageState, SessionState

__all__ = [
    "AppOutgoing",
    "ContactView",
    "ContactsChanged",
    "DuplicateContact",
    "Event",
    "FileIncomplete",
    "InvalidCard",
    "InvalidName",
    "InvalidText",
    "LockChanged",
    "MalformedEnvelope",
    "MessageAdded",
    "MessageTooLarge",
    "MessageUpdated",
    "MessageView",
    "Messenger",
    "MessengerConfig",
    "MessengerError",
    "NeighbourhoodHeard",
    "OwnCard",
    "RefusedToSign",
    "Resync",
    "SafetyNumberMismatch",
    "StorageFailed",
    "Subscription",
    "UnknownContact",
    "UnknownMessage",
    "VaultLocked",
    "WrongPassphrase",
]

PROFILE_NAME: Final = "profile_name"
PROFILE_RELAYS: Final = "profile_relays"
MAX_DISPLAY_NAME_CHARS: Final = 64


class Messenger(MessengerCore):
    """The owner's endpoint (see the module docstring for the whole contract)."""

    # -- own identity --------------------------------------------------------------------------

    def own_card_text(self) -> str:
        """Our signed contact card in text form (for a QR code or pasting)."""
        identity = self._parts()[0]
        with self._work() as work:
            name = work.tx.setting(PROFILE_NAME)
            relays = (work.tx.setting(PROFILE_RELAYS) or "").split()
            prekey = self._ops().card_bundle(work.tx)
        return ContactCard.create(identity, relays, name, prekey).to_text()

    def own_identity_key(self) -> bytes:
        """Our Ed25519 identity key (the app's envelopes name it in clear)."""
        return self._parts()[0].public_key

    def sign_app_relay_nonce(self, nonce: bytes) -> bytes:
        """Our identity key's signature over an app relay's raw 32-byte auth nonce, as the app
        signs it. Raises RefusedToSign for a nonce that could be a relay-URL list (all bytes
        printable ASCII or newline): our key signs those lists with no domain prefix."""
        if len(nonce) != 32 or all(b == 0x0A or 0x21 <= b <= 0x7E for b in nonce):
            raise RefusedToSign("not a random 32-byte relay nonce")
        return self._parts()[0].sign(nonce)

    def own_handle(self) -> str:
        """Our handle (the id contacts know us by)."""
        return self._parts()[0].handle

    @property
    def mailbox_hints(self) -> bool:
        """Whether our envelopes carry their recipients' mailbox hints (see MessengerConfig)."""
        return self._parts()[1].attach_hints

    def set_mailbox_hints(self, enabled: bool) -> None:
        """Attach mailbox hints from now on, or stop; kept in the vault, over the config."""
        outbox = self._parts()[1]
        with self._work() as work:
            work.tx.put_setting(ATTACH_HINTS_SETTING, "1" if enabled else "0")
        outbox.attach_hints = enabled

    def set_profile(self, name: str | None, relays: Sequence[str] = ()) -> None:
        """The name and mailbox relays our card carries; raises InvalidCard if they do not fit."""
        identity = self._parts()[0]
        if not all(_is_unicode(text) for text in (name or "", *relays)):
            raise InvalidCard("the name and relay URLs must be valid Unicode")
        with self._work() as work:
            prekey = self._ops().card_bundle(work.tx)
        try:
            ContactCard.create(identity, relays, name, prekey)
        except CryptoError as exc:
            raise InvalidCard("the name or a relay URL does not fit a card") from exc
        with self._work() as work:
            if name is None:
                work.tx.delete_setting(PROFILE_NAME)
            else:
                work.tx.put_setting(PROFILE_NAME, name)
            work.tx.put_setting(PROFILE_RELAYS, " ".join(relays))

    # -- contacts ------------------------------------------------------------------------------

    def own_app_card_link(self) -> str:
        """Our card in the Pigeon app's form (v3, `pigeon://contact?card=...`), for app users;
        it lists the relays where our app mailbox is read (`MessengerConfig`)."""
        with self._work() as work:
            name = work.tx.setting(PROFILE_NAME) or ""
            relays = list(self._config.app_mailbox_relays)
            card = self._ops().app_card(work.tx, name, relays)
        return card.to_link()

    def add_contact(self, card_text: str, name: str, now: float) -> ContactView:
        """Add a contact from its card text under `name`, or the card's signed name when `name`
        is blank (unverified). Our card or the Pigeon app's (its base64 or link) both work."""
        identity = self._parts()[0]
        if _is_app_card_text(card_text):
            return self._add_app_contact(card_text, name, now)
        try:
            card = ContactCard.from_text(card_text)
        except CryptoError as exc:
            raise InvalidCard("the card does not parse or verify") from exc
        if card.mailbox_key == identity.public_key:
            raise OwnCard("this is our own card")
        if not name.strip() and card.name is None:
            raise InvalidName("the card carries no name: give the contact one")
        name = _display_name(name if name.strip() else card.name or "")
        contact_id = handle(card.mailbox_key)
        record = PeerRecord(inbound_tag_key=self._rng(32))
        try:
            with self._work() as work:
                work.tx.add_contact(contact_id, name, card.to_bytes(), now)
                work.tx.set_check_in_interval(contact_id, self._config.check_in_interval_s)
                work.tx.save_session(
                    contact_id, SessionState(PEER_RECORD_VERSION, record.to_bytes(), now)
                )
                work.contacts_changed = work.tags_changed = True
        except StorageFailed as exc:
            if isinstance(exc.__cause__, Conflict):
                raise DuplicateContact("this contact exists already") from exc
            raise
        return self.contact(contact_id)

    def _add_app_contact(self, card_text: str, name: str, now: float) -> ContactView:
        identity = self._parts()[0]
        try:
            card = AppContactCard.from_text(card_text)
        except CryptoError as exc:
            raise InvalidCard("the card does not parse or verify") from exc
        key = card.identity.identity_key
        if key == identity.public_key:
            raise OwnCard("this is our own card")
        if card.prekey_bundle is None:
            raise InvalidCard("the app card carries no valid prekey bundle")
        if not name.strip() and not card.display_name:
            raise InvalidName("the card carries no name: give the contact one")
        name = _display_name(name if name.strip() else card.display_name)
        contact_id = handle(key)
        try:
            with self._work() as work:
                work.tx.add_contact(contact_id, name, card.to_bytes(), now)
                work.tx.set_check_in_interval(contact_id, self._config.check_in_interval_s)
                work.contacts_changed = True
        except StorageFailed as exc:
            if isinstance(exc.__cause__, Conflict):
                raise DuplicateContact("this contact exists already") from exc
            raise
        return self.contact(contact_id)

    def contacts(self) -> list[ContactView]:
        """Every contact, in the order they were added."""
        identity, vault = self._parts()[0], self._vault()
        with storage_errors():
            return [contact_view(vault, identity, c) for c in vault.contacts()]

    def contact(self, contact_id: str) -> ContactView:
        """One contact; raises UnknownContact."""
        identity, vault = self._parts()[0], self._vault()
        with storage_errors():
            return contact_view(vault, identity, vault.contact(contact_id))

    def rename_contact(self, contact_id: str, name: str) -> None:
        """Change a contact's display name."""
        name = _display_name(name)
        with self._work() as work:
            work.tx.rename_contact(contact_id, name)
            work.contacts_changed = True

    def remove_contact(self, contact_id: str) -> None:
        """Forget a contact with its session, queued envelopes, history and files."""
        with self._work() as work:
            work.tx.delete_owner_secret(app_record_key(contact_id))
            work.tx.remove_contact(contact_id)
            work.tx.delete_setting(READ_SEQ_SETTING + contact_id)
            work.contacts_changed = work.tags_changed = True

    def set_check_in_interval(self, contact_id: str, seconds: float) -> None:
        """How often queued envelopes to this contact are re-offered (default 300 s)."""
        if not seconds > 0:
            raise InvalidName("the check-in interval must be positive")
        with self._work() as work:
            work.tx.set_check_in_interval(contact_id, seconds)
            work.contacts_changed = True

    def safety_number(self, contact_id: str) -> str:
        """The 60-digit safety number of us and this contact, as computed now."""
        identity, vault = self._parts()[0], self._vault()
        with storage_errors():
            stored = vault.contact(contact_id).card
        if is_app_card(stored):
            remote = AppContactCard.from_bytes(stored).identity.identity_key
            return app_safety_number(identity.public_key, remote)
        return safety_number(identity.bundle(), ContactCard.from_bytes(stored))

    def mark_verified(self, contact_id: str, confirmed_number: str, now: float) -> None:
        """Record that the owner compared `confirmed_number` with the contact and it matched.

        Raises SafetyNumberMismatch unless it is the number computed for the contact now.
        """
        current = self.safety_number(contact_id)
        if not _is_unicode(confirmed_number) or not safety_numbers_match(confirmed_number, current):
            raise SafetyNumberMismatch("that is not the safety number of this contact")
        with self._work() as work:
            work.tx.mark_verified(contact_id, current, now)
            work.contacts_changed = True

    # -- conversations -------------------------------------------------------------------------

    def conversation(
        self, contact_id: str, before_seq: int | None = None, limit: int = 50
    ) -> list[MessageView]:
        """Up to `limit` latest messages before `before_seq`, oldest first."""

        vault = self._vault()
        with storage_errors():
            vault.contact(contact_id)
            rows = vault.messages(contact_id, before_seq=before_seq, limit=max(1, min(limit, 500)))
            return [message_view(vault, row) for row in rows]

    def send_text(self, contact_id: str, text: str, now: float) -> MessageView:
        """Queue a text (up to 4 KiB of UTF-8, not blank) for the contact, exactly as given."""
        if not _is_unicode(text):
            raise InvalidText("a text must be valid Unicode")
        # Blank texts are refused, not trimmed: a bubble with nothing in it tells the contact
        # nothing yet costs an envelope of airtime on every hop, and the page's composer
        # refuses them too. A text with something in it is sent with its spaces as typed.
        if not text.strip():
            raise InvalidText("a text needs at least one character that is not a space")
        if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
            raise MessageTooLarge(f"a text is at most {MAX_TEXT_BYTES} bytes of UTF-8")
        outbox = self._parts()[1]
        message_id = self._rng(16).hex()
        with self._work() as work:
            work.tx.append_message(
                Message(message_id, contact_id, Direction.OUT, MessageState.QUEUED, now, now, text)
            )
            if is_app_card(work.tx.contact(contact_id).card):
                self._app_chat().send(work, contact_id, message_id, now)
            else:
                outbox.queue(work, contact_id, message_id, now)
            work.message_added(message_id)
        return self.message(message_id)

    def send_file(self, contact_id: str, name: str, data: bytes, now: float) -> MessageView:
        """Queue a file (1 byte to 25 MB) for the contact; it goes in chunks at bulk priority."""
        if not 1 <= len(data) <= MAX_FILE_BYTES:
            raise MessageTooLarge(f"a file is 1 to {MAX_FILE_BYTES} bytes")
        name = _file_name(name)
        outbox = self._parts()[1]
        file_id = self._rng(16).hex()
        count = chunk_count(len(data))
        with self._work() as work:
            work.tx.add_file(FileInfo(file_id, contact_id, name, len(data), count, now))
            for index in range(count):
                work.tx.put_chunk(
                    file_id, index, data[index * CHUNK_BYTES : (index + 1) * CHUNK_BYTES]
                )
            work.tx.append_message(
                Message(
                    file_id,
                    contact_id,
                    Direction.OUT,
                    MessageState.QUEUED,
                    now,
                    now,
                    file_id=file_id,
                )
            )
            outbox.start_transfer(work, file_id, file_id, count, now)
            outbox.queue(work, contact_id, file_id, now)
            work.message_added(file_id)
        return self.message(file_id)

    def file_data(self, message_id: str) -> tuple[str, bytes]:
        """(name, contents) of a file message; raises FileIncomplete until it is whole."""
        vault = self._vault()
        with storage_errors():
            try:
                message = vault.message(message_id)
            except NotFound as exc:
                raise UnknownMessage("no such message") from exc
            info = vault.file_info(message.file_id) if message.file_id else None
            if info is None or vault.missing_chunks(info.file_id):
                raise FileIncomplete("the file has not arrived whole yet")
            parts = [vault.chunk(info.file_id, index) or b"" for index in range(info.chunk_count)]
        return info.name, b"".join(parts)

    def mark_read(self, contact_id: str) -> None:
        """Everything in this conversation so far counts as read."""
        vault = self._vault()
        with storage_errors():
            latest = vault.messages(contact_id, limit=1)
        with self._work() as work:
            work.tx.contact(contact_id)
            work.tx.put_setting(READ_SEQ_SETTING + contact_id, str(latest[0].seq if latest else 0))
            work.contacts_changed = True


def _is_app_card_text(text: str) -> bool:
    """Whether pasted text is the app's card (a `pigeon://` link or bare base64), not ours."""
    head = text.strip()[:9].lower()
    return head.startswith("pigeon://") or not head.startswith("pigeon:")


def _is_unicode(text: str) -> bool:
    """False for a str holding a lone surrogate (a JSON escape such as "\\ud800" or bytes that
    are not UTF-8 decoded with surrogateescape make one): it can be neither stored nor sent."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _display_name(name: str) -> str:
    cleaned = name.strip()
    if not 1 <= len(cleaned) <= MAX_DISPLAY_NAME_CHARS or any(
        unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Zl", "Zp"} for ch in cleaned
    ):
        raise InvalidName(f"a name is 1 to {MAX_DISPLAY_NAME_CHARS} printable characters")
    return cleaned


def _file_name(name: str) -> str:
    cleaned = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if (
        not cleaned
        or not cleaned.isprintable()  # first: a lone surrogate is unprintable and unencodable
        or len(cleaned.encode("utf-8")) > MAX_FILE_NAME_BYTES
    ):
        raise InvalidName(f"a file name is 1 to {MAX_FILE_NAME_BYTES} bytes, printable, no path")
    return cleaned
