"""Which recipient tags address whom: intro tags from cards, session tags from shared keys.

- Intro tag key of an identity: HMAC-SHA256(key = INTRO_LABEL, msg = Ed25519 public key), so
  anyone holding someone's card can reach them (handshake messages 1 and 3, and the first
  ratchet messages until a session tag key arrives).
- Session tag keys: 32 random bytes per contact, chosen by the recipient and sent inside the
  session (inner TAG_KEY message); envelopes to that contact then go to its tags.
- Reply tag key: 32 random bytes per initiation, in the HELLO envelope, for message 2 only.
Tags rotate daily with `pigeon.mesh.tags`: senders address today's tag, we serve
yesterday's, today's and tomorrow's of each key we hold, and announce only today's (a tag
announced on two days would chain a key's tags from day to day for a radio observer).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from pigeon.mesh.tags import announced_tag, day_number, derive_tag, tags_for_window

INTRO_LABEL: Final = b"pigeon/intro-tag-key/v1"


def intro_tag_key(identity_public_key: bytes) -> bytes:
    """The 32-byte intro tag key of an Ed25519 identity (public: derived from the card)."""
    return hmac.digest(INTRO_LABEL, identity_public_key, hashlib.sha256)


def address(tag_key: bytes, now: float) -> bytes:
    """Today's tag of `tag_key`, for addressing an envelope sent at `now`."""
    return derive_tag(tag_key, day_number(now))


@dataclass(frozen=True, slots=True)
class TagBook:
    """The tags we serve on one day and whose they are (None: the intro tags, anyone), and
    which of them we announce (today's only)."""

    day: int
    owners: dict[bytes, str | None]
    announced: frozenset[bytes]
    keys: dict[bytes, bytes]  # each served tag's tag key (a notice to it is sealed with it)

    @classmethod
    def build(
        cls,
        own_public_key: bytes,
        contact_keys: Iterable[tuple[str, bytes]],
        extra: Iterable[bytes],
        now: float,
    ) -> TagBook:
        """Intro tags, each contact's session tags and `extra` keys' tags (reply keys)."""
        owners: dict[bytes, str | None] = {}
        keys: dict[bytes, bytes] = {}
        keyed: list[tuple[bytes, str | None]] = [(intro_tag_key(own_public_key), None)]
        keyed.extend((key, None) for key in extra)
        keyed.extend((key, contact_id) for contact_id, key in contact_keys)
        for key, owner in keyed:
            for tag in tags_for_window(key, now):
                owners[tag] = owner
                keys[tag] = key
        announced = frozenset(announced_tag(key, now) for key, _ in keyed)
        return cls(day_number(now), owners, announced, keys)

    @property
    def tags(self) -> tuple[bytes, ...]:
        """Every served tag, sorted (for `ServeTags`: announced and silent)."""
        return tuple(sorted(self.owners))

    @property
    def announced_tags(self) -> tuple[bytes, ...]:
        """Today's tags, sorted: the only ones `ServeTags` may announce."""
        return tuple(sorted(self.announced))
