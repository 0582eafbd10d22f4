"""Receipts (version 2): a secret hidden in the envelope, its hash in the packet header.

The sender draws `RECEIPT_SECRET_LEN` random bytes, puts them inside the encrypted envelope and
`receipt_hash(secret)` in the clear header. Only someone who decrypted the envelope (the
recipient) or wrote it (the sender) knows the secret, so revealing it proves delivery; forging
that means finding a SHA-256 preimage of a 128-bit truncation.

The recipient answers with two packets, so that nothing in the clear links the envelope's tag
to the sender's:
- a RECEIPT revealing the secret, addressed to the envelope's own tag: every spool clears the
  envelopes whose receipt hash it matches (keyed on the hash: it names no envelope id and no
  other tag);
- a NOTICE to the sender's tag: the secret and the envelope id sealed under the tag key of that
  tag (`seal_notice`), which only the two ends hold. Without the key its 32 bytes are
  unrelated to the envelope; the sender opens it and checks the secret against the hash.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final, NamedTuple

RECEIPT_SECRET_LEN: Final = 16
RECEIPT_HASH_LEN: Final = 16
RECEIPT_HASH_LABEL: Final = b"pigeon/receipt/v1"
NOTICE_LABEL: Final = b"pigeon/receipt-notice/v1"
NOTICE_ID_LEN: Final = 16
NOTICE_LEN: Final = RECEIPT_SECRET_LEN + NOTICE_ID_LEN


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


class Notice(NamedTuple):
    """What a notice says once opened: the receipt secret and the id of the envelope."""

    secret: bytes
    envelope_id: bytes


def seal_notice(tag_key: bytes, secret: bytes, envelope_id: bytes) -> bytes:
    """The 32-byte notice payload for `envelope_id`, sealed under `tag_key` (the key of the
    tag the notice is addressed to); raises ValueError on bad lengths.

    A two-round Feistel network over (secret, id) with HMAC-SHA256 rounds keyed by the tag key:
    c = secret ^ F(k, "s", id), e = id ^ F(k, "i", c). Each (secret, id) is fresh, so without
    the key c and e are unpredictable, and testing a guessed envelope against a notice needs
    F at a point nobody without the key can compute.
    """
    if len(secret) != RECEIPT_SECRET_LEN:
        raise ValueError(f"receipt secret must be {RECEIPT_SECRET_LEN} bytes")
    if len(envelope_id) != NOTICE_ID_LEN:
        raise ValueError(f"envelope id must be {NOTICE_ID_LEN} bytes")
    sealed_secret = _xor(secret, _round(tag_key, b"s", envelope_id))
    return sealed_secret + _xor(envelope_id, _round(tag_key, b"i", sealed_secret))


def open_notice(tag_key: bytes, payload: bytes) -> Notice:
    """Undo `seal_notice` (any 32 bytes open to something: check the secret against the
    envelope's receipt hash); raises ValueError on a bad length."""
    if len(payload) != NOTICE_LEN:
        raise ValueError(f"notice must be {NOTICE_LEN} bytes")
    sealed_secret, sealed_id = payload[:RECEIPT_SECRET_LEN], payload[RECEIPT_SECRET_LEN:]
    envelope_id = _xor(sealed_id, _round(tag_key, b"i", sealed_secret))
    return Notice(_xor(sealed_secret, _round(tag_key, b"s", envelope_id)), envelope_id)


def _round(tag_key: bytes, which: bytes, data: bytes) -> bytes:
    return hmac.digest(tag_key, NOTICE_LABEL + which + data, hashlib.sha256)[:16]


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")
