"""Which recipient tags address whom: intro tags from cards, session tags from shared keys.

- Intro tag key of an identity: HMAC-SHA256(key = INTRO_LABEL, msg = Ed25519 public key), so
  anyone holding someone's card can reach them (handshake messages 1 and 3, and the first
  ratchet messages until a session tag key arrives).
- Session tag keys: 32 random bytes per contact, chosen by the recipient and sent inside the
  session (inner TAG_KEY message); envelopes to that contact then go to its tags.
- Reply tag key: 32 random bytes per initiation, in the HELLO envelope, for message 2 only.
Tags rotate daily with `pigeon.mesh.tags`: senders address today's tag, we serve
yesterday's, today's and tomorrow's of each key we hold.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from pigeon.mesh.tags import day_number, derive_tag, tags_for_window

INTRO_LABEL: Final = b"pigeon/intro-tag-key/v1"


def intro_tag_key(identity_public_key: bytes) -> bytes:
    """The 32-byte intro tag key of an Ed25519 identity (public: derived from the card)."""
    return hmac.digest(INTRO_LABEL, identity_public_key, hashlib.sha256)


def address(tag_key: bytes, now: float) -> bytes:
    """Today's tag of `tag_key`, for addressing an envelope sent at `now`."""
    return derive_tag(tag_key, day_number(now))


@dataclass(frozen=True, slots=True)
class TagBook:
    """The tags we serve on one day and whose they are (None: the intro tags, anyone)."""

    day: int
    owners: dict[bytes, str | None]

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
        for key in (intro_tag_key(own_public_key), *extra):
            for tag in tags_for_window(key, now):
                owners[tag] = None
        for contact_id, key in contact_keys:
            for tag in tags_for_window(key, now):
                owners[tag] = contact_id
        return cls(day_number(now), owners)

    @property
    def tags(self) -> tuple[bytes, ...]:
        """Every served tag, sorted (for `ServeTags`)."""
        return tuple(sorted(self.owners))
