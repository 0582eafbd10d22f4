"""MailboxHint: signed by the key it names, round trips, every forgery and malformation refused."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.crypto.card import ContactCard
from pigeon.crypto.errors import InvalidSignature, MalformedInput, WeakKey
from pigeon.crypto.identity import Identity
from pigeon.crypto.mailbox_hint import MAX_HINT_LEN, MailboxHint, signed_message
from pigeon.crypto.relay_urls import MAX_RELAY_URL_LEN, encode_relays

ALICE = Identity.from_secrets(bytes(range(32)), bytes(range(32, 64)))
MALLORY = Identity.from_secrets(bytes([7]) * 32, bytes([8]) * 32)
RELAYS = ("wss://relay.example.org/pigeon", "ws://127.0.0.1:8080/v1")
HINT_ERRORS = (MalformedInput, WeakKey, InvalidSignature)
SMALL_ORDER_KEY = bytes([1]) + bytes(31)


def alice_hint() -> MailboxHint:
    return MailboxHint.sign(ALICE.public_key, RELAYS, ALICE.sign)


def test_signed_hint_round_trips() -> None:
    hint = alice_hint()
    assert hint.mailbox_key == ALICE.public_key
    assert hint.relays == RELAYS
    assert MailboxHint.from_bytes(hint.to_bytes()) == hint


def test_the_card_publishes_the_same_hint() -> None:
    card = ContactCard.create(ALICE, relays=RELAYS, name="Alice")
    assert card.mailbox_hint == alice_hint()
    assert b"Alice" not in alice_hint().to_bytes()  # the hint shows no name


def test_largest_hint_fits_the_cap() -> None:
    urls = [f"wss://{c * (MAX_RELAY_URL_LEN - 11)}.org/" for c in "abcd"]
    hint = MailboxHint.sign(ALICE.public_key, urls, ALICE.sign)
    assert len(hint.to_bytes()) == MAX_HINT_LEN


def test_hint_signed_by_another_key_is_refused() -> None:
    relays = encode_relays(RELAYS)
    forged = MALLORY.sign(signed_message(ALICE.public_key, relays))
    with pytest.raises(InvalidSignature):
        MailboxHint.from_parts(ALICE.public_key, relays, forged)


def test_swapped_relays_are_refused() -> None:
    hint = alice_hint()
    other = encode_relays(("wss://evil.example/",))
    with pytest.raises(InvalidSignature):
        MailboxHint.from_parts(hint.mailbox_key, other, hint.signature)


def test_small_order_key_is_refused() -> None:
    relays = encode_relays(RELAYS)
    data = SMALL_ORDER_KEY + len(relays).to_bytes(2) + relays + bytes(64)
    with pytest.raises(WeakKey):
        MailboxHint.from_bytes(data)


@pytest.mark.parametrize("cut", [0, 1, 33, 34, 97])
def test_truncated_hint_is_refused(cut: int) -> None:
    with pytest.raises(MalformedInput):
        MailboxHint.from_bytes(alice_hint().to_bytes()[:cut])


def test_relays_len_must_match() -> None:
    data = bytearray(alice_hint().to_bytes())
    data[33] += 1
    with pytest.raises(MalformedInput, match="relays_len"):
        MailboxHint.from_bytes(bytes(data))


def test_oversized_hint_is_refused_before_parsing() -> None:
    with pytest.raises(MalformedInput, match="bytes"):
        MailboxHint.from_bytes(bytes(MAX_HINT_LEN + 1))


@given(st.data())
def test_any_bit_flip_is_refused(data: st.DataObject) -> None:
    encoded = bytearray(alice_hint().to_bytes())
    bit = data.draw(st.integers(0, len(encoded) * 8 - 1))
    encoded[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(HINT_ERRORS):
        MailboxHint.from_bytes(bytes(encoded))


@given(st.binary(max_size=MAX_HINT_LEN + 8))
def test_random_bytes_raise_only_typed_errors(data: bytes) -> None:
    try:
        hint = MailboxHint.from_bytes(data)
    except HINT_ERRORS:
        return
    assert hint.to_bytes() == data
