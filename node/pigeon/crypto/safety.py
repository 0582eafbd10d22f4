"""Safety numbers: Signal's numeric fingerprint (libsignal `fingerprint.rs`), applied to Pigeon.

`numeric_fingerprint` is libsignal's algorithm byte for byte and takes the key and stable id as
given (libsignal's vectors use 33-byte 0x05-prefixed keys and phone numbers). For Pigeon,
`identity_key` is the raw 32-byte Ed25519 public key of a bundle and `stable_id` is the fixed
ASCII label `PIGEON_STABLE_ID`: the Ed25519 key is the whole identity (it signs the Noise static
key), and the label keeps a Pigeon number from ever equalling a Signal number for the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from typing import Final

from pigeon.crypto.bundle import IdentityBundle
from pigeon.crypto.card import ContactCard

FINGERPRINT_VERSION: Final = b"\x00\x00"  # libsignal's fixed hash prefix, not the QR version
DEFAULT_ITERATIONS: Final = 5200
MAX_ITERATIONS: Final = 1_000_000
FINGERPRINT_DIGITS: Final = 30
SAFETY_NUMBER_DIGITS: Final = 2 * FINGERPRINT_DIGITS
GROUP_DIGITS: Final = 5
PIGEON_STABLE_ID: Final = b"Pigeon.SafetyNumber.v1"

_CHUNK_BYTES: Final = 5


# 5,200 SHA-512 rounds cost ~10 ms here and more on a Pi; contact lists show a number per contact
# on every render. The inputs are public keys, so memoising them keeps no secret in memory.
@functools.lru_cache(maxsize=1024)
def numeric_fingerprint(
    identity_key: bytes, stable_id: bytes, iterations: int = DEFAULT_ITERATIONS
) -> str:
    """One party's 30 digits; raises ValueError unless 1 < iterations <= 1,000,000."""
    if not 1 < iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations must be in 2..{MAX_ITERATIONS}")
    digest = hashlib.sha512(FINGERPRINT_VERSION + identity_key + stable_id + identity_key).digest()
    for _ in range(iterations - 1):
        digest = hashlib.sha512(digest + identity_key).digest()
    chunks = range(0, FINGERPRINT_DIGITS // GROUP_DIGITS * _CHUNK_BYTES, _CHUNK_BYTES)
    return "".join(
        f"{int.from_bytes(digest[i : i + _CHUNK_BYTES], 'big') % 100_000:05d}" for i in chunks
    )


def combine_fingerprints(local: str, remote: str) -> str:
    """The 60-digit safety number: the smaller 30-digit string first, so both sides agree."""
    return min(local, remote) + max(local, remote)


def safety_number(
    card_a: ContactCard | IdentityBundle, card_b: ContactCard | IdentityBundle
) -> str:
    """The 60-digit safety number of two Pigeon identities, the same in either order."""
    return combine_fingerprints(_pigeon_fingerprint(card_a), _pigeon_fingerprint(card_b))


def _pigeon_fingerprint(card: ContactCard | IdentityBundle) -> str:
    bundle = card.bundle if isinstance(card, ContactCard) else card
    return numeric_fingerprint(bundle.public_key, PIGEON_STABLE_ID)


def safety_numbers_match(a: str, b: str) -> bool:
    """True if both are the same 60 digits, ignoring whitespace; constant time in the digits."""
    left = "".join(a.split()).encode("utf-8")
    right = "".join(b.split()).encode("utf-8")
    same = hmac.compare_digest(left, right)
    return same and len(left) == SAFETY_NUMBER_DIGITS and left.isdigit()


def safety_number_groups(number: str) -> tuple[str, ...]:
    """The 12 groups of 5 digits; raises ValueError unless `number` is 60 ASCII digits."""
    if len(number) != SAFETY_NUMBER_DIGITS or not (number.isascii() and number.isdigit()):
        raise ValueError(f"a safety number is {SAFETY_NUMBER_DIGITS} digits")
    return tuple(number[i : i + GROUP_DIGITS] for i in range(0, len(number), GROUP_DIGITS))


def format_safety_number(number: str, groups_per_line: int = 4) -> str:
    """Groups of 5 digits, space-separated, `groups_per_line` to a line (3 lines by default)."""
    groups = safety_number_groups(number)
    lines = (groups[i : i + groups_per_line] for i in range(0, len(groups), groups_per_line))
    return "\n".join(" ".join(line) for line in lines)
