"""Safety numbers: libsignal's published vectors, symmetry, and what changes the number."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.crypto.card import ContactCard
from pigeon.crypto.card_kat import FIXED_ALICE_SECRETS, FIXED_BOB_SECRETS, FIXED_SAFETY_NUMBER
from pigeon.crypto.identity import Identity
from pigeon.crypto.safety import (
    PIGEON_STABLE_ID,
    combine_fingerprints,
    format_safety_number,
    numeric_fingerprint,
    safety_number,
    safety_number_groups,
    safety_numbers_match,
)

# ../shared/vectors/safety_number.md, vector 1 (libsignal fingerprint.rs) and vector 2 (raw keys).
ALICE_33 = bytes.fromhex("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
BOB_33 = bytes.fromhex("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
ALICE_ID, BOB_ID = b"+14152222222", b"+14153333333"
ALICE = Identity.from_secrets(*FIXED_ALICE_SECRETS)
BOB = Identity.from_secrets(*FIXED_BOB_SECRETS)


def test_libsignal_vector_1() -> None:
    alice = numeric_fingerprint(ALICE_33, ALICE_ID)
    bob = numeric_fingerprint(BOB_33, BOB_ID)
    assert alice == "300354477692869396892869876765"
    assert bob == "458257569162576843440918079131"
    expected = "300354477692869396892869876765458257569162576843440918079131"
    assert combine_fingerprints(alice, bob) == combine_fingerprints(bob, alice) == expected


def test_raw_key_vector_2() -> None:
    alice = numeric_fingerprint(ALICE_33[1:], ALICE_ID, iterations=5200)
    bob = numeric_fingerprint(BOB_33[1:], BOB_ID, iterations=5200)
    expected = "059142880471735069831131731564940027731022934467570443017412"
    assert combine_fingerprints(alice, bob) == expected


def test_mismatched_stable_id_changes_the_digits() -> None:
    wrong = numeric_fingerprint(ALICE_33, b"+141512222222")
    assert wrong != numeric_fingerprint(ALICE_33, ALICE_ID)


@pytest.mark.parametrize("iterations", [-1, 0, 1, 1_000_001])
def test_iteration_bounds(iterations: int) -> None:
    with pytest.raises(ValueError, match="iterations"):
        numeric_fingerprint(ALICE_33, ALICE_ID, iterations)


def test_two_iterations_is_the_minimum() -> None:
    assert len(numeric_fingerprint(ALICE_33, ALICE_ID, 2)) == 30


def test_pigeon_number_is_libsignal_over_the_ed25519_key() -> None:
    expected = combine_fingerprints(
        numeric_fingerprint(ALICE.public_key, PIGEON_STABLE_ID),
        numeric_fingerprint(BOB.public_key, PIGEON_STABLE_ID),
    )
    assert safety_number(ALICE.bundle(), BOB.bundle()) == expected == FIXED_SAFETY_NUMBER


def test_cards_and_bundles_give_the_same_number() -> None:
    card_a = ContactCard.create(ALICE, relays=["wss://r.example.org"], name="A")
    assert safety_number(card_a, ContactCard.create(BOB)) == FIXED_SAFETY_NUMBER
    assert safety_number(BOB.bundle(), card_a) == FIXED_SAFETY_NUMBER


def test_noise_key_rotation_keeps_the_number() -> None:
    rotated = Identity.from_secrets(FIXED_ALICE_SECRETS[0], bytes([9]) * 32)
    assert safety_number(rotated.bundle(), BOB.bundle()) == FIXED_SAFETY_NUMBER


def test_a_substituted_identity_changes_the_number() -> None:
    mallory = Identity.from_secrets(bytes([7]) * 32, FIXED_ALICE_SECRETS[1])
    assert safety_number(mallory.bundle(), BOB.bundle()) != FIXED_SAFETY_NUMBER


@settings(max_examples=20, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_symmetric_and_sixty_digits(seed_a: bytes, seed_b: bytes) -> None:
    a = Identity.from_secrets(seed_a, FIXED_ALICE_SECRETS[1]).bundle()
    b = Identity.from_secrets(seed_b, FIXED_BOB_SECRETS[1]).bundle()
    number = safety_number(a, b)
    assert number == safety_number(b, a)
    assert len(number) == 60
    assert number.isascii()
    assert number.isdigit()


def test_match_ignores_layout_but_not_digits() -> None:
    shown = format_safety_number(FIXED_SAFETY_NUMBER)
    assert safety_numbers_match(shown, FIXED_SAFETY_NUMBER)
    assert safety_numbers_match(FIXED_SAFETY_NUMBER, FIXED_SAFETY_NUMBER)
    changed = FIXED_SAFETY_NUMBER[:-1] + str((int(FIXED_SAFETY_NUMBER[-1]) + 1) % 10)
    assert not safety_numbers_match(changed, FIXED_SAFETY_NUMBER)


@pytest.mark.parametrize("other", ["", "1" * 59, "1" * 61, "a" * 60, "\u0661" * 60, "x"])
def test_match_refuses_non_numbers_without_raising(other: str) -> None:
    assert not safety_numbers_match(other, other)
    assert not safety_numbers_match(other, FIXED_SAFETY_NUMBER)


def test_format_is_twelve_groups_of_five() -> None:
    groups = safety_number_groups(FIXED_SAFETY_NUMBER)
    assert len(groups) == 12
    assert all(len(group) == 5 for group in groups)
    assert "".join(groups) == FIXED_SAFETY_NUMBER
    lines = format_safety_number(FIXED_SAFETY_NUMBER).split("\n")
    assert [len(line.split()) for line in lines] == [4, 4, 4]
    assert format_safety_number(FIXED_SAFETY_NUMBER, groups_per_line=12).count(" ") == 11


@pytest.mark.parametrize("bad", ["", "1" * 59, "x" * 60, "\u0661" * 60])
def test_format_refuses_non_numbers(bad: str) -> None:
    with pytest.raises(ValueError, match="60 digits"):
        format_safety_number(bad)
