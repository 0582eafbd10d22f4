"""Fuzz the secure-session handshake readers and the session state parser.

The first byte picks the target: message 1 at a responder, an XOR-masked message 2 at a
waiting initiator, an XOR-masked message 3 at a waiting responder, or stored session bytes.
Only the crypto room's typed errors may escape; a refused handshake message changes nothing,
and only the untouched real message may complete a handshake.
"""

import random
import sys

import atheris

with atheris.instrument_imports():
    from pigeon.crypto.errors import (
        BundleMismatch,
        DecryptFailed,
        InvalidSignature,
        MalformedInput,
        Replayed,
        WeakKey,
    )
    from pigeon.crypto.identity import Identity
    from pigeon.crypto.session import SecureSession
    from pigeon.crypto.session_guard import HandshakeGuard

NOW = 1_790_000_000
ALICE = Identity.from_secrets(bytes([1]) * 32, bytes([2]) * 32)
BOB = Identity.from_secrets(bytes([3]) * 32, bytes([4]) * 32)
HANDSHAKE_ERRORS = (
    MalformedInput,
    WeakKey,
    InvalidSignature,
    BundleMismatch,
    DecryptFailed,
    Replayed,
)


def _transcript() -> tuple[bytes, bytes, bytes, bytes]:
    """Stored pending initiator and responder states, and the real messages 2 and 3."""
    alice, message1 = SecureSession.initiate(ALICE, random.Random(1).randbytes)
    bob, message2 = SecureSession.respond(BOB, message1, NOW, random.Random(2).randbytes)
    alice_state, bob_state = alice.to_bytes(), bob.to_bytes()
    message3 = alice.read_handshake(message2, NOW, HandshakeGuard())
    assert message3 is not None
    return alice_state, bob_state, message2, message3


ALICE_PENDING, BOB_PENDING, MESSAGE2, MESSAGE3 = _transcript()


def _masked(real: bytes, mask: bytes) -> bytes:
    mask = mask[: len(real)].ljust(len(real), b"\x00")
    return bytes(a ^ b for a, b in zip(real, mask, strict=True))


def _read(state: bytes, identity: Identity, real: bytes, mask: bytes) -> None:
    session = SecureSession.from_bytes(state, identity, random.Random(3).randbytes)
    message = _masked(real, mask)
    try:
        session.read_handshake(message, NOW, HandshakeGuard())
    except HANDSHAKE_ERRORS:
        if session.to_bytes() != state:
            raise RuntimeError("a refused handshake message changed the session") from None
        return
    if message != real:
        raise RuntimeError("a forged handshake message completed a handshake")


def fuzz_one_input(data: bytes) -> None:
    """Run one handshake reader or the state parser on `data`."""
    if not data:
        return
    mode, body = data[0] % 4, data[1:]
    if mode == 0:
        try:
            SecureSession.respond(BOB, body, NOW, random.Random(4).randbytes)
        except (MalformedInput, WeakKey):
            return
    elif mode == 1:
        _read(ALICE_PENDING, ALICE, MESSAGE2, body)
    elif mode == 2:
        _read(BOB_PENDING, BOB, MESSAGE3, body)
    else:
        try:
            SecureSession.from_bytes(body, ALICE)
        except MalformedInput:
            return


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
