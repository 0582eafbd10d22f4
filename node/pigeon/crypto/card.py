"""ContactCard: what one person hands another (QR code or pasted text) to become a contact.

Binary form (at most `MAX_CARD_LEN` bytes):
    version (1 byte: 2 = `CARD_VERSION` with the Olm fields below; 1 without them, as every
    card made before Olm) || IdentityBundle (128) || fields
Each field is type (1) || length (2, big-endian) || value, in strictly ascending type order:
    0x01 RELAYS     one or more (length (1) || URL), ws:// or wss:// mailbox relays
    0x02 NAME       display name, UTF-8
    0x03 HINT_SIGNATURE  the 64-byte signature of the card's `MailboxHint` (present exactly
                    when RELAYS is): strangers may carry the key and relays without the card
    0x04 OLM_IDENTITY    the Olm identity binding (`AppIdentityBundle`, 134 bytes) of the
                    same Ed25519 key: its Curve25519 key signed under `Pigeon.IdentityBinding.v1`
    0x05 FALLBACK_PREKEY the Olm fallback prekey (32) || its `Pigeon.Prekey.v1` signature (64);
                    present exactly when OLM_IDENTITY is; version 2 cards carry both,
                    version 1 cards have them read as unknown future fields
    0x06..0xFE      future fields: an old reader skips them (they stay in `encoded`)
    0xFF SIGNATURE  64-byte Ed25519 signature by the bundle's key over
                    `CARD_DOMAIN || every card byte before this field`; last; required
                    whenever there is another field, forbidden otherwise.
Fields are honoured only if the signature verifies; otherwise the card still parses (its
bundle verified on its own) with no relays and no name, and `unverified_fields_dropped` set.
Text form: `TEXT_PREFIX` + RFC 4648 base32 of the binary form, uppercase, no `=` padding,
which fits the QR alphanumeric mode.
"""

from __future__ import annotations

import base64
import binascii
import logging
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from pigeon.crypto.app_bundle import CURVE_KEY_LEN, AppIdentityBundle, AppPrekeyBundle
from pigeon.crypto.bundle import BUNDLE_LEN, IdentityBundle
from pigeon.crypto.errors import InvalidSignature, MalformedInput
from pigeon.crypto.identity import Identity, handle
from pigeon.crypto.mailbox_hint import MailboxHint
from pigeon.crypto.relay_urls import decode_relays, encode_relays
from pigeon.crypto.signing import SIGNATURE_LEN, verify

_LOGGER = logging.getLogger(__name__)

CARD_VERSION: Final = 2
CARD_VERSION_PRE_OLM: Final = 1  # read still: no Olm fields, prekeys come by request
CARD_DOMAIN: Final = b"Pigeon.ContactCard.v1"
TEXT_PREFIX: Final = "PIGEON:"
FIELD_RELAYS: Final = 0x01
FIELD_NAME: Final = 0x02
FIELD_HINT_SIGNATURE: Final = 0x03
FIELD_OLM_IDENTITY: Final = 0x04
FIELD_FALLBACK_PREKEY: Final = 0x05
FIELD_SIGNATURE: Final = 0xFF
MAX_CARD_LEN: Final = 1280  # room for the Olm fields (236 bytes) beside 4 long relays
MAX_NAME_LEN: Final = 64  # bytes of UTF-8
MAX_TEXT_LEN: Final = 4096  # characters, whitespace included, checked before any decoding

_HEADER_LEN: Final = 1 + BUNDLE_LEN
_FIELD_HEADER_LEN: Final = 3
_BIDI_CONTROLS: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e") | frozenset(
    "\u2066\u2067\u2068\u2069"
)


@dataclass(frozen=True, slots=True)
class ContactCard:
    """A parsed card: a verified bundle plus the fields whose signature verified.

    Build with `create`, `from_bytes` or `from_text`; `encoded` is the exact card, future
    fields included, so a card passed on loses nothing. `mailbox_hint` is set when the card
    names relays (and is None for a card older than the hint).
    """

    version: int
    bundle: IdentityBundle
    relays: tuple[str, ...]
    name: str | None
    unverified_fields_dropped: bool
    encoded: bytes = field(repr=False)
    mailbox_hint: MailboxHint | None = field(default=None, repr=False)
    prekey: AppPrekeyBundle | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls,
        identity: Identity,
        relays: Sequence[str] = (),
        name: str | None = None,
        prekey: AppPrekeyBundle | None = None,
    ) -> ContactCard:
        """Our own signed card, with our Olm fallback `prekey` bundle when given (it must be
        ours); raises MalformedInput on an invalid relay URL, name or prekey."""
        fields: list[tuple[int, bytes]] = []
        if relays:
            fields.append((FIELD_RELAYS, encode_relays(relays)))
        if name is not None:
            fields.append((FIELD_NAME, _encode_name(name)))
        if relays:
            hint = MailboxHint.sign(identity.public_key, relays, identity.sign)
            fields.append((FIELD_HINT_SIGNATURE, hint.signature))
        if prekey is not None:
            fields.append((FIELD_OLM_IDENTITY, prekey.identity.to_bytes()))
            fields.append((FIELD_FALLBACK_PREKEY, prekey.prekey + prekey.prekey_signature))
        version = CARD_VERSION if prekey is not None else CARD_VERSION_PRE_OLM
        body = bytes([version]) + identity.bundle().to_bytes()
        body += b"".join(_encode_field(kind, value) for kind, value in fields)
        if fields:
            body += _encode_field(FIELD_SIGNATURE, identity.sign(CARD_DOMAIN + body))
        return cls.from_bytes(body)

    @classmethod
    def from_bytes(cls, data: bytes) -> ContactCard:
        """Parse and verify a binary card; raises MalformedInput, WeakKey or InvalidSignature."""
        data = bytes(data)
        if not _HEADER_LEN <= len(data) <= MAX_CARD_LEN:
            raise MalformedInput(f"a card is {_HEADER_LEN} to {MAX_CARD_LEN} bytes")
        if data[0] not in (CARD_VERSION, CARD_VERSION_PRE_OLM):
            raise MalformedInput("unsupported card version")
        bundle = IdentityBundle.from_bytes(data[1:_HEADER_LEN])
        fields = dict(_split_fields(data))
        relays = decode_relays(fields[FIELD_RELAYS]) if FIELD_RELAYS in fields else ()
        name = _decode_name(fields[FIELD_NAME]) if FIELD_NAME in fields else None
        hint_signature = fields.get(FIELD_HINT_SIGNATURE)
        if hint_signature is not None and (not relays or len(hint_signature) != SIGNATURE_LEN):
            raise MalformedInput("card hint signature without relays or of the wrong length")
        signature = fields.pop(FIELD_SIGNATURE, None)
        if signature is not None and (not fields or len(signature) != SIGNATURE_LEN):
            raise MalformedInput("card signature is misplaced or the wrong length")
        if fields and not _signature_verifies(bundle, data, signature):
            _LOGGER.debug("card fields dropped: signature missing or invalid")
            return cls(data[0], bundle, (), None, True, data)
        hint = None
        if hint_signature is not None:
            # The card's own signature verified, so a bad hint is its writer's bug: refuse it.
            try:
                hint = MailboxHint.from_parts(
                    bundle.public_key, fields[FIELD_RELAYS], hint_signature
                )
            except InvalidSignature as exc:
                raise MalformedInput("card mailbox hint signature does not verify") from exc
        prekey = _prekey(bundle, fields) if data[0] == CARD_VERSION else None
        if data[0] == CARD_VERSION and prekey is None:
            raise MalformedInput("a version 2 card carries its Olm identity and prekey")
        return cls(data[0], bundle, relays, name, False, data, hint, prekey)

    @classmethod
    def from_text(cls, text: str) -> ContactCard:
        """Parse the text form (whitespace and case ignored); raises as `from_bytes`."""
        if len(text) > MAX_TEXT_LEN:
            raise MalformedInput("card text is too long")
        compact = "".join(text.split())
        if not compact.isascii():  # before upper(), which maps some non-ASCII letters to ASCII
            raise MalformedInput("card text is ASCII")
        compact = compact.upper()
        if not compact.startswith(TEXT_PREFIX):
            raise MalformedInput(f"card text must start with {TEXT_PREFIX}")
        body = compact[len(TEXT_PREFIX) :]
        try:
            data = base64.b32decode(body + "=" * (-len(body) % 8))
        except (binascii.Error, ValueError) as exc:
            raise MalformedInput("card text is not base32") from exc
        if _base32(data) != body:
            raise MalformedInput("card text is not canonical base32")
        return cls.from_bytes(data)

    def to_bytes(self) -> bytes:
        """The binary card exactly as parsed or created."""
        return self.encoded

    def to_text(self) -> str:
        """`PIGEON:` + uppercase unpadded base32: QR alphanumeric mode and paste friendly."""
        return TEXT_PREFIX + _base32(self.encoded)

    @property
    def mailbox_key(self) -> bytes:
        """The Ed25519 public key that addresses this person's relay mailbox."""
        return self.bundle.public_key

    @property
    def handle(self) -> str:
        """The grouped base32 handle of the identity key."""
        return handle(self.bundle.public_key)


def _prekey(bundle: IdentityBundle, fields: dict[int, bytes]) -> AppPrekeyBundle | None:
    """The card's Olm fallback prekey bundle, verified and bound to the card's own key."""
    olm, fallback = fields.get(FIELD_OLM_IDENTITY), fields.get(FIELD_FALLBACK_PREKEY)
    if olm is None and fallback is None:
        return None
    if olm is None or fallback is None or len(fallback) != CURVE_KEY_LEN + SIGNATURE_LEN:
        raise MalformedInput("card Olm identity and fallback prekey go together")
    identity = AppIdentityBundle.from_bytes(olm)
    if identity.identity_key != bundle.public_key:
        raise MalformedInput("card Olm identity is bound to another key")
    prekey = AppPrekeyBundle(
        identity, fallback[:CURVE_KEY_LEN], fallback[CURVE_KEY_LEN:], one_time=False
    )
    try:
        prekey.verify()
    except InvalidSignature as exc:
        raise MalformedInput("card Olm identity or prekey signature does not verify") from exc
    return prekey


def _base32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def _encode_field(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + len(value).to_bytes(2, "big") + value


def _split_fields(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield (type, value) of each field after the header, checking framing and order."""
    offset, previous = _HEADER_LEN, -1
    while offset < len(data):
        if offset + _FIELD_HEADER_LEN > len(data):
            raise MalformedInput("card field header is truncated")
        kind = data[offset]
        end = offset + _FIELD_HEADER_LEN + int.from_bytes(data[offset + 1 : offset + 3], "big")
        if end > len(data):
            raise MalformedInput("card field is truncated")
        if kind <= previous:
            raise MalformedInput("card fields are repeated or out of order")
        yield kind, data[offset + _FIELD_HEADER_LEN : end]
        offset, previous = end, kind


def _signature_verifies(bundle: IdentityBundle, data: bytes, signature: bytes | None) -> bool:
    if signature is None:
        return False
    signed = data[: len(data) - _FIELD_HEADER_LEN - len(signature)]
    try:
        verify(bundle.public_key, CARD_DOMAIN + signed, signature)
    except InvalidSignature:
        return False
    return True


def _encode_name(name: str) -> bytes:
    encoded = name.encode("utf-8")
    _decode_name(encoded)
    return encoded


def _decode_name(value: bytes) -> str:
    if not 1 <= len(value) <= MAX_NAME_LEN:
        raise MalformedInput(f"a name is 1 to {MAX_NAME_LEN} bytes of UTF-8")
    try:
        name = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInput("a name is UTF-8") from exc
    if name != name.strip() or any(_unsafe_char(char) for char in name):
        raise MalformedInput("a name has control characters or outer spaces")
    return name


def _unsafe_char(char: str) -> bool:
    """Controls, line breaks and bidi overrides: they could disguise a name on screen."""
    return unicodedata.category(char) in {"Cc", "Zl", "Zp"} or char in _BIDI_CONTROLS
