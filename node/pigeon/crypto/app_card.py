"""The Pigeon app's contact card, version 3, and its link form.

Text: standard base64 (padded) of protobuf ContactCard {1: version = 3, 2: IdentityBundle,
3: name (string), 4: relay_urls (repeated string), 5: relay_signature (bytes),
6: prekey_bundle (bytes: an encoded PrekeyBundle)}. Link: `pigeon://contact?card=` and the
same bytes in base64url without padding. A reader also takes base64url or unpadded text.
The card parses only if its identity bundle's binding verifies. The relay URLs are honoured
only if `relay_signature` is the identity key's Ed25519 signature over the URLs joined by
"\n" (no prefix) and every URL is printable ASCII; otherwise all are dropped. The prekey
bundle is honoured only if it verifies and carries the card's own identity bundle; otherwise
it is dropped. Dropping is reported, never silent.
"""

from __future__ import annotations

import binascii
import unicodedata
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from pigeon.crypto.app_bundle import AppIdentityBundle, AppPrekeyBundle
from pigeon.crypto.errors import InvalidSignature, MalformedInput, WeakKey
from pigeon.crypto.protobuf import bytes_field, decode_message, decode_string, varint_field
from pigeon.crypto.signing import SigningKey, verify

CARD_VERSION: Final = 3
LINK_PREFIX: Final = "pigeon://contact?card="
LINK_SCHEME: Final = "pigeon"
LINK_HOST: Final = "contact"
MAX_CARD_TEXT_LEN: Final = 16 * 1024  # characters, checked before any decoding
MAX_DISPLAY_NAME_LEN: Final = 64  # the app's DisplayName.maxLength (we count code points)


def relay_payload(urls: Sequence[str]) -> bytes:
    """The bytes the relay signature covers: the URLs joined by a newline, UTF-8."""
    return "\n".join(urls).encode("utf-8")


def _url_is_plain(url: str) -> bool:
    return bool(url) and all("!" <= char <= "~" for char in url)


@dataclass(frozen=True, slots=True)
class AppContactCard:
    """A parsed or built card; only verified relays and prekey bundle are kept."""

    identity: AppIdentityBundle
    name: str
    relay_urls: tuple[str, ...]
    relay_signature: bytes
    prekey_bundle: AppPrekeyBundle | None
    relays_dropped: bool = False
    prekey_dropped: bool = False

    @classmethod
    def build(
        cls,
        identity: SigningKey,
        bundle: AppIdentityBundle,
        name: str,
        relay_urls: Sequence[str],
        prekey_bundle: AppPrekeyBundle | None,
    ) -> AppContactCard:
        """Our card; like the app, the relay list is signed even when empty."""
        urls = tuple(relay_urls)
        if not all(_url_is_plain(url) for url in urls):
            raise MalformedInput("a relay URL is printable ASCII without spaces")
        signature = identity.sign(relay_payload(urls))
        return cls(bundle, name, urls, signature, prekey_bundle)

    def to_bytes(self) -> bytes:
        """The canonical protobuf encoding."""
        prekey = self.prekey_bundle.to_bytes() if self.prekey_bundle else b""
        return (
            varint_field(1, CARD_VERSION)
            + bytes_field(2, self.identity.to_bytes())
            + bytes_field(3, self.name.encode("utf-8"))
            + b"".join(
                bytes_field(4, url.encode("utf-8"), keep_empty=True) for url in self.relay_urls
            )
            + bytes_field(5, self.relay_signature)
            + bytes_field(6, prekey)
        )

    def to_text(self) -> str:
        """The QR form: standard base64 with padding."""
        return binascii.b2a_base64(self.to_bytes(), newline=False).decode("ascii")

    def to_link(self) -> str:
        """The share link: base64url, no padding."""
        text = self.to_text().replace("+", "-").replace("/", "_").rstrip("=")
        return LINK_PREFIX + text

    @property
    def display_name(self) -> str:
        """The name as the app shows it: format and control characters gone, spaces collapsed."""
        return sanitize_display_name(self.name)

    @classmethod
    def from_bytes(cls, data: bytes) -> AppContactCard:
        """Parse protobuf bytes; raises MalformedInput, InvalidSignature or WeakKey."""
        message = decode_message(data, varints=(1,), lengths=(2, 3, 5, 6), repeated=(4,))
        if message.uint32_field(1) != CARD_VERSION:
            raise MalformedInput("not a version 3 contact card")
        if not message.has(2):
            raise MalformedInput("a contact card has no identity")
        identity = AppIdentityBundle.parse_verified(message.bytes_field(2))
        name = message.string_field(3)
        urls = tuple(decode_string(url) for url in message.repeated[4])
        signature = message.bytes_field(5)
        relays_ok = _relays_verify(identity, urls, signature)
        prekey = _honoured_prekey(identity, message.bytes_field(6))
        return cls(
            identity,
            name,
            urls if relays_ok else (),
            signature if relays_ok else b"",
            prekey,
            relays_dropped=bool(urls) and not relays_ok,
            prekey_dropped=bool(message.bytes_field(6)) and prekey is None,
        )

    @classmethod
    def from_text(cls, text: str) -> AppContactCard:
        """Parse a scanned or pasted card or a share link; raises as `from_bytes`."""
        if len(text) > MAX_CARD_TEXT_LEN:
            raise MalformedInput("contact card text is too long")
        trimmed = text.strip()
        payload = _link_payload(trimmed)
        return cls.from_bytes(_decode_base64(trimmed if payload is None else payload))


def _relays_verify(identity: AppIdentityBundle, urls: tuple[str, ...], signature: bytes) -> bool:
    if not signature or not all(_url_is_plain(url) for url in urls):
        return False
    try:
        verify(identity.identity_key, relay_payload(urls), signature)
    except (InvalidSignature, MalformedInput, WeakKey):
        return False
    return True


def _honoured_prekey(identity: AppIdentityBundle, encoded: bytes) -> AppPrekeyBundle | None:
    if not encoded:
        return None
    try:
        bundle = AppPrekeyBundle.parse_verified(encoded)
    except (InvalidSignature, MalformedInput, WeakKey):
        return None
    return bundle if bundle.identity == identity else None


def _link_payload(text: str) -> str | None:
    """The `card` query value of a `pigeon://contact` link, or None when `text` is no link."""
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() != LINK_SCHEME or (parts.hostname or "") != LINK_HOST:
        return None
    for item in parts.query.split("&"):
        name, _, value = item.partition("=")
        if urllib.parse.unquote(name) == "card":
            return urllib.parse.unquote(value)  # no "+" to space: the app does not form-decode
    raise MalformedInput("a contact link has no card")


def _decode_base64(text: str) -> bytes:
    standard = text.replace("-", "+").replace("_", "/")
    standard += "=" * (-len(standard) % 4)
    try:
        return binascii.a2b_base64(standard.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise MalformedInput("contact card is not base64") from exc


def sanitize_display_name(raw: str) -> str:
    """The app's display-name hygiene: no format (Cf) or non-space control characters."""
    kept = "".join(
        char
        for char in raw
        if unicodedata.category(char) != "Cf"
        and not (unicodedata.category(char) == "Cc" and not char.isspace())
    )
    return " ".join(kept.split())[:MAX_DISPLAY_NAME_LEN]
