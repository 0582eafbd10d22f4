"""Sealing of persisted Olm state: a versioned protobuf body and an HMAC-SHA256 tag.

vodozemac encrypts and authenticates its own pickle under the pickle key; the bookkeeping we
keep beside it (public keys, digests, a time) is authenticated here under a key derived from
the same pickle key, so a blob edited outside (or restored with another key) never loads.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from pigeon.crypto.errors import MalformedInput

PICKLE_KEY_LEN: Final = 32
TAG_LEN: Final = 32


def check_pickle_key(pickle_key: bytes) -> None:
    """Raise MalformedInput unless `pickle_key` is 32 bytes (what vodozemac requires)."""
    if len(pickle_key) != PICKLE_KEY_LEN:
        raise MalformedInput(f"a pickle key is {PICKLE_KEY_LEN} bytes")


def _tag(label: bytes, pickle_key: bytes, body: bytes) -> bytes:
    key = hmac.digest(pickle_key, label, hashlib.sha256)
    return hmac.digest(key, body, hashlib.sha256)


def seal(label: bytes, pickle_key: bytes, body: bytes) -> bytes:
    """`body || tag`, the tag bound to `label` (one per kind of state)."""
    check_pickle_key(pickle_key)
    return body + _tag(label, pickle_key, body)


def unseal(label: bytes, pickle_key: bytes, blob: bytes) -> bytes:
    """The body of a sealed blob; raises MalformedInput if the tag does not verify."""
    check_pickle_key(pickle_key)
    if len(blob) < TAG_LEN:
        raise MalformedInput("sealed Olm state is truncated")
    body, tag = blob[:-TAG_LEN], blob[-TAG_LEN:]
    if not hmac.compare_digest(tag, _tag(label, pickle_key, body)):
        raise MalformedInput("sealed Olm state does not authenticate under this key")
    return body
