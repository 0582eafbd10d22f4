"""An Olm account as the Pigeon app uses it: vodozemac's account bound to an Ed25519 identity.

The Ed25519 identity (the safety-number root) is held apart from the Olm account and passed
in, never serialised here; it signs the Olm Curve25519 identity key (`AppIdentityBundle`) and
every prekey we publish (`AppPrekeyBundle`). vodozemac reports only unpublished keys, so we
keep the bookkeeping it cannot give back: the current and previous fallback keys (vodozemac
accepts both), when the fallback last rotated, the one-time keys we published and not yet saw
used, and a bounded cache of the pre-key sessions already opened, which turns a replayed
pre-key message to the (reusable) fallback key into `Replayed` instead of a second session.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Final, Protocol, cast

import vodozemac

from pigeon.crypto.app_bundle import CURVE_KEY_LEN, AppIdentityBundle, AppPrekeyBundle
from pigeon.crypto.errors import (
    BundleMismatch,
    DecryptFailed,
    MalformedInput,
    Replayed,
    StateMisuse,
    UnknownPrekey,
)
from pigeon.crypto.olm_state import seal, unseal
from pigeon.crypto.olm_wire import (
    MESSAGE_TYPE_PREKEY,
    PREKEY_ID_LEN,
    OlmMessage,
    PrekeyKeys,
    prekey_id,
    prekey_keys,
)
from pigeon.crypto.protobuf import bytes_field, decode_message, varint_field
from pigeon.crypto.signing import SigningKey

STATE_VERSION: Final = 1
STATE_LABEL: Final = b"Pigeon.OlmAccountState.v1"
FALLBACK_ROTATION_S: Final = 7 * 24 * 3600  # the app's interval; the previous key lives one more
INITIAL_ONE_TIME_KEYS: Final = 50  # the app's initial pool (and vodozemac's publish maximum)
MAX_PUBLISHED_ONE_TIME_KEYS: Final = 5000  # vodozemac forgets its oldest keys past 100 x 50
REPLAY_CACHE_SIZE: Final = 1024
_DIGEST_LEN: Final = 16
_ENTRY_LEN: Final = _DIGEST_LEN + CURVE_KEY_LEN


def _session_digest(keys: PrekeyKeys) -> bytes:
    """Names one outbound session: every pre-key message of it carries the same three keys."""
    material = keys.identity_key + keys.base_key + keys.one_time_key
    return hashlib.sha256(b"Pigeon.OlmPrekeySession.v1" + material).digest()[:_DIGEST_LEN]


class OlmAccount:
    """Our Olm account; every mutation must be followed by persisting `to_bytes`."""

    __slots__ = (
        "_bundle",
        "_fallback",
        "_identity",
        "_olm",
        "_published",
        "_replays",
        "_rotated_at_s",
    )

    def __init__(
        self,
        identity: SigningKey,
        olm: vodozemac.Account,
        fallback: tuple[bytes, bytes | None],
        rotated_at_s: float,
    ) -> None:
        self._identity = identity
        self._olm = olm
        self._fallback = fallback
        self._rotated_at_s = rotated_at_s
        self._published: OrderedDict[bytes, None] = OrderedDict()
        self._replays: OrderedDict[bytes, bytes] = OrderedDict()  # digest -> prekey used
        curve = olm.curve25519_key.to_bytes()
        self._bundle = AppIdentityBundle.sign(identity, curve)

    @classmethod
    def create(cls, identity: SigningKey, now_s: float) -> OlmAccount:
        """A fresh Olm account under `identity`, with a fallback key and no one-time keys yet."""
        olm = vodozemac.Account()
        return cls(identity, olm, (_new_fallback(olm), None), now_s)

    @property
    def identity_key(self) -> bytes:
        """Our Ed25519 identity public key."""
        return self._identity.public_key

    def identity_bundle(self) -> AppIdentityBundle:
        """Our signed identity bundle (the Curve25519 key bound to the Ed25519 key)."""
        return self._bundle

    def fallback_prekey_bundle(self) -> AppPrekeyBundle:
        """The bundle of the current fallback key (one_time = false), what a card carries."""
        return AppPrekeyBundle.sign(self._identity, self._bundle, self._fallback[0], one_time=False)

    def publish_one_time_prekeys(self, count: int) -> list[AppPrekeyBundle]:
        """`count` fresh one-time keys, signed; each opens at most one session."""
        if not 0 < count <= self._olm.max_number_of_one_time_keys:
            raise StateMisuse("publish 1 to the account's maximum of one-time keys at a time")
        self._olm.generate_one_time_keys(count)
        keys = [key.to_bytes() for key in self._olm.one_time_keys.values()]
        self._olm.mark_keys_as_published()
        for key in keys:
            self._published[key] = None
        while len(self._published) > MAX_PUBLISHED_ONE_TIME_KEYS:
            self._published.popitem(last=False)
        return [AppPrekeyBundle.sign(self._identity, self._bundle, k, one_time=True) for k in keys]

    @property
    def unused_one_time_keys(self) -> int:
        """How many published one-time keys no session has used yet."""
        return len(self._published)

    def rotate_fallback_if_due(self, now_s: float) -> bool:
        """Rotate the fallback key when `FALLBACK_ROTATION_S` has passed; True if it did."""
        if now_s - self._rotated_at_s < FALLBACK_ROTATION_S:
            return False
        self.rotate_fallback(now_s)
        return True

    def rotate_fallback(self, now_s: float) -> None:
        """A new fallback key; the previous one stays usable, the one before it is retired."""
        self._fallback = (_new_fallback(self._olm), self._fallback[0])
        self._rotated_at_s = now_s
        for digest in [d for d, key in self._replays.items() if self._is_retired(key)]:
            del self._replays[digest]

    def fallback_named(self, name: bytes) -> bytes:
        """Our current or previous fallback key whose `prekey_id` is `name`; raises
        UnknownPrekey if neither is (retired, or never ours)."""
        if len(name) != PREKEY_ID_LEN:
            raise MalformedInput(f"a prekey id is {PREKEY_ID_LEN} bytes")
        for key in self._fallback:
            if key is not None and prekey_id(key) == name:
                return key
        raise UnknownPrekey("no fallback key of ours has this id")

    def _is_retired(self, prekey: bytes) -> bool:
        return prekey not in self._fallback and prekey not in self._published

    def open_outbound(self, peer: AppPrekeyBundle) -> vodozemac.Session:
        """A vodozemac session to a verified peer bundle (the caller verified it)."""
        return self._olm.create_outbound_session(
            vodozemac.Curve25519PublicKey.from_bytes(peer.identity.curve_identity_key),
            vodozemac.Curve25519PublicKey.from_bytes(peer.prekey),
        )

    def open_inbound(
        self, sender_curve_key: bytes, message: OlmMessage
    ) -> tuple[vodozemac.Session, bytes]:
        """The session a pre-key message opens and its plaintext.

        Raises MalformedInput, BundleMismatch (the message is from another Curve25519 key),
        Replayed (this session was opened before), UnknownPrekey, DecryptFailed.
        """
        if message.message_type != MESSAGE_TYPE_PREKEY:
            raise MalformedInput("only a pre-key message opens a session")
        keys = prekey_keys(message.ciphertext)
        if keys.identity_key != sender_curve_key:
            raise BundleMismatch("the pre-key message is from another Curve25519 key")
        digest = _session_digest(keys)
        if digest in self._replays:
            raise Replayed("this pre-key session was opened before")
        one_time = keys.one_time_key in self._published
        if not one_time and keys.one_time_key not in self._fallback:
            raise UnknownPrekey("the pre-key message names no prekey of ours")
        session, plaintext = self._create_inbound(sender_curve_key, message, keys, one_time)
        self._replays[digest] = keys.one_time_key
        while len(self._replays) > REPLAY_CACHE_SIZE:
            self._replays.popitem(last=False)
        return session, plaintext

    def _create_inbound(
        self, sender_curve_key: bytes, message: OlmMessage, keys: PrekeyKeys, one_time: bool
    ) -> tuple[vodozemac.Session, bytes]:
        try:
            prekey_message = vodozemac.AnyOlmMessage.from_parts(
                MESSAGE_TYPE_PREKEY, message.ciphertext
            ).to_pre_key()
        except vodozemac.DecodeException as exc:
            raise MalformedInput("the pre-key message does not decode") from exc
        if prekey_message is None:
            raise MalformedInput("the message is not a pre-key message")
        sender = vodozemac.Curve25519PublicKey.from_bytes(sender_curve_key)
        try:
            session, plaintext = self._olm.create_inbound_session(sender, prekey_message)
        except vodozemac.SessionCreationException as exc:
            if "unknown one-time key" in str(exc):
                self._published.pop(keys.one_time_key, None)  # vodozemac forgot it already
                raise UnknownPrekey("the one-time key is no longer held") from exc
            raise DecryptFailed("the pre-key message does not open a session") from exc
        if one_time:
            del self._published[keys.one_time_key]  # vodozemac removed it too
        return session, plaintext

    def to_bytes(self, pickle_key: bytes) -> bytes:
        """The versioned, sealed state; the identity seed is not in it."""
        current, previous = self._fallback
        body = (
            varint_field(1, STATE_VERSION)
            + bytes_field(2, self.identity_key)
            + bytes_field(3, current)
            + bytes_field(4, previous or b"")
            + varint_field(5, max(0, round(self._rotated_at_s * 1000)))
            + b"".join(bytes_field(6, key) for key in self._published)
            + b"".join(bytes_field(7, d + key) for d, key in self._replays.items())
            + bytes_field(8, self._olm.pickle(pickle_key).encode("ascii"))
        )
        return seal(STATE_LABEL, pickle_key, body)

    @classmethod
    def from_bytes(cls, blob: bytes, pickle_key: bytes, identity: SigningKey) -> OlmAccount:
        """Restore `to_bytes` output; raises MalformedInput, or StateMisuse for another identity."""
        fields = decode_message(
            unseal(STATE_LABEL, pickle_key, blob),
            varints=(1, 5),
            lengths=(2, 3, 4, 8),
            repeated=(6, 7),
        )
        if fields.uint32_field(1) != STATE_VERSION:
            raise MalformedInput("unknown Olm account state version")
        if fields.bytes_field(2) != identity.public_key:
            raise StateMisuse("this Olm account state belongs to another identity")
        try:
            olm = vodozemac.Account.from_pickle(fields.bytes_field(8).decode("ascii"), pickle_key)
        except (vodozemac.PickleException, UnicodeDecodeError) as exc:
            raise MalformedInput("the Olm account pickle does not load") from exc
        keys = [fields.bytes_field(3), *fields.repeated[6]]
        previous = fields.bytes_field(4) or None
        if any(len(key) != CURVE_KEY_LEN for key in keys + ([previous] if previous else [])):
            raise MalformedInput("an Olm account state key is not 32 bytes")
        if any(len(entry) != _ENTRY_LEN for entry in fields.repeated[7]):
            raise MalformedInput("an Olm account replay entry is malformed")
        rotated_at_s = fields.uint64_field(5) / 1000
        account = cls(identity, olm, (keys[0], previous), rotated_at_s)
        account._published = OrderedDict.fromkeys(fields.repeated[6])
        account._replays = OrderedDict(
            (entry[:_DIGEST_LEN], entry[_DIGEST_LEN:]) for entry in fields.repeated[7]
        )
        return account

    def __repr__(self) -> str:
        return "OlmAccount(<secret>)"


class _FallbackKeys(Protocol):
    """What vodozemac's compiled Account has although its type stubs leave it out."""

    def generate_fallback_key(self) -> None: ...

    @property
    def fallback_key(self) -> dict[str, vodozemac.Curve25519PublicKey]: ...


def _new_fallback(olm: vodozemac.Account) -> bytes:
    """Generate a fallback key and read it while vodozemac still reports it (unpublished)."""
    fallback = cast(_FallbackKeys, olm)
    fallback.generate_fallback_key()
    keys = list(fallback.fallback_key.values())
    olm.mark_keys_as_published()
    if len(keys) != 1:
        raise StateMisuse("the Olm account has unpublished keys besides the new fallback")
    return keys[0].to_bytes()
