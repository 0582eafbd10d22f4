"""Replays Noise test vectors in cacophony's JSON format against our XX (sans-IO: no files).

A vector names its protocol, both sides' keys and prologues, and messages alternating from the
initiator; the first three are the handshake, the rest transport messages after the split.
Formats seen: `{"vectors": [...]}` (cacophony, snow) or a bare list (older copies), with the
name under `protocol_name` (or `name` in noise-c's old layout); snow omits `handshake_hash`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, TypeAlias

from pigeon.crypto.errors import MalformedInput
from pigeon.crypto.noise import SUPPORTED_PROTOCOLS, CipherState, HandshakeState

HANDSHAKE_MESSAGES: Final = 3

Vector: TypeAlias = Mapping[str, object]

# haskell-cryptography/cacophony vectors/cacophony.txt @8ee9d41e, Noise_XX_25519_ChaChaPoly_SHA256.
KNOWN_ANSWER: Final[Vector] = {
    "protocol_name": "Noise_XX_25519_ChaChaPoly_SHA256",
    "init_prologue": "4a6f686e2047616c74",
    "init_static": "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1",
    "init_ephemeral": "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a",
    "resp_prologue": "4a6f686e2047616c74",
    "resp_static": "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893",
    "resp_ephemeral": "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b",
    "handshake_hash": "c8e5f64e846193be2a834104c2a009868d6c9f3bd3c186299888b488b2f1f58e",
    "messages": [
        {
            "payload": "4c756477696720766f6e204d69736573",
            "ciphertext": (
                "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944"
                "4c756477696720766f6e204d69736573"
            ),
        },
        {
            "payload": "4d757272617920526f746862617264",
            "ciphertext": (
                "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843"
                "81cbad1f276e038c48378ffce2b65285e08d6b68aaa3629a5a8639392490e5b9"
                "bd5269c2f1e4f488ed8831161f19b7815528f8982ffe09be9b5c412f8a0db50f"
                "8814c7194e83f23dbd8d162c9326ad"
            ),
        },
        {
            "payload": "462e20412e20486179656b",
            "ciphertext": (
                "c7195ffacac1307ff99046f219750fc47693e23c3cb08b89c2af808b444850a8"
                "0ae475b9df0f169ae80a89be0865b57f58c9fea0d4ec82a286427402f113e4b6"
                "ae769a1d95941d49b25030"
            ),
        },
        {
            "payload": "4361726c204d656e676572",
            "ciphertext": "96763ed773f8e47bb3712f0e29b3060ffc956ffc146cee53d5e1df",
        },
        {
            "payload": "4a65616e2d426170746973746520536179",
            "ciphertext": ("3e40f15f6f3a46ae446b253bf8b1d9ffb6ed9b174d272328ff91a7e2e5c79c07f5"),
        },
        {
            "payload": "457567656e2042f6686d20766f6e2042617765726b",
            "ciphertext": (
                "eb3f3515110702e047a6c9da4478b6ead94873c11c0f2d710ddb3f09fce024b3a58502ae3f"
            ),
        },
    ],
}


class VectorMismatch(AssertionError):
    """Our output differs from a test vector's (names the field, never the bytes)."""


def vectors_in(document: object) -> list[Vector]:
    """The vectors of a parsed JSON document: `{"vectors": [...]}` or a bare list."""
    if isinstance(document, Mapping):
        document = document.get("vectors")
    if not isinstance(document, list) or not all(isinstance(v, Mapping) for v in document):
        raise MalformedInput('expected {"vectors": [...]} or a list of vector objects')
    return document


def protocol_name(vector: Vector) -> str:
    """The vector's protocol name, or "" if it has none."""
    name = vector.get("protocol_name", vector.get("name", ""))
    return name if isinstance(name, str) else ""


def is_supported(vector: Vector) -> bool:
    """Whether the vector is a plain XX run of a suite we implement (no PSK, fallback, failure)."""
    return (
        protocol_name(vector) in SUPPORTED_PROTOCOLS
        and not vector.get("init_psks")
        and not vector.get("resp_psks")
        and not vector.get("fallback")
        and not vector.get("fallback_pattern")
        and not vector.get("fail")
    )


def check_vector(vector: Vector) -> None:
    """Replay a supported vector; raise VectorMismatch, MalformedInput or a CryptoError."""
    name = protocol_name(vector)
    initiator = HandshakeState(
        name,
        True,
        _hex(vector, "init_static"),
        _hex(vector, "init_prologue"),
        _hex(vector, "init_ephemeral"),
    )
    responder = HandshakeState(
        name,
        False,
        _hex(vector, "resp_static"),
        _hex(vector, "resp_prologue"),
        _hex(vector, "resp_ephemeral"),
    )
    messages = _messages(vector)
    if len(messages) < HANDSHAKE_MESSAGES:
        raise MalformedInput("an XX vector has at least the three handshake messages")
    for index, (payload, ciphertext) in enumerate(messages[:HANDSHAKE_MESSAGES]):
        sender, receiver = (initiator, responder) if index % 2 == 0 else (responder, initiator)
        _expect(f"handshake message {index + 1}", sender.write_message(payload), ciphertext)
        _expect(
            f"payload of handshake message {index + 1}", receiver.read_message(ciphertext), payload
        )
    _expect(
        "initiator's view of the responder's key", initiator.remote_static, responder.static_public
    )
    _expect(
        "responder's view of the initiator's key", responder.remote_static, initiator.static_public
    )
    _expect("handshake hashes of the two sides", initiator.handshake_hash, responder.handshake_hash)
    if "handshake_hash" in vector:
        _expect("handshake hash", initiator.handshake_hash, _hex(vector, "handshake_hash"))
    _check_transport(initiator.split(), responder.split(), messages)


def _check_transport(
    initiator: tuple[CipherState, CipherState],
    responder: tuple[CipherState, CipherState],
    messages: Sequence[tuple[bytes, bytes]],
) -> None:
    for index in range(HANDSHAKE_MESSAGES, len(messages)):
        payload, ciphertext = messages[index]
        # Transport messages keep alternating; (send, receive) pairs come from split().
        send, receive = (
            (initiator[0], responder[1]) if index % 2 == 0 else (responder[0], initiator[1])
        )
        _expect(f"transport message {index + 1}", send.encrypt_with_ad(b"", payload), ciphertext)
        _expect(
            f"payload of transport message {index + 1}",
            receive.decrypt_with_ad(b"", ciphertext),
            payload,
        )


def check_known_answer() -> None:
    """Self-test: the embedded cacophony vector reproduces exactly."""
    check_vector(KNOWN_ANSWER)


def _expect(what: str, got: object, expected: object) -> None:
    if got != expected:
        raise VectorMismatch(f"{what} differs from the vector")


def _hex(vector: Vector, field: str) -> bytes:
    value = vector.get(field, "")
    if not isinstance(value, str):
        raise MalformedInput(f"vector field {field} is not a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise MalformedInput(f"vector field {field} is not valid hex") from None


def _messages(vector: Vector) -> list[tuple[bytes, bytes]]:
    messages = vector.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, Mapping) for m in messages):
        raise MalformedInput("vector field messages is not a list of objects")
    return [(_hex(m, "payload"), _hex(m, "ciphertext")) for m in messages]
