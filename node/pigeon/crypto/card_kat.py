"""Known-answer checks of identity, bundle, card, safety number and padding for `pigeon selftest`.

Each check returns when every answer matches and raises otherwise. The safety number answer
is libsignal's published vector; the bundle and card answers are pinned from this code (Ed25519
is deterministic) and cross-checked against `cryptography` in the tests.
"""

from __future__ import annotations

import hashlib
from typing import Final

from pigeon.crypto.bundle import IdentityBundle
from pigeon.crypto.card import ContactCard
from pigeon.crypto.errors import InvalidSignature, MalformedInput, WeakKey
from pigeon.crypto.identity import Identity
from pigeon.crypto.padding import BLOCK_LEN, pad, unpad
from pigeon.crypto.safety import combine_fingerprints, numeric_fingerprint, safety_number

# libsignal rust/protocol/src/fingerprint.rs, fingerprint_test_v1 (see docs/protocol.md).
_SIGNAL_ALICE_KEY: Final = bytes.fromhex(
    "0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868"
)
_SIGNAL_BOB_KEY: Final = bytes.fromhex(
    "05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b"
)
_SIGNAL_DISPLAYABLE: Final = "300354477692869396892869876765458257569162576843440918079131"

FIXED_ALICE_SECRETS: Final = (bytes(range(32)), bytes(range(32, 64)))
FIXED_BOB_SECRETS: Final = (bytes(range(64, 96)), bytes(range(96, 128)))
FIXED_ALICE_BUNDLE: Final = bytes.fromhex(
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    "358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254"
    "6b11fe8b8f3286372c8e124821b292faa03c8cedea65eaca9230cbd53e4358a2"
    "3ce5bbeef062e85f26eb3524718935be29b6785a8f74d0eefa22d61706674808"
)
FIXED_ALICE_HANDLE: Final = "KZDV-VJ2U-MNDU-YAUF-35O3"
FIXED_ALICE_RELAY: Final = "wss://relay.example.org/pigeon"
FIXED_ALICE_CARD_SHA256: Final = "4eb4ac8c94a9271c32736f334c584f6131278f22bf0a9fc8b4c99cfbff709db9"
FIXED_SAFETY_NUMBER: Final = "522405480370697008023139137600779758532600205676828090331747"


def _expect_equal(what: str, got: object, expected: object) -> None:
    if got != expected:
        raise AssertionError(f"{what} differs from the known answer")


def _expect_rejected(what: str, error: type[Exception], data: bytes) -> None:
    try:
        IdentityBundle.from_bytes(data)
    except error:
        return
    raise AssertionError(f"{what} was not rejected")


def check_safety_number() -> None:
    """libsignal's vector 1 digit for digit, then the pinned Pigeon number of two fixed cards."""
    alice = numeric_fingerprint(_SIGNAL_ALICE_KEY, b"+14152222222")
    bob = numeric_fingerprint(_SIGNAL_BOB_KEY, b"+14153333333")
    _expect_equal("libsignal safety number", combine_fingerprints(alice, bob), _SIGNAL_DISPLAYABLE)
    _expect_equal("libsignal safety number", combine_fingerprints(bob, alice), _SIGNAL_DISPLAYABLE)
    a = Identity.from_secrets(*FIXED_ALICE_SECRETS).bundle()
    b = Identity.from_secrets(*FIXED_BOB_SECRETS).bundle()
    _expect_equal("Pigeon safety number", safety_number(a, b), FIXED_SAFETY_NUMBER)


def check_bundle() -> None:
    """A fixed identity gives known bundle bytes and handle; they parse; a forgery does not."""
    identity = Identity.from_secrets(*FIXED_ALICE_SECRETS)
    _expect_equal("bundle bytes", identity.bundle().to_bytes(), FIXED_ALICE_BUNDLE)
    _expect_equal("handle", identity.handle, FIXED_ALICE_HANDLE)
    _expect_equal("parsed bundle", IdentityBundle.from_bytes(FIXED_ALICE_BUNDLE), identity.bundle())
    tampered = bytearray(FIXED_ALICE_BUNDLE)
    tampered[40] ^= 0x01  # inside the X25519 key
    _expect_rejected("tampered bundle", InvalidSignature, bytes(tampered))
    # The forgery OpenSSL accepts: key and R the small-order identity point, S = 0.
    identity_point = bytes([1]) + bytes(31)
    forged = identity_point + FIXED_ALICE_BUNDLE[32:64] + identity_point + bytes(32)
    _expect_rejected("small-order forgery", WeakKey, forged)


def check_card() -> None:
    """A fixed card has known bytes and survives the text form; its relay is honoured."""
    identity = Identity.from_secrets(*FIXED_ALICE_SECRETS)
    card = ContactCard.create(identity, relays=[FIXED_ALICE_RELAY], name="Alice")
    digest = hashlib.sha256(card.to_bytes()).hexdigest()
    _expect_equal("card bytes", digest, FIXED_ALICE_CARD_SHA256)
    parsed = ContactCard.from_text(card.to_text())
    _expect_equal("card text round trip", parsed, card)
    _expect_equal("verified relays", parsed.relays, (FIXED_ALICE_RELAY,))


def check_padding() -> None:
    """ISO/IEC 7816-4 padding to 512 bytes, its inverse, and one malformed input refused."""
    _expect_equal("padding", pad(b"abc"), b"abc\x80" + bytes(BLOCK_LEN - 4))
    _expect_equal("full block", len(pad(bytes(BLOCK_LEN))), 2 * BLOCK_LEN)
    _expect_equal("unpadding", unpad(pad(b"abc")), b"abc")
    try:
        unpad(bytes(BLOCK_LEN))
    except MalformedInput:
        return
    raise AssertionError("all-zero padding was not rejected")
