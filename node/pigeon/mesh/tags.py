"""Recipient tags: daily-rotating addresses derived from a tag key, unlinkable across days.

tag = HMAC-SHA256(key = tag_key, msg = TAG_LABEL || day as u32 big-endian)[:length], where day
is the number of whole UTC days since the Unix epoch. Whoever holds the tag key (the recipient
and the contacts it shared the key with) can compute any day's tag; a radio observer without
the key sees unrelated random strings each day.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
from typing import Final

SECONDS_PER_DAY: Final = 86_400
TAG_LABEL: Final = b"pigeon/tag/v1"
MIN_TAG_LEN: Final = 8
MAX_TAG_LEN: Final = 16
MIN_TAG_KEY_LEN: Final = 16
MAX_DAY: Final = 0xFFFF_FFFF

_DAY: Final = struct.Struct(">I")


def day_number(now_s: float) -> int:
    """Whole UTC days since 1970-01-01 at unix time `now_s`; raises ValueError before 1970."""
    if not (now_s >= 0 and math.isfinite(now_s)):
        raise ValueError("time must be a finite, non-negative unix time")
    return int(now_s // SECONDS_PER_DAY)


def derive_tag(tag_key: bytes, day: int, length: int = MAX_TAG_LEN) -> bytes:
    """The `length`-byte tag of `tag_key` on `day`; raises ValueError on bad key, day or length."""
    if len(tag_key) < MIN_TAG_KEY_LEN:
        raise ValueError(f"tag key must be at least {MIN_TAG_KEY_LEN} bytes")
    if not 0 <= day <= MAX_DAY:
        raise ValueError("day out of range")
    if not MIN_TAG_LEN <= length <= MAX_TAG_LEN:
        raise ValueError(f"tag length must be {MIN_TAG_LEN}..{MAX_TAG_LEN}")
    mac = hmac.digest(tag_key, TAG_LABEL + _DAY.pack(day), hashlib.sha256)
    return mac[:length]


def tags_for_window(tag_key: bytes, now_s: float, length: int = MAX_TAG_LEN) -> tuple[bytes, ...]:
    """Today's tag, then yesterday's and tomorrow's (where they exist), to absorb clock skew.

    A sender addresses with its own today; a recipient serves all three, so clocks up to a day
    apart still meet around midnight. Only the first (`announced_tag`) may be announced: the
    others are served silently, since announcing a day's tag on two days would let an observer
    chain one key's tags from day to day.
    """
    today = day_number(now_s)
    days = [today, today - 1, today + 1]
    return tuple(derive_tag(tag_key, day, length) for day in days if 0 <= day <= MAX_DAY)


def announced_tag(tag_key: bytes, now_s: float, length: int = MAX_TAG_LEN) -> bytes:
    """Today's tag of `tag_key`: the only one of its window a node may announce."""
    return derive_tag(tag_key, day_number(now_s), length)
