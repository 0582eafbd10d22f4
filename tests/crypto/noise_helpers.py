"""Shared fixtures for the Noise tests: fixed keys, a handshake driver, and message forgers."""

from __future__ import annotations

from dataclasses import dataclass

from pigeon.crypto.noise import (
    XX_25519_CHACHAPOLY_BLAKE2S,
    XX_25519_CHACHAPOLY_SHA256,
    CipherState,
    HandshakeState,
)
from pigeon.crypto.noise_cipher import TAG_LEN

SUITES = (XX_25519_CHACHAPOLY_SHA256, XX_25519_CHACHAPOLY_BLAKE2S)
INIT_STATIC = bytes(range(1, 33))
RESP_STATIC = bytes(range(33, 65))
INIT_EPHEMERAL = bytes(range(65, 97))
RESP_EPHEMERAL = bytes(range(97, 129))
PROLOGUE = b"pigeon test prologue"

# X25519 u-coordinates of small order (RFC 7748 section 6.1 asks to detect them), and two
# encodings with bit 255 set, which X25519 ignores.
LOW_ORDER_POINTS = (
    bytes(32),
    bytes([1]) + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes(31) + bytes([0x80]),
    bytes([1]) + bytes(30) + bytes([0x80]),
)


def pair(suite: str = XX_25519_CHACHAPOLY_SHA256) -> tuple[HandshakeState, HandshakeState]:
    """A deterministic (initiator, responder) pair."""
    initiator = HandshakeState(suite, True, INIT_STATIC, PROLOGUE, INIT_EPHEMERAL)
    responder = HandshakeState(suite, False, RESP_STATIC, PROLOGUE, RESP_EPHEMERAL)
    return initiator, responder


@dataclass(frozen=True, slots=True)
class Transcript:
    """The three handshake messages of a run and both sides' outcome."""

    messages: tuple[bytes, bytes, bytes]
    handshake_hash: bytes
    initiator: tuple[CipherState, CipherState]
    responder: tuple[CipherState, CipherState]


def run_handshake(
    initiator: HandshakeState,
    responder: HandshakeState,
    payloads: tuple[bytes, bytes, bytes] = (b"", b"", b""),
) -> Transcript:
    """Drive both sides through XX, checking payloads arrive; return what was sent."""
    message1 = initiator.write_message(payloads[0])
    assert responder.read_message(message1) == payloads[0]
    message2 = responder.write_message(payloads[1])
    assert initiator.read_message(message2) == payloads[1]
    message3 = initiator.write_message(payloads[2])
    assert responder.read_message(message3) == payloads[2]
    assert initiator.complete
    assert responder.complete
    assert initiator.handshake_hash == responder.handshake_hash
    return Transcript(
        (message1, message2, message3),
        initiator.handshake_hash,
        initiator.split(),
        responder.split(),
    )


def forge_message2_with_static(
    suite: str, message1: bytes, static_public: bytes, payload_len: int = 0
) -> bytes:
    """A message 2 from a genuine responder ephemeral but an arbitrary claimed static key.

    The static key travels encrypted under ee, so forging it needs the responder's own state:
    we run a real responder up to the `s` token and splice in the chosen key.
    """
    responder = HandshakeState(suite, False, RESP_STATIC, PROLOGUE, RESP_EPHEMERAL)
    responder.read_message(message1)
    symmetric = responder._symmetric
    assert symmetric is not None
    symmetric = symmetric.copy()
    ephemeral_public = responder._ephemeral_public
    symmetric.mix_hash(ephemeral_public)
    assert responder._peer_ee is not None
    symmetric.mix_key(responder._peer_ee)
    encrypted_static = symmetric.encrypt_and_hash(static_public)
    # The initiator must fail at `es` (a DH with the claimed key) before reaching the payload.
    return ephemeral_public + encrypted_static + bytes(payload_len + TAG_LEN)


def forge_message3_with_static(initiator: HandshakeState, static_public: bytes) -> bytes:
    """A message 3 claiming `static_public`, from an initiator that has read message 2."""
    symmetric = initiator._symmetric
    assert symmetric is not None
    encrypted_static = symmetric.copy().encrypt_and_hash(static_public)
    return encrypted_static + bytes(TAG_LEN)
