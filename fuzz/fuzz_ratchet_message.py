"""Fuzz `SecureSession.decrypt` on an established session: typed errors only, state untouched.

The first byte picks how the rest is used: as a whole message, as an XOR mask over a real
message, or as the ciphertext behind a real header. A message that is not one we sent must
never decrypt, and a refused one must leave the session's bytes exactly as they were.
"""

import random
import sys

import atheris

with atheris.instrument_imports():
    from pigeon.crypto.errors import DecryptFailed, MalformedInput, Replayed, WeakKey
    from pigeon.crypto.identity import Identity
    from pigeon.crypto.ratchet import HEADER_LEN
    from pigeon.crypto.session import SecureSession
    from pigeon.crypto.session_guard import HandshakeGuard

NOW = 1_790_000_000
AD = b"fuzz"
ALICE = Identity.from_secrets(bytes([1]) * 32, bytes([2]) * 32)
BOB = Identity.from_secrets(bytes([3]) * 32, bytes([4]) * 32)


def _conversation() -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """Bob's stored state after one exchange, and Alice's messages he has not read yet."""
    alice, message1 = SecureSession.initiate(ALICE, random.Random(1).randbytes)
    bob, message2 = SecureSession.respond(BOB, message1, NOW, random.Random(2).randbytes)
    message3 = alice.read_handshake(message2, NOW, HandshakeGuard())
    assert message3 is not None
    bob.read_handshake(message3, NOW, HandshakeGuard())
    bob.decrypt(alice.encrypt(b"warm up", AD), AD)
    alice.decrypt(bob.encrypt(b"reply", AD), AD)
    unread = [(alice.encrypt(b"%d" % n * n, AD), b"%d" % n * n) for n in range(4)]
    return bob.to_bytes(), unread


BOB_STATE, UNREAD = _conversation()
KNOWN = dict(UNREAD)


def _message(data: bytes) -> bytes:
    mode, pick, body = data[0] % 3, data[1] % len(UNREAD), data[2:]
    real = UNREAD[pick][0]
    if mode == 0:
        return body
    if mode == 1:
        mask = body[: len(real)].ljust(len(real), b"\x00")
        return bytes(a ^ b for a, b in zip(real, mask, strict=True))
    return real[:HEADER_LEN] + body


def fuzz_one_input(data: bytes) -> None:
    """Decrypt a fuzzed message; only the session's typed decrypt errors may escape."""
    if len(data) < 2:
        return
    message = _message(data)
    bob = SecureSession.from_bytes(BOB_STATE, BOB, random.Random(3).randbytes)
    try:
        plaintext = bob.decrypt(message, AD)
    except (MalformedInput, DecryptFailed, Replayed, WeakKey):
        if bob.to_bytes() != BOB_STATE:
            raise RuntimeError("a refused message changed the session state") from None
        return
    if KNOWN.get(message) != plaintext:
        raise RuntimeError("a message we never sent decrypted")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
