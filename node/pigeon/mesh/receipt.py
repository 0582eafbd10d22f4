"""Authenticated receipts: a secret hidden in the envelope, its hash in the packet header.

The sender draws `RECEIPT_SECRET_LEN` random bytes, puts them inside the encrypted envelope and
`receipt_hash(secret)` in the clear header. Only someone who decrypted the envelope (the
recipient) or wrote it (the sender) knows the secret, so a receipt that reveals it proves
delivery; forging one means finding a SHA-256 preimage of a 128-bit truncation.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

RECEIPT_SECRET_LEN: Final = 16
RECEIPT_HASH_LEN: Final = 16
RECEIPT_HASH_LABEL: Final = b"pigeon/receipt/v1"


def receipt_hash(secret: bytes) -> bytes:
    """SHA-256(label || secret)[:RECEIPT_HASH_LEN]; raises ValueError on a bad secret length."""
    if len(secret) != RECEIPT_SECRET_LEN:
        raise ValueError(f"receipt secret must be {RECEIPT_SECRET_LEN} bytes")
    return hashlib.sha256(RECEIPT_HASH_LABEL + secret).digest()[:RECEIPT_HASH_LEN]


def verify_receipt(secret: bytes, expected_hash: bytes) -> bool:
    """True only if `secret` hashes to `expected_hash` (constant-time compare); never raises."""
    if len(secret) != RECEIPT_SECRET_LEN or len(expected_hash) != RECEIPT_HASH_LEN:
        return False
    return hmac.compare_digest(receipt_hash(secret), expected_hash)
