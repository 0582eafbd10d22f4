"""Olm payloads as the Pigeon app frames them (`pigeon.wire.v1`, protobuf).

OlmMessage {1: message_type (uint32: 0 pre-key, 1 normal), 2: ciphertext (Olm's own bytes)}:
the payload of message, ack and control envelopes. Initiation {1: IdentityBundle,
2: OlmMessage}: the payload of an X3DH-init envelope, always a pre-key message.
`prekey_keys` reads the three public keys an Olm pre-key message names (libolm's format:
version 0x03, then protobuf-like fields 1 one-time key, 2 base key, 3 identity key, 4 inner
message), so we can tell an unknown prekey or a replay before asking vodozemac.
`split_prekey` and `join_prekey` take a pre-key message apart and put it back byte for byte
(Olm authenticates only the inner message: the outer keys are bound by the key agreement), so
our node envelope can leave out what the recipient already holds and rebuild Olm's bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pigeon.crypto.app_bundle import CURVE_KEY_LEN, AppIdentityBundle
from pigeon.crypto.errors import MalformedInput
from pigeon.crypto.protobuf import bytes_field, decode_message, varint_field

PREKEY_ID_LEN: Final = 8  # the leading bytes of a prekey that name it among its owner's
MESSAGE_TYPE_PREKEY: Final = 0
MESSAGE_TYPE_NORMAL: Final = 1
OLM_VERSION: Final = 3  # vodozemac's libolm-compatible session version 1
MAX_OLM_CIPHERTEXT_LEN: Final = 256 * 1024  # the app's reassembly cap for a whole message


@dataclass(frozen=True, slots=True)
class OlmMessage:
    """One Olm message: its type and Olm's ciphertext bytes."""

    message_type: int
    ciphertext: bytes

    def to_bytes(self) -> bytes:
        """The canonical protobuf encoding (type 0 is left out, as proto3 does)."""
        return varint_field(1, self.message_type) + bytes_field(2, self.ciphertext)

    @classmethod
    def from_bytes(cls, data: bytes) -> OlmMessage:
        """Decode; raises MalformedInput on bad framing, an unknown type or no ciphertext."""
        message = decode_message(data, varints=(1,), lengths=(2,))
        message_type = message.uint32_field(1)
        if message_type not in (MESSAGE_TYPE_PREKEY, MESSAGE_TYPE_NORMAL):
            raise MalformedInput("an Olm message type is 0 or 1")
        ciphertext = message.bytes_field(2)
        if not 0 < len(ciphertext) <= MAX_OLM_CIPHERTEXT_LEN:
            raise MalformedInput("an Olm ciphertext is missing or too long")
        if ciphertext[0] != OLM_VERSION:
            raise MalformedInput("an Olm message is not version 3")
        return cls(message_type, ciphertext)


@dataclass(frozen=True, slots=True)
class PrekeyKeys:
    """The public keys a pre-key message names."""

    one_time_key: bytes
    base_key: bytes
    identity_key: bytes


def prekey_keys(ciphertext: bytes) -> PrekeyKeys:
    """The keys of an Olm pre-key message; raises MalformedInput unless all three are there."""
    return split_prekey(ciphertext)[0]


def split_prekey(ciphertext: bytes) -> tuple[PrekeyKeys, bytes]:
    """The keys and the inner (normal) message of an Olm pre-key message; raises
    MalformedInput unless all three keys and the inner message are there."""
    if not ciphertext or ciphertext[0] != OLM_VERSION:
        raise MalformedInput("an Olm pre-key message is not version 3")
    fields = decode_message(ciphertext[1:], lengths=(1, 2, 3, 4))
    keys = [fields.bytes_field(number) for number in (1, 2, 3)]
    inner = fields.bytes_field(4)
    if any(len(key) != CURVE_KEY_LEN for key in keys) or not inner:
        raise MalformedInput("an Olm pre-key message lacks a key or its inner message")
    return PrekeyKeys(*keys), inner


def join_prekey(keys: PrekeyKeys, inner: bytes) -> bytes:
    """The Olm pre-key message of `keys` and `inner`, encoded as vodozemac encodes it."""
    return (
        bytes((OLM_VERSION,))
        + bytes_field(1, keys.one_time_key)
        + bytes_field(2, keys.base_key)
        + bytes_field(3, keys.identity_key)
        + bytes_field(4, inner)
    )


def prekey_id(prekey: bytes) -> bytes:
    """The short name of a prekey (its first PREKEY_ID_LEN bytes: keys are uniformly random)."""
    return prekey[:PREKEY_ID_LEN]


@dataclass(frozen=True, slots=True)
class Initiation:
    """What an initiator sends first: its identity bundle and the first pre-key message."""

    identity: AppIdentityBundle
    message: OlmMessage

    def to_bytes(self) -> bytes:
        """The canonical protobuf encoding."""
        return bytes_field(1, self.identity.to_bytes()) + bytes_field(
            2, self.message.to_bytes(), keep_empty=True
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Initiation:
        """Decode without verifying; raises MalformedInput unless it carries a pre-key message."""
        message = decode_message(data, lengths=(1, 2))
        if not message.has(1) or not message.has(2):
            raise MalformedInput("an initiation needs an identity and a message")
        olm = OlmMessage.from_bytes(message.bytes_field(2))
        if olm.message_type != MESSAGE_TYPE_PREKEY:
            raise MalformedInput("an initiation carries a pre-key message")
        return cls(AppIdentityBundle.from_bytes(message.bytes_field(1)), olm)
