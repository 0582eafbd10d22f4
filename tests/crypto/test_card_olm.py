"""Version 2 cards: the Olm identity binding and a signed fallback prekey, bound to the card."""

from __future__ import annotations

import pytest
import segno

from pigeon.crypto.app_bundle import AppPrekeyBundle
from pigeon.crypto.card import (
    CARD_DOMAIN,
    CARD_VERSION,
    MAX_CARD_LEN,
    MAX_NAME_LEN,
    MAX_TEXT_LEN,
    ContactCard,
)
from pigeon.crypto.card_kat import FIXED_ALICE_RELAY, FIXED_ALICE_SECRETS
from pigeon.crypto.errors import MalformedInput
from pigeon.crypto.identity import Identity
from pigeon.crypto.olm_account import OlmAccount
from pigeon.crypto.relay_urls import MAX_RELAY_URL_LEN
from pigeon.crypto.signing import SigningKey

ALICE = Identity.from_secrets(*FIXED_ALICE_SECRETS)
ALICE_OLM = OlmAccount.create(SigningKey(FIXED_ALICE_SECRETS[0]), 0.0)
MALLORY_OLM = OlmAccount.create(SigningKey(bytes([7]) * 32), 0.0)


def field(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + len(value).to_bytes(2, "big") + value


def signed(body: bytes) -> bytes:
    return body + field(0xFF, ALICE.sign(CARD_DOMAIN + body))


def test_a_card_with_a_prekey_is_version_2_and_gives_it_back() -> None:
    prekey = ALICE_OLM.fallback_prekey_bundle()
    card = ContactCard.create(ALICE, [FIXED_ALICE_RELAY], "Alice", prekey)
    assert card.version == CARD_VERSION == 2
    assert card.prekey == prekey
    assert ContactCard.from_text(card.to_text()) == card
    assert ContactCard.create(ALICE).version == 1  # no prekey: the pre-Olm shape
    assert ContactCard.create(ALICE).prekey is None


def test_the_largest_version_2_card_fits_the_caps_and_a_qr_code() -> None:
    urls = [f"wss://{c * (MAX_RELAY_URL_LEN - 11)}.org/" for c in "abcd"]
    prekey = ALICE_OLM.fallback_prekey_bundle()
    card = ContactCard.create(ALICE, urls, "n" * MAX_NAME_LEN, prekey)
    assert len(card.to_bytes()) <= MAX_CARD_LEN
    assert len(card.to_text()) <= MAX_TEXT_LEN
    assert segno.make(card.to_text()).mode == "alphanumeric"
    typical = ContactCard.create(ALICE, [FIXED_ALICE_RELAY], "Alice", prekey).to_text()
    assert segno.make(typical).version <= 17


def test_a_prekey_of_another_identity_is_refused() -> None:
    with pytest.raises(MalformedInput, match="another key"):
        ContactCard.create(ALICE, prekey=MALLORY_OLM.fallback_prekey_bundle())


def test_a_prekey_whose_signature_fails_is_refused() -> None:
    good = ALICE_OLM.fallback_prekey_bundle()
    forged = AppPrekeyBundle(good.identity, bytes(range(32)), good.prekey_signature, False)
    header = bytes([2]) + ALICE.bundle().to_bytes()
    fallback = forged.prekey + forged.prekey_signature
    body = header + field(0x04, forged.identity.to_bytes()) + field(0x05, fallback)
    with pytest.raises(MalformedInput, match="signature"):
        ContactCard.from_bytes(signed(body))


@pytest.mark.parametrize("kinds", [(), (0x04,), (0x05,)])
def test_a_version_2_card_carries_both_olm_fields(kinds: tuple[int, ...]) -> None:
    prekey = ALICE_OLM.fallback_prekey_bundle()
    values = {0x04: prekey.identity.to_bytes(), 0x05: prekey.prekey + prekey.prekey_signature}
    body = bytes([2]) + ALICE.bundle().to_bytes()
    body += b"".join(field(kind, values[kind]) for kind in kinds)
    with pytest.raises(MalformedInput):
        ContactCard.from_bytes(signed(body) if kinds else body)
