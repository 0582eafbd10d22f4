"""The Pigeon app's safety number (its `SafetyNumber.swift`; not Signal's, not our `safety.py`).

Sort the two Ed25519 identity keys bytewise. For each key: start from `CONTEXT || key`, then
5,200 times `current = SHA-512(current || CONTEXT || key)`; read six 5-byte big-endian chunks
of the digest, each mod 100,000 as five digits. The first key's 30 digits, then the second's:
60 digits, shown as 12 space-separated groups of 5.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Final

from pigeon.crypto.errors import MalformedInput
from pigeon.crypto.signing import PUBLIC_KEY_LEN

CONTEXT: Final = b"Pigeon.SafetyNumber.v1"
ITERATIONS: Final = 5200
DIGITS_PER_KEY: Final = 30
GROUP_DIGITS: Final = 5
_CHUNK_BYTES: Final = 5


# 5,200 SHA-512 rounds per key cost milliseconds; the inputs are public keys, so a cache keeps
# no secret.
@functools.lru_cache(maxsize=1024)
def key_digits(identity_key: bytes) -> str:
    """One key's 30 digits."""
    if len(identity_key) != PUBLIC_KEY_LEN:
        raise MalformedInput(f"an Ed25519 identity key is {PUBLIC_KEY_LEN} bytes")
    current = CONTEXT + identity_key
    for _ in range(ITERATIONS):
        current = hashlib.sha512(current + CONTEXT + identity_key).digest()
    chunks = range(0, DIGITS_PER_KEY // GROUP_DIGITS * _CHUNK_BYTES, _CHUNK_BYTES)
    return "".join(
        f"{int.from_bytes(current[i : i + _CHUNK_BYTES], 'big') % 100_000:05d}" for i in chunks
    )


def app_safety_number(local_key: bytes, remote_key: bytes) -> str:
    """The 60 digits of two identity keys, the same in either order."""
    first, second = sorted((local_key, remote_key))
    return key_digits(first) + key_digits(second)


def format_app_safety_number(digits: str) -> str:
    """The app's display: 12 groups of 5 digits separated by single spaces."""
    if len(digits) != 2 * DIGITS_PER_KEY or not (digits.isascii() and digits.isdigit()):
        raise MalformedInput("an app safety number is 60 ASCII digits")
    return " ".join(digits[i : i + GROUP_DIGITS] for i in range(0, len(digits), GROUP_DIGITS))
