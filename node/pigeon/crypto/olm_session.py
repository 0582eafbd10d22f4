"""One end of a Pigeon-app conversation: a vodozemac Olm session tied to a verified identity.

The side whose Ed25519 identity key sorts lower (bytewise) initiates, as the app does: it
opens the session from the peer's verified prekey bundle and sends an `Initiation` (its
identity bundle and the first pre-key message, whose plaintext the app leaves empty). The
other side accepts it only from the contact it expects. Afterwards both ends exchange
protobuf `OlmMessage` payloads; the ratchet, skipped keys and message-key reuse checks are
vodozemac's (its default configuration: libolm-compatible version 1).
"""

from __future__ import annotations

from typing import Final

import vodozemac

from pigeon.crypto.app_bundle import CURVE_KEY_LEN, AppIdentityBundle, AppPrekeyBundle
from pigeon.crypto.errors import (
    BundleMismatch,
    DecryptFailed,
    MalformedInput,
    StateMisuse,
    WrongInitiator,
)
from pigeon.crypto.olm_account import OlmAccount
from pigeon.crypto.olm_state import seal, unseal
from pigeon.crypto.olm_wire import MESSAGE_TYPE_PREKEY, Initiation, OlmMessage, prekey_keys
from pigeon.crypto.protobuf import bytes_field, decode_message, varint_field
from pigeon.crypto.signing import PUBLIC_KEY_LEN

STATE_VERSION: Final = 1
STATE_LABEL: Final = b"Pigeon.OlmSessionState.v1"
ESTABLISHMENT_HELLO: Final = b""  # the app's first plaintext: nothing


def initiates(local_identity_key: bytes, remote_identity_key: bytes) -> bool:
    """Whether the local side starts the session: its Ed25519 key sorts first bytewise."""
    return local_identity_key < remote_identity_key


class OlmSession:
    """An established session; persist `to_bytes` after every encrypt and decrypt."""

    __slots__ = ("_olm", "remote_curve_key", "remote_identity_key")

    def __init__(
        self, olm: vodozemac.Session, remote_identity_key: bytes, remote_curve_key: bytes
    ) -> None:
        self._olm = olm
        self.remote_identity_key = remote_identity_key
        self.remote_curve_key = remote_curve_key

    @classmethod
    def start(
        cls,
        account: OlmAccount,
        peer: AppPrekeyBundle,
        first_plaintext: bytes = ESTABLISHMENT_HELLO,
    ) -> tuple[OlmSession, bytes]:
        """Open a session from `peer`'s bundle; returns it and the encoded `Initiation`.

        Raises InvalidSignature / WeakKey / MalformedInput for a bad bundle, StateMisuse
        when the peer's key sorts first (then the peer initiates) or is our own.
        """
        peer.verify()
        if not initiates(account.identity_key, peer.identity.identity_key):
            raise StateMisuse("the peer's identity key sorts first: the peer initiates")
        olm = account.open_outbound(peer)
        message = _encrypt(olm, first_plaintext)
        initiation = Initiation(account.identity_bundle(), message)
        session = cls(olm, peer.identity.identity_key, peer.identity.curve_identity_key)
        return session, initiation.to_bytes()

    @classmethod
    def accept(
        cls, account: OlmAccount, initiation: bytes, expected_identity_key: bytes
    ) -> tuple[OlmSession, bytes]:
        """The session an `Initiation` from the expected contact opens, and its plaintext.

        Raises MalformedInput, InvalidSignature / WeakKey (binding), BundleMismatch (another
        identity than expected), WrongInitiator, Replayed, UnknownPrekey, DecryptFailed.
        The account changed (a one-time key used, the replay cache grew): persist it.
        """
        parsed = Initiation.from_bytes(initiation)
        parsed.identity.verify()
        if parsed.identity.identity_key != expected_identity_key:
            raise BundleMismatch("the initiation is from another identity than expected")
        if not initiates(parsed.identity.identity_key, account.identity_key):
            raise WrongInitiator("our identity key sorts first: we initiate, not the peer")
        curve = parsed.identity.curve_identity_key
        olm, plaintext = account.open_inbound(curve, parsed.message)
        return cls(olm, parsed.identity.identity_key, curve), plaintext

    @classmethod
    def outbound(cls, account: OlmAccount, peer: AppPrekeyBundle) -> OlmSession:
        """A session to `peer` opened by either side (our node framing: no initiator rule).

        Raises InvalidSignature / WeakKey / MalformedInput for a bad bundle, StateMisuse for
        our own bundle.
        """
        peer.verify()
        if peer.identity.identity_key == account.identity_key:
            raise StateMisuse("a session to ourselves")
        olm = account.open_outbound(peer)
        return cls(olm, peer.identity.identity_key, peer.identity.curve_identity_key)

    @classmethod
    def inbound(
        cls, account: OlmAccount, sender: AppIdentityBundle, message: OlmMessage
    ) -> tuple[OlmSession, bytes]:
        """The session a pre-key message from `sender` opens, and its plaintext.

        Raises InvalidSignature / WeakKey / MalformedInput (binding), BundleMismatch,
        Replayed, UnknownPrekey, DecryptFailed; the account changed: persist it.
        """
        sender.verify()
        olm, plaintext = account.open_inbound(sender.curve_identity_key, message)
        return cls(olm, sender.identity_key, sender.curve_identity_key), plaintext

    def matches(self, message: OlmMessage) -> bool:
        """Whether pre-key `message` belongs to this session (no key agreement needed)."""
        if message.message_type != MESSAGE_TYPE_PREKEY:
            return False
        try:
            keys = prekey_keys(message.ciphertext)
            parsed = vodozemac.AnyOlmMessage.from_parts(MESSAGE_TYPE_PREKEY, message.ciphertext)
        except (MalformedInput, vodozemac.DecodeException):
            return False
        prekey_message = parsed.to_pre_key()
        if keys.identity_key != self.remote_curve_key or prekey_message is None:
            return False
        return self._olm.session_matches(prekey_message)

    def encrypt_message(self, plaintext: bytes) -> OlmMessage:
        """`plaintext` as an Olm message (pre-key until the peer has replied)."""
        return _encrypt(self._olm, plaintext)

    def decrypt_message(self, message: OlmMessage) -> bytes:
        """The plaintext of `message`; raises MalformedInput or DecryptFailed, changing nothing."""
        return self.decrypt(message.to_bytes())

    @property
    def session_id(self) -> str:
        """vodozemac's session id (the same at both ends)."""
        return self._olm.session_id

    def is_same_initiation(self, initiation: bytes) -> bool:
        """Whether `initiation` is a retransmit of the one that opened this session."""
        try:
            parsed = Initiation.from_bytes(initiation)
            keys = prekey_keys(parsed.message.ciphertext)
            message = vodozemac.AnyOlmMessage.from_parts(
                MESSAGE_TYPE_PREKEY, parsed.message.ciphertext
            )
        except (MalformedInput, vodozemac.DecodeException):
            return False
        prekey_message = message.to_pre_key()
        if keys.identity_key != self.remote_curve_key or prekey_message is None:
            return False
        return self._olm.session_matches(prekey_message)

    def encrypt(self, plaintext: bytes) -> bytes:
        """The protobuf `OlmMessage` of `plaintext` (pre-key until the peer has replied)."""
        return _encrypt(self._olm, plaintext).to_bytes()

    def decrypt(self, payload: bytes) -> bytes:
        """The plaintext of a protobuf `OlmMessage`; raises MalformedInput or DecryptFailed."""
        message = OlmMessage.from_bytes(payload)
        try:
            olm_message = vodozemac.AnyOlmMessage.from_parts(
                message.message_type, message.ciphertext
            )
            return self._olm.decrypt(olm_message)
        except vodozemac.DecodeException as exc:
            raise MalformedInput("the Olm message does not decode") from exc
        except vodozemac.OlmDecryptionException as exc:
            raise DecryptFailed("the Olm message does not decrypt") from exc

    def to_bytes(self, pickle_key: bytes) -> bytes:
        """The versioned, sealed session state."""
        body = (
            varint_field(1, STATE_VERSION)
            + bytes_field(2, self.remote_identity_key)
            + bytes_field(3, self.remote_curve_key)
            + bytes_field(4, self._olm.pickle(pickle_key).encode("ascii"))
        )
        return seal(STATE_LABEL, pickle_key, body)

    @classmethod
    def from_bytes(cls, blob: bytes, pickle_key: bytes) -> OlmSession:
        """Restore `to_bytes` output; raises MalformedInput."""
        fields = decode_message(
            unseal(STATE_LABEL, pickle_key, blob), varints=(1,), lengths=(2, 3, 4)
        )
        if fields.uint32_field(1) != STATE_VERSION:
            raise MalformedInput("unknown Olm session state version")
        identity, curve = fields.bytes_field(2), fields.bytes_field(3)
        if len(identity) != PUBLIC_KEY_LEN or len(curve) != CURVE_KEY_LEN:
            raise MalformedInput("an Olm session state key is not 32 bytes")
        try:
            olm = vodozemac.Session.from_pickle(fields.bytes_field(4).decode("ascii"), pickle_key)
        except (vodozemac.PickleException, UnicodeDecodeError) as exc:
            raise MalformedInput("the Olm session pickle does not load") from exc
        return cls(olm, identity, curve)

    def __repr__(self) -> str:
        return "OlmSession(<secret>)"


def _encrypt(olm: vodozemac.Session, plaintext: bytes) -> OlmMessage:
    message_type, ciphertext = olm.encrypt(plaintext).to_parts()
    return OlmMessage(message_type, ciphertext)
