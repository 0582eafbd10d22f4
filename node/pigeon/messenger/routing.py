"""Which sessions may open an envelope, from its recipient tag alone (sans-IO).

The tag decides, never a search over the contacts:
- a contact's session tag: that contact's session only;
- our intro tag (public: anyone with our card computes it): handshake messages 1 and 3, and
  ratchet messages only for sessions in their *intro window*, i.e. whose contact may still lack
  our session tag key. The window is open with new ratchet keys allowed (DH steps) from the
  moment a session is established until the contact first writes to our session tag (then it
  has our key); after that, for `envelope_lifetime_s` more, it admits only messages under
  the ratchet keys the session knew right then (envelopes the contact wrote to our intro tag
  before it learnt our key, still being retried, can be under no other: the peer's chains
  follow one another, and we stepped onto each before the peer could start the next): no DH
  step, and a header under any other key is not tried at all. Then it is closed;
- a reply tag (ours, for message 2 of our own initiation): handshake replies only;
- any other tag: nothing (the router serves only our tags; a relay mailbox takes anything).
When the contact first wrote to our session tag, and the ratchet keys known then, are kept in
the vault as owner secret `intro-closed:<contact id>` (`IntroClosed`); a new session deletes it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

from pigeon.mesh.tags import tags_for_window
from pigeon.messenger.addressing import TagBook, intro_tag_key
from pigeon.messenger.errors import MalformedEnvelope

INTRO_CLOSED_PREFIX: Final = "intro-closed:"
_CLOSED_HEAD: Final = struct.Struct(">BdB")
_CLOSED_VERSION: Final = 1
_KEY_LEN: Final = 32
MAX_CLOSED_KEYS: Final = 255


class RouteKind(Enum):
    """What an envelope's recipient tag is to us."""

    UNSERVED = "unserved"
    INTRO = "intro"
    REPLY = "reply"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class IntroWindow:
    """A session that may still get ratchet messages on our intro tag."""

    contact_id: str
    closed: IntroClosed | None  # None: the contact may not have our tag key (new chains expected)


@dataclass(frozen=True, slots=True)
class Try:
    """One session to try an envelope with, and whether it may take a DH step for it."""

    contact_id: str
    new_chain: bool


@dataclass(frozen=True, slots=True)
class Routes:
    """The served tags (`book`), which of them are intro tags, and the open intro windows:
    those that wait for their tag key, and the others by the ratchet keys they admit."""

    book: TagBook
    intro_tags: frozenset[bytes]
    waiting: frozenset[str]  # contacts whose intro window admits new chains
    by_key: Mapping[bytes, tuple[tuple[str, float], ...]]  # key -> (contact, closed at)
    tail_s: float

    @classmethod
    def build(
        cls,
        book: TagBook,
        own_public_key: bytes,
        windows: Iterable[IntroWindow],
        tail_s: float,
        now: float,
    ) -> Routes:
        """Routes over `book` (built at `now` too); `tail_s` is the envelope lifetime."""
        intro = frozenset(tags_for_window(intro_tag_key(own_public_key), now))
        waiting: set[str] = set()
        by_key: dict[bytes, list[tuple[str, float]]] = {}
        for window in windows:
            if window.closed is None:
                waiting.add(window.contact_id)
            elif now < window.closed.at + tail_s:
                for key in window.closed.keys:
                    by_key.setdefault(key, []).append((window.contact_id, window.closed.at))
        keys = {key: tuple(owners) for key, owners in by_key.items()}
        return cls(book, intro, frozenset(waiting), keys, tail_s)

    def kind(self, tag: bytes) -> RouteKind:
        """What `tag` is to us."""
        if tag not in self.book.owners:
            return RouteKind.UNSERVED
        if self.book.owners[tag] is not None:
            return RouteKind.SESSION
        return RouteKind.INTRO if tag in self.intro_tags else RouteKind.REPLY

    def tries(self, tag: bytes, ratchet_key: bytes, now: float) -> list[Try]:
        """The sessions a ratchet message to `tag` under the sender's `ratchet_key` (its
        header's first 32 bytes) may be for, at `now`."""
        kind = self.kind(tag)
        if kind is RouteKind.SESSION:
            owner = self.book.owners[tag]
            assert owner is not None  # SESSION tags have an owner
            return [Try(owner, True)]
        if kind is not RouteKind.INTRO:
            return []
        tries = [Try(contact_id, True) for contact_id in sorted(self.waiting)]
        for contact_id, closed_at in self.by_key.get(ratchet_key, ()):
            if now < closed_at + self.tail_s:
                tries.append(Try(contact_id, False))
        return tries

    def waits_for_tag_key(self, contact_id: str) -> bool:
        """Whether the contact's intro window is open with new chains allowed."""
        return contact_id in self.waiting


@dataclass(frozen=True, slots=True)
class IntroClosed:
    """When a contact first wrote to our session tag, and the ratchet keys known then."""

    at: float
    keys: frozenset[bytes]

    def to_bytes(self) -> bytes:
        """u8 version | f64 time | u8 count | count keys of 32 bytes (sorted)."""
        keys = sorted(self.keys)[:MAX_CLOSED_KEYS]
        return _CLOSED_HEAD.pack(_CLOSED_VERSION, self.at, len(keys)) + b"".join(keys)

    @classmethod
    def from_bytes(cls, data: bytes) -> IntroClosed:
        """Parse `to_bytes`; raises MalformedEnvelope."""
        if len(data) < _CLOSED_HEAD.size or data[0] != _CLOSED_VERSION:
            raise MalformedEnvelope("intro-closed record is malformed")
        _, at, count = _CLOSED_HEAD.unpack_from(data)
        body = data[_CLOSED_HEAD.size :]
        if len(body) != count * _KEY_LEN:
            raise MalformedEnvelope("intro-closed record has the wrong length")
        keys = frozenset(body[i : i + _KEY_LEN] for i in range(0, len(body), _KEY_LEN))
        return cls(float(at), keys)
