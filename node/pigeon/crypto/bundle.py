"""IdentityBundle: an Ed25519 identity key and the X25519 Noise static key it vouches for.

Wire form (128 bytes): Ed25519 public key (32) || X25519 public key (32) || Ed25519 signature
(64) over `BUNDLE_DOMAIN || ed25519 || x25519`. An `IdentityBundle` object always holds a
bundle that verified: the constructor checks both keys and the signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pigeon.crypto.errors import MalformedInput, WeakKey
from pigeon.crypto.signing import PUBLIC_KEY_LEN, SIGNATURE_LEN, verify

BUNDLE_DOMAIN: Final = b"Pigeon.IdentityBundle.v1"
X25519_PUBLIC_LEN: Final = 32
BUNDLE_LEN: Final = PUBLIC_KEY_LEN + X25519_PUBLIC_LEN + SIGNATURE_LEN

_CURVE25519_P: Final = 2**255 - 19
# The canonical u-coordinates of every point of order 1, 2, 4 or 8 on Curve25519 or its twist
# (libsodium's blacklist less its non-canonical entries, which the range check already refuses).
# A set lookup instead of a trial X25519: a peer's bundle is parsed in every handshake.
LOW_ORDER_X25519: Final = frozenset(
    bytes.fromhex(u)
    for u in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    )
)


def bundle_message(ed25519_public: bytes, x25519_public: bytes) -> bytes:
    """The exact bytes the bundle signature covers."""
    return BUNDLE_DOMAIN + ed25519_public + x25519_public


def check_x25519_public_key(public_key: bytes) -> None:
    """Raise MalformedInput (length) or WeakKey (non-canonical or low order) for an X25519 key."""
    if len(public_key) != X25519_PUBLIC_LEN:
        raise MalformedInput(f"X25519 public key must be {X25519_PUBLIC_LEN} bytes")
    if int.from_bytes(public_key, "little") >= _CURVE25519_P:
        raise WeakKey("X25519 public key is not canonically encoded")
    if bytes(public_key) in LOW_ORDER_X25519:
        raise WeakKey("X25519 public key has low order")


@dataclass(frozen=True, slots=True)
class IdentityBundle:
    """A verified (Ed25519 key, X25519 Noise static key, signature) triple.

    Raises MalformedInput (lengths), WeakKey (small-order or non-canonical key) or
    InvalidSignature on construction.
    """

    public_key: bytes
    noise_static_public: bytes
    signature: bytes

    def __post_init__(self) -> None:
        check_x25519_public_key(self.noise_static_public)
        verify(  # checks the Ed25519 key first: MalformedInput, WeakKey
            self.public_key,
            bundle_message(self.public_key, self.noise_static_public),
            self.signature,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> IdentityBundle:
        """Parse and verify 128 bytes; raises MalformedInput, WeakKey or InvalidSignature."""
        if len(data) != BUNDLE_LEN:
            raise MalformedInput(f"identity bundle must be {BUNDLE_LEN} bytes")
        data = bytes(data)
        x_end = PUBLIC_KEY_LEN + X25519_PUBLIC_LEN
        return cls(data[:PUBLIC_KEY_LEN], data[PUBLIC_KEY_LEN:x_end], data[x_end:])

    def to_bytes(self) -> bytes:
        """The 128-byte wire form."""
        return self.public_key + self.noise_static_public + self.signature

    def __repr__(self) -> str:
        return f"IdentityBundle(public_key={self.public_key.hex()[:16]}...)"
