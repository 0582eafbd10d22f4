"""Properties of the app's codecs: round trips, canonical bytes, and only typed errors from
outside bytes (protobuf, bundles, Olm framing, card, link, plaintexts)."""

from __future__ import annotations

import contextlib
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.crypto.app_bundle import AppIdentityBundle, AppPrekeyBundle
from pigeon.crypto.app_card import AppContactCard, sanitize_display_name
from pigeon.crypto.app_plaintext import (
    AppMessage,
    EphemeralControl,
    ReactionControl,
    TransportControl,
    decode_ack,
    decode_app_message,
    decode_control,
    encode_ack,
    encode_app_message,
    encode_control,
)
from pigeon.crypto.app_safety import app_safety_number, format_app_safety_number
from pigeon.crypto.errors import InvalidSignature, MalformedInput, WeakKey
from pigeon.crypto.olm_wire import Initiation, OlmMessage, prekey_keys
from pigeon.crypto.protobuf import (
    bytes_field,
    decode_message,
    encode_varint,
    iter_fields,
    varint_field,
)
from pigeon.crypto.signing import SigningKey

ALICE = SigningKey(bytes(range(32)))
MALLORY = SigningKey(bytes([9]) * 32)
CARD_ERRORS = (MalformedInput, InvalidSignature, WeakKey)
keys32 = st.binary(min_size=32, max_size=32)
urls = st.lists(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40),
    max_size=4,
)


def _bundle() -> AppIdentityBundle:
    return AppIdentityBundle.sign(ALICE, bytes([5]) * 32)


@given(st.integers(0, 2**64 - 1), st.integers(1, 2**29 - 1))
def test_varints_round_trip(value: int, number: int) -> None:
    fields = list(iter_fields(encode_varint(number << 3) + encode_varint(value)))
    assert [(f.number, f.wire_type, f.value) for f in fields] == [(number, 0, value)]


@given(st.binary(max_size=512))
def test_random_protobuf_raises_only_malformed_input(data: bytes) -> None:
    with contextlib.suppress(MalformedInput):
        decode_message(data, varints=(1, 4), lengths=(2, 3), repeated=(5,))


def test_non_canonical_protobuf_is_refused() -> None:
    refused = [
        b"\x08" + b"\x80" * 10 + b"\x01",  # varint longer than 10 bytes
        b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f",  # above 2^64 - 1
        b"\x0b",  # a group
        b"\x12\x05ab",  # truncated
        b"\x08\x01\x08\x01",  # singular field twice
        b"\x10\x01",  # a known delimited field as a varint
    ]
    for data in refused:
        with pytest.raises(MalformedInput):
            decode_message(data, varints=(1,), lengths=(2,))
    with pytest.raises(MalformedInput):
        decode_message(b"\x08\x02", varints=(1,)).bool_field(1)
    with pytest.raises(MalformedInput):
        decode_message(b"\x08\x80\x80\x80\x80\x10", varints=(1,)).uint32_field(1)
    unknown = b"\x39" + bytes(8) + b"\x45" + bytes(4) + b"\x58\x07" + b"\x62\x00"
    assert decode_message(unknown + b"\x08\x03", varints=(1,)).uint32_field(1) == 3


@given(keys32, keys32, st.binary(min_size=64, max_size=64), keys32, st.booleans())
def test_bundles_round_trip_canonically(
    ed: bytes, curve: bytes, sig: bytes, prekey: bytes, one_time: bool
) -> None:
    identity = AppIdentityBundle(ed, curve, sig)
    assert len(identity.to_bytes()) == 134
    assert AppIdentityBundle.from_bytes(identity.to_bytes()) == identity
    bundle = AppPrekeyBundle(identity, prekey, sig, one_time)
    assert AppPrekeyBundle.from_bytes(bundle.to_bytes()) == bundle


@given(st.binary(max_size=400))
def test_random_bundle_bytes_raise_only_typed_errors(data: bytes) -> None:
    for parse in (AppIdentityBundle.parse_verified, AppPrekeyBundle.parse_verified):
        with contextlib.suppress(CARD_ERRORS):
            parse(data)


@given(st.sampled_from([0, 1]), st.binary(min_size=1, max_size=300))
def test_olm_messages_and_initiations_round_trip(message_type: int, body: bytes) -> None:
    message = OlmMessage(message_type, b"\x03" + body)
    assert OlmMessage.from_bytes(message.to_bytes()) == message
    if message_type == 0:
        initiation = Initiation(_bundle(), message)
        assert Initiation.from_bytes(initiation.to_bytes()) == initiation


@given(st.binary(max_size=600))
def test_random_olm_framing_raises_only_malformed_input(data: bytes) -> None:
    for parse in (OlmMessage.from_bytes, Initiation.from_bytes, prekey_keys):
        with contextlib.suppress(MalformedInput):
            parse(data)


def test_an_initiation_must_carry_a_prekey_message() -> None:
    normal = Initiation(_bundle(), OlmMessage(1, b"\x03abc")).to_bytes()
    with pytest.raises(MalformedInput):
        Initiation.from_bytes(normal)
    for kind in (2, 7):
        with pytest.raises(MalformedInput):
            OlmMessage.from_bytes(varint_field(1, kind) + bytes_field(2, b"\x03x"))


@settings(max_examples=60)
@given(st.text(max_size=80), urls, st.booleans())
def test_cards_round_trip_through_text_and_link(name: str, relays: list[str], prekey: bool) -> None:
    bundle = _bundle()
    prekey_bundle = AppPrekeyBundle.sign(ALICE, bundle, bytes([6]) * 32, one_time=False)
    card = AppContactCard.build(ALICE, bundle, name, relays, prekey_bundle if prekey else None)
    for form in (card.to_text(), card.to_link()):
        assert AppContactCard.from_text(form) == card
    assert "+" not in card.to_link()
    assert "/" not in card.to_link()[len("pigeon://") :]


@settings(max_examples=40)
@given(urls.filter(bool))
def test_relays_signed_by_another_key_are_dropped(relays: list[str]) -> None:
    bundle = _bundle()
    forged = AppContactCard(
        bundle, "x", tuple(relays), MALLORY.sign(b"\n".join(r.encode() for r in relays)), None
    )
    parsed = AppContactCard.from_bytes(forged.to_bytes())
    assert parsed.relay_urls == ()
    assert parsed.relays_dropped


def test_a_prekey_bundle_of_another_identity_is_dropped() -> None:
    bundle = _bundle()
    other = AppIdentityBundle.sign(MALLORY, bytes([7]) * 32)
    foreign = AppPrekeyBundle.sign(MALLORY, other, bytes([6]) * 32, one_time=False)
    card = AppContactCard.build(ALICE, bundle, "x", [], foreign)
    parsed = AppContactCard.from_text(card.to_text())
    assert parsed.prekey_bundle is None
    assert parsed.prekey_dropped
    assert parsed.relays_dropped is False


def test_a_card_needs_version_3_and_a_verified_identity() -> None:
    card = AppContactCard.build(ALICE, _bundle(), "x", [], None).to_bytes()
    with pytest.raises(MalformedInput):
        AppContactCard.from_bytes(b"\x08\x02" + card[2:])
    sig = _bundle().binding_signature
    bad = AppIdentityBundle(ALICE.public_key, bytes([5]) * 32, bytes([sig[0] ^ 1]) + sig[1:])
    with pytest.raises(InvalidSignature):
        AppContactCard.from_bytes(b"\x08\x03" + bytes_field(2, bad.to_bytes()))
    for text in ("pigeon://contact?card=not-a-card", "pigeon://contact?x=1", "@@@", ""):
        with pytest.raises(CARD_ERRORS):
            AppContactCard.from_text(text)


@given(st.text(max_size=300))
def test_random_card_text_raises_only_typed_errors(text: str) -> None:
    for candidate in (text, "pigeon://contact?card=" + text):
        with contextlib.suppress(CARD_ERRORS):
            AppContactCard.from_text(candidate)


def test_display_names_are_sanitised_as_the_app_does() -> None:
    assert sanitize_display_name("Ada\u202e\nLove\u200dlace\x07 ") == "Ada Lovelace"
    assert len(sanitize_display_name("x" * 200)) == 64


texts = st.text(max_size=200)


@given(st.uuids(), texts, st.none() | texts, st.none() | st.floats(978307200, 4e9))
def test_app_messages_round_trip(
    message_id: uuid.UUID, text: str, snippet: str | None, sent: float | None
) -> None:
    message = AppMessage(message_id, text, snippet, sent)
    decoded = decode_app_message(encode_app_message(message), arrived_at_unix_s=5e9)
    clamped = None if snippet is None else snippet.replace("\n", " ")[:80]
    assert decoded == AppMessage(message_id, text, clamped, sent)


def test_app_message_clamps_and_refusals() -> None:
    message_id = "E621E1F8-C36C-495A-93FC-0C247A3E6E5F"
    late = f'{{"id":"{message_id.lower()}","text":"t","sentAt":1e9,"x":[1]}}'.encode()
    assert decode_app_message(late, arrived_at_unix_s=1000.0).sent_at_unix_s == 1000.0
    refused = [
        b"",
        b"not json",
        b"[]",
        f'{{"id":"{message_id}"}}'.encode(),
        f'{{"id":"{message_id}","text":1}}'.encode(),
        b'{"id":"not-a-uuid","text":"t"}',
        f'{{"id":"{message_id}","text":"t","sentAt":true}}'.encode(),
        f'{{"id":"{message_id}","text":"t","sentAt":NaN}}'.encode(),
        f'{{"id":"{message_id}","text":"t","sentAt":1e999}}'.encode(),
        f'{{"id":"{message_id}","text":"t","text":"u"}}'.encode(),
        f'{{"id":"{message_id}","text":"t","replySnippet":3}}'.encode(),
        b"\xff",
    ]
    for data in refused:
        with pytest.raises(MalformedInput):
            decode_app_message(data, arrived_at_unix_s=2e9)


@given(st.binary(max_size=300))
def test_random_plaintexts_raise_only_malformed_input(data: bytes) -> None:
    for parse in (decode_ack, decode_control, lambda d: decode_app_message(d, 2e9)):
        with contextlib.suppress(MalformedInput):
            parse(data)


@given(st.uuids(), st.none() | st.text(min_size=1, max_size=8), st.booleans())
def test_acks_and_controls_round_trip(message_id: uuid.UUID, emoji: str | None, on: bool) -> None:
    assert decode_ack(encode_ack(message_id)).message_id == message_id
    for control in (
        EphemeralControl(on),
        TransportControl(on),
        ReactionControl(message_id, emoji),
    ):
        assert decode_control(encode_control(control)) == control
    assert decode_control(b"\x09anything") is None
    with pytest.raises(MalformedInput):
        decode_control(b"\x01\x01\x01")


@settings(max_examples=10)
@given(keys32, keys32)
def test_safety_numbers_are_symmetric_and_shaped(a: bytes, b: bytes) -> None:
    digits = app_safety_number(a, b)
    assert digits == app_safety_number(b, a)
    assert len(digits) == 60
    assert digits.isdigit()
    assert len(format_app_safety_number(digits).split(" ")) == 12
