"""ContactCard: binary and text forms, signed fields, future fields, caps and every typed error."""

import contextlib
import io
import string

import pytest
import segno
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pigeon.crypto.card import (
    CARD_DOMAIN,
    MAX_CARD_LEN,
    MAX_NAME_LEN,
    MAX_TEXT_LEN,
    TEXT_PREFIX,
    ContactCard,
)
from pigeon.crypto.card_kat import FIXED_ALICE_RELAY, FIXED_ALICE_SECRETS
from pigeon.crypto.errors import CryptoError, InvalidSignature, MalformedInput, WeakKey
from pigeon.crypto.identity import Identity
from pigeon.crypto.relay_urls import MAX_RELAY_URL_LEN, MAX_RELAYS

ALICE = Identity.from_secrets(*FIXED_ALICE_SECRETS)
MALLORY = Identity.from_secrets(bytes([7]) * 32, bytes([8]) * 32)
RELAY = FIXED_ALICE_RELAY
QR_ALPHANUMERIC = set(string.digits + string.ascii_uppercase + " $%*+-./:")
CARD_ERRORS = (MalformedInput, WeakKey, InvalidSignature)


def field(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + len(value).to_bytes(2, "big") + value


def relays_value(*urls: str) -> bytes:
    return b"".join(bytes([len(url)]) + url.encode() for url in urls)


def card_bytes(fields: list[tuple[int, bytes]], signer: Identity | None = ALICE) -> bytes:
    """A card of ALICE with raw `fields`, signed by `signer` (None: no signature field)."""
    body = bytes([1]) + ALICE.bundle().to_bytes() + b"".join(field(k, v) for k, v in fields)
    if signer is None:
        return body
    return body + field(0xFF, signer.sign(CARD_DOMAIN + body))


def test_old_card_without_fields_parses() -> None:
    card = ContactCard.from_bytes(bytes([1]) + ALICE.bundle().to_bytes())
    assert card.relays == ()
    assert card.name is None
    assert not card.unverified_fields_dropped
    assert card == ContactCard.create(ALICE)


def test_created_card_honours_its_fields() -> None:
    card = ContactCard.create(ALICE, relays=[RELAY, "ws://127.0.0.1:8080/x"], name="Alice")
    assert card.relays == (RELAY, "ws://127.0.0.1:8080/x")
    assert card.name == "Alice"
    assert card.version == 1
    assert card.bundle == ALICE.bundle()
    assert card.mailbox_key == ALICE.public_key
    assert card.handle == ALICE.handle
    assert not card.unverified_fields_dropped


def hint_signature(relays: bytes) -> bytes:
    """ALICE's mailbox hint signature, made independently with `cryptography`."""
    key = Ed25519PrivateKey.from_private_bytes(FIXED_ALICE_SECRETS[0])
    message = b"Pigeon.MailboxHint.v1" + ALICE.public_key + len(relays).to_bytes(2) + relays
    return key.sign(message)


def test_hand_built_card_matches_create() -> None:
    relays = relays_value(RELAY)
    built = card_bytes([(0x01, relays), (0x02, b"Alice"), (0x03, hint_signature(relays))])
    card = ContactCard.create(ALICE, relays=[RELAY], name="Alice")
    assert card.to_bytes() == built
    assert card.mailbox_hint is not None
    assert card.mailbox_hint.mailbox_key == ALICE.public_key
    assert card.mailbox_hint.relays == (RELAY,)


def test_card_without_relays_has_no_hint() -> None:
    assert ContactCard.create(ALICE, name="Alice").mailbox_hint is None


def test_signed_card_with_a_bad_hint_signature_is_refused() -> None:
    relays = relays_value(RELAY)
    bad = bytearray(hint_signature(relays))
    bad[0] ^= 1
    with pytest.raises(MalformedInput, match="hint"):
        ContactCard.from_bytes(card_bytes([(0x01, relays), (0x03, bytes(bad))]))


@pytest.mark.parametrize("value", [b"", bytes(63), bytes(65)])
def test_hint_signature_of_the_wrong_length_is_refused(value: bytes) -> None:
    with pytest.raises(MalformedInput, match="hint"):
        ContactCard.from_bytes(card_bytes([(0x01, relays_value(RELAY)), (0x03, value)]))


def test_hint_signature_without_relays_is_refused() -> None:
    with pytest.raises(MalformedInput, match="hint"):
        ContactCard.from_bytes(card_bytes([(0x02, b"Al"), (0x03, bytes(64))]))


def test_unsigned_card_drops_its_hint_with_its_relays() -> None:
    relays = relays_value(RELAY)
    data = card_bytes([(0x01, relays), (0x03, hint_signature(relays))], signer=None)
    card = ContactCard.from_bytes(data)
    assert card.unverified_fields_dropped
    assert card.mailbox_hint is None


url_strategy = st.builds(
    "{}://{}{}".format,
    st.sampled_from(["ws", "wss"]),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?(\.[a-z]{2,10}){0,3}", fullmatch=True),
    st.from_regex(r"(:[1-9][0-9]{0,3})?(/[a-zA-Z0-9._~-]{0,40}){0,3}", fullmatch=True),
)
name_strategy = st.none() | st.text(
    st.characters(
        exclude_categories=("Cc", "Cs", "Zl", "Zp", "Zs"),
        exclude_characters="\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    ),
    min_size=1,
    max_size=16,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(url_strategy, max_size=MAX_RELAYS, unique=True), name_strategy)
def test_binary_and_text_round_trip(relays: list[str], name: str | None) -> None:
    card = ContactCard.create(ALICE, relays=relays, name=name)
    assert card.relays == tuple(relays)
    assert card.name == name
    assert ContactCard.from_bytes(card.to_bytes()) == card
    text = card.to_text()
    assert ContactCard.from_text(text) == card
    assert set(text) <= QR_ALPHANUMERIC


def test_text_is_qr_alphanumeric_and_small() -> None:
    typical = ContactCard.create(ALICE, relays=[RELAY], name="Alice").to_text()
    assert typical.startswith(TEXT_PREFIX)
    qr = segno.make(typical)
    assert qr.mode == "alphanumeric"
    assert qr.version <= 12
    assert segno.make(ContactCard.create(ALICE).to_text()).version <= 7


def test_text_tolerates_case_and_line_breaks() -> None:
    text = ContactCard.create(ALICE, relays=[RELAY]).to_text()
    mangled = "  " + "\n".join(text[i : i + 40] for i in range(0, len(text), 40)).lower() + "\n"
    assert ContactCard.from_text(mangled) == ContactCard.from_text(text)


def test_largest_card_fits_the_caps() -> None:
    urls = [f"wss://{c * (MAX_RELAY_URL_LEN - 11)}.org/" for c in "abcd"]
    assert {len(url) for url in urls} == {MAX_RELAY_URL_LEN}
    card = ContactCard.create(ALICE, relays=urls, name="n" * MAX_NAME_LEN)
    assert len(card.to_bytes()) <= MAX_CARD_LEN
    assert len(card.to_text()) <= MAX_TEXT_LEN
    assert ContactCard.from_text(card.to_text()) == card


# --- signed fields -------------------------------------------------------------------------


def test_relays_signed_by_another_key_are_not_honoured() -> None:
    card = ContactCard.from_bytes(card_bytes([(0x01, relays_value(RELAY))], signer=MALLORY))
    assert card.relays == ()
    assert card.unverified_fields_dropped
    assert card.bundle == ALICE.bundle()


def test_unsigned_relays_and_name_are_not_honoured() -> None:
    card = ContactCard.from_bytes(card_bytes([(1, relays_value(RELAY)), (2, b"Eve")], None))
    assert card.relays == ()
    assert card.name is None
    assert card.unverified_fields_dropped


def test_relay_swapped_after_signing_is_not_honoured() -> None:
    good = card_bytes([(0x01, relays_value("wss://relay.example.org/a"))])
    evil = good.replace(b"relay.example.org/a", b"relay.example.org/b")
    card = ContactCard.from_bytes(evil)
    assert card.relays == ()
    assert card.unverified_fields_dropped


@pytest.mark.parametrize("kind", [0x04, 0x10, 0x80, 0xFE])
def test_unknown_signed_fields_are_skipped(kind: int) -> None:
    data = card_bytes([(0x01, relays_value(RELAY)), (0x02, b"Al"), (kind, b"\x00future\xff")])
    assert ContactCard.from_bytes(data).mailbox_hint is None  # a card of before the hint
    card = ContactCard.from_bytes(data)
    assert card.relays == (RELAY,)
    assert card.name == "Al"
    assert not card.unverified_fields_dropped
    assert card.to_bytes() == data  # passed on intact
    assert ContactCard.from_text(card.to_text()) == card


@given(st.lists(st.tuples(st.integers(4, 0xFE), st.binary(max_size=40)), max_size=5))
def test_any_unknown_fields_are_skipped(extra: list[tuple[int, bytes]]) -> None:
    kinds = sorted({kind for kind, _ in extra})
    values = dict(extra)
    data = card_bytes([(0x01, relays_value(RELAY))] + [(k, values[k]) for k in kinds])
    assert ContactCard.from_bytes(data).relays == (RELAY,)


def test_unknown_unsigned_field_is_flagged() -> None:
    card = ContactCard.from_bytes(card_bytes([(0x20, b"x")], signer=None))
    assert card.unverified_fields_dropped


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_bit_flip_fails_or_drops_the_signed_fields(data: st.DataObject) -> None:
    original = ContactCard.create(ALICE, relays=[RELAY], name="Alice")
    encoded = bytearray(original.to_bytes())
    bit = data.draw(st.integers(0, len(encoded) * 8 - 1))
    encoded[bit // 8] ^= 1 << (bit % 8)
    try:
        card = ContactCard.from_bytes(bytes(encoded))
    except CARD_ERRORS:
        return
    assert card.unverified_fields_dropped
    assert card.relays == ()
    assert card.name is None
    assert card.bundle == original.bundle


# --- malformed binary cards ------------------------------------------------------------------

HEADER = bytes([1]) + ALICE.bundle().to_bytes()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        HEADER[:-1],
        bytes([0]) + HEADER[1:],
        bytes([2]) + HEADER[1:],
        HEADER + b"\x01",
        HEADER + b"\x01\x00",
        HEADER + b"\x01\x00\x05abcd",
        HEADER.ljust(MAX_CARD_LEN + 1, b"\x00"),
    ],
    ids=["empty", "short", "version0", "version2", "tlv1", "tlv2", "truncated", "too-long"],
)
def test_malformed_framing(data: bytes) -> None:
    with pytest.raises(MalformedInput):
        ContactCard.from_bytes(data)


def test_fields_out_of_order_or_repeated_are_malformed() -> None:
    for fields in ([(2, b"A"), (1, relays_value(RELAY))], [(2, b"A"), (2, b"B")]):
        with pytest.raises(MalformedInput):
            ContactCard.from_bytes(card_bytes(fields))


def test_signature_alone_or_of_wrong_length_is_malformed() -> None:
    with pytest.raises(MalformedInput):
        ContactCard.from_bytes(HEADER + field(0xFF, bytes(64)))
    with pytest.raises(MalformedInput):
        ContactCard.from_bytes(HEADER + field(0x02, b"A") + field(0xFF, bytes(63)))


def test_bad_bundle_inside_a_card_is_a_typed_error() -> None:
    tampered = bytearray(HEADER)
    tampered[100] ^= 1
    with pytest.raises(InvalidSignature):
        ContactCard.from_bytes(bytes(tampered))


BAD_URLS = [
    "",
    "http://relay.example.org",
    "https://relay.example.org",
    "wss://",
    "wss:///path",
    "wss://user@relay.example.org",
    "wss://relay.example.org/#frag",
    "wss://relay example.org",
    "wss://relé.example.org",
    "wss://relay.example.org:99999",
    "wss://[::1",
    "wss://" + "a" * MAX_RELAY_URL_LEN,
    "relay.example.org",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_relay_url_is_malformed(url: str) -> None:
    with pytest.raises(MalformedInput):
        ContactCard.create(ALICE, relays=[url])
    raw = bytes([len(url.encode())]) + url.encode() if url else b"\x00"
    with pytest.raises(MalformedInput):
        ContactCard.from_bytes(card_bytes([(0x01, raw)]))


@pytest.mark.parametrize(
    "value",
    [
        b"",
        relays_value(RELAY, RELAY),
        relays_value(*(f"wss://r{i}.org" for i in range(MAX_RELAYS + 1))),
        relays_value(RELAY)[:-1],
        b"\x05wss:/",
    ],
    ids=["empty", "repeated", "too-many", "truncated", "too-short-url"],
)
def test_bad_relay_list_is_malformed(value: bytes) -> None:
    with pytest.raises(MalformedInput):
        ContactCard.from_bytes(card_bytes([(0x01, value)]))


@pytest.mark.parametrize(
    "name",
    ["", " Alice", "Alice ", "Al\nice", "Al\x00ice", "Al\u202eice", "Al\u2028ice", "é" * 33],
)
def test_bad_name_is_malformed(name: str) -> None:
    with pytest.raises(MalformedInput):
        ContactCard.create(ALICE, name=name)
    with pytest.raises(MalformedInput):
        ContactCard.from_bytes(card_bytes([(0x02, name.encode())]))


def test_name_that_is_not_utf8_is_malformed() -> None:
    with pytest.raises(MalformedInput):
        ContactCard.from_bytes(card_bytes([(0x02, b"\xff\xfe")]))


# --- malformed text --------------------------------------------------------------------------


def _good_text() -> str:
    return ContactCard.create(ALICE, relays=[RELAY]).to_text()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "PIGEON:",
        "PIGEON",
        "CARD:" + _good_text()[len(TEXT_PREFIX) :],
        _good_text() + "=",
        _good_text()[:-1] + "1",
        _good_text()[:-1] + "é",
        _good_text().replace("I", "\u0131", 1),
        _good_text() + "A",
        "PIGEON:" + "A" * 3000,
        " " * (MAX_TEXT_LEN + 1),
    ],
    ids=[
        "empty",
        "prefix-only",
        "no-colon",
        "other-prefix",
        "padding",
        "digit-1",
        "non-ascii",
        "dotless-i",
        "extra-char",
        "too-long-card",
        "too-long-text",
    ],
)
def test_malformed_text(text: str) -> None:
    with pytest.raises(MalformedInput):
        ContactCard.from_text(text)


def test_non_canonical_base32_is_malformed() -> None:
    text = ContactCard.create(ALICE).to_text()  # 129 bytes: the last character has 3 spare bits
    alphabet = string.ascii_uppercase + "234567"
    spare_bit_set = alphabet[alphabet.index(text[-1]) | 1]
    assert spare_bit_set != text[-1]
    with pytest.raises(MalformedInput):
        ContactCard.from_text(text[:-1] + spare_bit_set)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=600))
def test_any_text_parses_or_fails_with_a_typed_error(text: str) -> None:
    with contextlib.suppress(CryptoError):
        ContactCard.from_text(text)


def test_qr_code_decodes_back_to_the_card() -> None:
    card = ContactCard.create(ALICE, relays=[RELAY], name="Alice")
    png = io.BytesIO()
    segno.make(card.to_text()).save(png, kind="png", scale=4)
    png.seek(0)
    decoded = zxingcpp.read_barcodes(Image.open(png))
    assert [ContactCard.from_text(result.text) for result in decoded] == [card]
