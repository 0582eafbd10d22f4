"""IdentityBundle: layout checked against `cryptography`, and a typed error for every bad input."""

import contextlib

import pytest
from cryptography.exceptions import InvalidSignature as OpenSslInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from pigeon.crypto.bundle import (
    BUNDLE_DOMAIN,
    BUNDLE_LEN,
    LOW_ORDER_X25519,
    IdentityBundle,
    check_x25519_public_key,
)
from pigeon.crypto.card_kat import FIXED_ALICE_BUNDLE, FIXED_ALICE_SECRETS
from pigeon.crypto.errors import InvalidSignature, MalformedInput, WeakKey
from pigeon.crypto.identity import Identity

# Every encoding libsodium treats as a small-order Ed25519 point (orders 1, 2, 4 and 8).
SMALL_ORDER_ED25519 = [
    bytes.fromhex(h)
    for h in (
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    )
]
# X25519 u-coordinates of low order (libsodium's blacklist) and non-canonical encodings.
WEAK_X25519 = [
    bytes.fromhex(h)
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "cdeb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
    )
]


def test_low_order_list_matches_the_torsion_of_edwards25519() -> None:
    # Independent derivation: map each small-order Edwards point to Montgomery u = (1+y)/(1-y);
    # the identity (y = 1) has no u, and the twist adds its order-4 point u = -1.
    p = 2**255 - 19
    derived = {(p - 1).to_bytes(32, "little")}
    for point in SMALL_ORDER_ED25519:
        y = int.from_bytes(point, "little") & ((1 << 255) - 1)
        if y != 1:
            derived.add(((1 + y) * pow(1 - y, -1, p) % p).to_bytes(32, "little"))
    assert derived == LOW_ORDER_X25519


@pytest.mark.parametrize("key", sorted(LOW_ORDER_X25519), ids=bytes.hex)
def test_openssl_agrees_each_low_order_key_gives_a_zero_secret(key: bytes) -> None:
    with pytest.raises(ValueError, match="shared key"):
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(key))


@given(st.binary(min_size=32, max_size=32))
def test_any_other_canonical_key_passes_and_gives_a_secret(key: bytes) -> None:
    key = key[:31] + bytes([key[31] & 0x7F])
    if key in LOW_ORDER_X25519 or int.from_bytes(key, "little") >= 2**255 - 19:
        return
    check_x25519_public_key(key)
    X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(key))


def _signed_bundle(identity: Identity, x25519_public: bytes) -> bytes:
    """A bundle correctly signed by `identity` for any X25519 key bytes."""
    return (
        identity.public_key
        + x25519_public
        + identity.sign(BUNDLE_DOMAIN + identity.public_key + x25519_public)
    )


def test_layout_matches_an_independent_implementation() -> None:
    seed, x_private = FIXED_ALICE_SECRETS
    ed = Ed25519PrivateKey.from_private_bytes(seed)
    ed_public = ed.public_key().public_bytes_raw()
    x_public = X25519PrivateKey.from_private_bytes(x_private).public_key().public_bytes_raw()
    expected = ed_public + x_public + ed.sign(b"Pigeon.IdentityBundle.v1" + ed_public + x_public)
    assert Identity.from_secrets(seed, x_private).bundle().to_bytes() == expected
    assert expected == FIXED_ALICE_BUNDLE


def test_round_trip() -> None:
    bundle = Identity.generate().bundle()
    data = bundle.to_bytes()
    assert len(data) == BUNDLE_LEN == 128
    assert IdentityBundle.from_bytes(data) == bundle
    assert IdentityBundle.from_bytes(bytearray(data)) == bundle


@pytest.mark.parametrize("length", [0, 1, 64, 127, 129, 256])
def test_wrong_length_is_malformed(length: int) -> None:
    with pytest.raises(MalformedInput):
        IdentityBundle.from_bytes(FIXED_ALICE_BUNDLE.ljust(length, b"\x00")[:length])


@pytest.mark.parametrize("key", SMALL_ORDER_ED25519, ids=lambda k: k.hex()[:8] + k.hex()[-2:])
def test_small_order_ed25519_key_is_weak(key: bytes) -> None:
    with pytest.raises(WeakKey):
        IdentityBundle.from_bytes(key + FIXED_ALICE_BUNDLE[32:])


def test_openssl_forgery_under_identity_point_is_refused() -> None:
    identity_point = bytes([1]) + bytes(31)
    x_public = FIXED_ALICE_BUNDLE[32:64]
    forged_signature = identity_point + bytes(32)  # R = identity, S = 0
    message = BUNDLE_DOMAIN + identity_point + x_public
    # A stricter OpenSSL may refuse it too; the point is that we refuse it whatever OpenSSL does.
    with contextlib.suppress(OpenSslInvalidSignature):
        Ed25519PublicKey.from_public_bytes(identity_point).verify(forged_signature, message)
    with pytest.raises(WeakKey):
        IdentityBundle.from_bytes(identity_point + x_public + forged_signature)


@pytest.mark.parametrize("key", WEAK_X25519, ids=lambda k: k.hex()[:8] + k.hex()[-2:])
def test_low_order_or_non_canonical_x25519_key_is_weak(key: bytes) -> None:
    # Correctly signed, so only the key check can refuse it.
    with pytest.raises(WeakKey):
        IdentityBundle.from_bytes(_signed_bundle(Identity.generate(), key))


def test_high_bit_set_on_a_good_x25519_key_is_weak() -> None:
    key = bytearray(FIXED_ALICE_BUNDLE[32:64])
    key[31] |= 0x80
    with pytest.raises(WeakKey):
        IdentityBundle.from_bytes(_signed_bundle(Identity.generate(), bytes(key)))


def test_signature_by_another_key_is_invalid() -> None:
    alice, mallory = Identity.generate(), Identity.generate()
    message = BUNDLE_DOMAIN + alice.public_key + alice.noise_static_public
    with pytest.raises(InvalidSignature):
        IdentityBundle.from_bytes(
            alice.public_key + alice.noise_static_public + mallory.sign(message)
        )


def test_noise_key_swapped_in_is_invalid() -> None:
    alice, mallory = Identity.generate(), Identity.generate()
    data = alice.bundle().to_bytes()
    with pytest.raises(InvalidSignature):
        IdentityBundle.from_bytes(data[:32] + mallory.noise_static_public + data[64:])


def test_signature_without_domain_is_invalid() -> None:
    alice = Identity.generate()
    keys = alice.public_key + alice.noise_static_public
    with pytest.raises(InvalidSignature):
        IdentityBundle.from_bytes(keys + alice.sign(keys))


def test_constructor_verifies_too() -> None:
    bundle = Identity.generate().bundle()
    with pytest.raises(InvalidSignature):
        IdentityBundle(bundle.public_key, bundle.noise_static_public, bytes(64))


@given(st.integers(min_value=0, max_value=BUNDLE_LEN * 8 - 1))
def test_any_bit_flip_is_a_typed_error(bit: int) -> None:
    data = bytearray(FIXED_ALICE_BUNDLE)
    data[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises((MalformedInput, WeakKey, InvalidSignature)):
        IdentityBundle.from_bytes(bytes(data))
