"""The Pigeon app's identity bundle and prekey bundle (`pigeon.wire.v1`, protobuf).

IdentityBundle {1: identity_key (Ed25519, 32), 2: curve_identity_key (Olm Curve25519, 32),
3: binding_signature (64)}: the Ed25519 key signs `BINDING_CONTEXT || curve key`; 134 bytes.
PrekeyBundle {1: IdentityBundle, 2: prekey (Curve25519, 32), 3: prekey_signature (64),
4: one_time (bool)}: the Ed25519 key signs `PREKEY_CONTEXT || one_time (u8) || prekey`.
Signatures verify through libsodium (`signing.verify`), which refuses small-order keys and
non-canonical signatures as the app's `verify_strict` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pigeon.crypto.errors import MalformedInput
from pigeon.crypto.protobuf import Message, bytes_field, decode_message, varint_field
from pigeon.crypto.signing import PUBLIC_KEY_LEN, SIGNATURE_LEN, SigningKey, verify

BINDING_CONTEXT: Final = b"Pigeon.IdentityBinding.v1"
PREKEY_CONTEXT: Final = b"Pigeon.Prekey.v1"
CURVE_KEY_LEN: Final = 32
IDENTITY_BUNDLE_LEN: Final = 134  # three tagged fields: 2 + 32 + 2 + 32 + 2 + 64


def binding_message(curve_identity_key: bytes) -> bytes:
    """The bytes the Ed25519 identity key signs to bind an Olm Curve25519 identity key."""
    return BINDING_CONTEXT + curve_identity_key


def prekey_message(one_time: bool, prekey: bytes) -> bytes:
    """The bytes the Ed25519 identity key signs for a one-time or fallback prekey."""
    return PREKEY_CONTEXT + bytes([int(one_time)]) + prekey


def _exact(value: bytes, length: int, what: str) -> bytes:
    if len(value) != length:
        raise MalformedInput(f"{what} must be {length} bytes")
    return value


@dataclass(frozen=True, slots=True)
class AppIdentityBundle:
    """An Ed25519 identity key, the Olm Curve25519 key it binds, and the binding signature."""

    identity_key: bytes
    curve_identity_key: bytes
    binding_signature: bytes

    @classmethod
    def sign(cls, identity: SigningKey, curve_identity_key: bytes) -> AppIdentityBundle:
        """The bundle binding `curve_identity_key` to `identity`."""
        _exact(curve_identity_key, CURVE_KEY_LEN, "a Curve25519 key")
        signature = identity.sign(binding_message(curve_identity_key))
        return cls(identity.public_key, curve_identity_key, signature)

    def verify(self) -> None:
        """Raise InvalidSignature, WeakKey or MalformedInput unless the binding verifies."""
        verify(self.identity_key, binding_message(self.curve_identity_key), self.binding_signature)

    def to_bytes(self) -> bytes:
        """The canonical protobuf encoding (134 bytes)."""
        return (
            bytes_field(1, self.identity_key)
            + bytes_field(2, self.curve_identity_key)
            + bytes_field(3, self.binding_signature)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> AppIdentityBundle:
        """Decode without verifying; raises MalformedInput on bad framing or lengths."""
        return cls.from_message(decode_message(data, lengths=(1, 2, 3)))

    @classmethod
    def from_message(cls, message: Message) -> AppIdentityBundle:
        """The bundle of an already-decoded message (fields 1, 2, 3 length-delimited)."""
        return cls(
            _exact(message.bytes_field(1), PUBLIC_KEY_LEN, "an Ed25519 identity key"),
            _exact(message.bytes_field(2), CURVE_KEY_LEN, "a Curve25519 identity key"),
            _exact(message.bytes_field(3), SIGNATURE_LEN, "a binding signature"),
        )

    @classmethod
    def parse_verified(cls, data: bytes) -> AppIdentityBundle:
        """Decode and verify, as the app does before trusting a bundle."""
        bundle = cls.from_bytes(data)
        bundle.verify()
        return bundle


@dataclass(frozen=True, slots=True)
class AppPrekeyBundle:
    """An identity bundle plus one signed Curve25519 prekey (one-time or fallback)."""

    identity: AppIdentityBundle
    prekey: bytes
    prekey_signature: bytes
    one_time: bool

    @classmethod
    def sign(
        cls, identity: SigningKey, bundle: AppIdentityBundle, prekey: bytes, *, one_time: bool
    ) -> AppPrekeyBundle:
        """The bundle offering `prekey`, signed by `identity`."""
        _exact(prekey, CURVE_KEY_LEN, "a Curve25519 prekey")
        signature = identity.sign(prekey_message(one_time, prekey))
        return cls(bundle, prekey, signature, one_time)

    def verify(self) -> None:
        """Raise InvalidSignature, WeakKey or MalformedInput unless binding and prekey verify."""
        self.identity.verify()
        verify(
            self.identity.identity_key,
            prekey_message(self.one_time, self.prekey),
            self.prekey_signature,
        )

    def to_bytes(self) -> bytes:
        """The canonical protobuf encoding."""
        return (
            bytes_field(1, self.identity.to_bytes())
            + bytes_field(2, self.prekey)
            + bytes_field(3, self.prekey_signature)
            + varint_field(4, int(self.one_time))
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> AppPrekeyBundle:
        """Decode without verifying; raises MalformedInput on bad framing or lengths."""
        message = decode_message(data, varints=(4,), lengths=(1, 2, 3))
        if not message.has(1):
            raise MalformedInput("a prekey bundle has no identity")
        return cls(
            AppIdentityBundle.from_bytes(message.bytes_field(1)),
            _exact(message.bytes_field(2), CURVE_KEY_LEN, "a Curve25519 prekey"),
            _exact(message.bytes_field(3), SIGNATURE_LEN, "a prekey signature"),
            message.bool_field(4),
        )

    @classmethod
    def parse_verified(cls, data: bytes) -> AppPrekeyBundle:
        """Decode and verify binding and prekey signature, as the app does."""
        bundle = cls.from_bytes(data)
        bundle.verify()
        return bundle
