"""What an envelope's recipient tag is to us, from the tag alone (sans-IO).

The tag decides, never a search over the contacts:
- a contact's session tag: that contact only, Olm normal messages only (its sessions);
- our intro tag (public: anyone with our card computes it): first-contact envelopes only,
  i.e. Olm pre-key messages and prekey requests and answers, each naming its sender, so
  each goes to that one contact's record and at most one account operation;
- any other tag: nothing (the router serves only our tags; a relay mailbox takes anything).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pigeon.mesh.tags import tags_for_window
from pigeon.messenger.addressing import TagBook, intro_tag_key


class RouteKind(Enum):
    """What an envelope's recipient tag is to us."""

    UNSERVED = "unserved"
    INTRO = "intro"
    SESSION = "session"


@dataclass(frozen=True, slots=True)
class Routes:
    """The served tags (`book`) and which of them are our intro tags."""

    book: TagBook
    intro_tags: frozenset[bytes]

    @classmethod
    def build(cls, book: TagBook, own_public_key: bytes, now: float) -> Routes:
        """Routes over `book` (built at `now` too)."""
        return cls(book, frozenset(tags_for_window(intro_tag_key(own_public_key), now)))

    def kind(self, tag: bytes) -> RouteKind:
        """What `tag` is to us."""
        if tag not in self.book.owners:
            return RouteKind.UNSERVED
        if self.book.owners[tag] is not None:
            return RouteKind.SESSION
        return RouteKind.INTRO if tag in self.intro_tags else RouteKind.UNSERVED

    def owner(self, tag: bytes) -> str | None:
        """The contact whose session tag `tag` is, if it is one."""
        return self.book.owners.get(tag)
