"""The neighbourhood's public bitchat chat for the owner's page: its capped history in the vault,
its own event stream, and posting under a nickname the owner chooses.

bitchat's public messages are signed plaintext that anyone in radio range reads; they are kept
apart from the owner's conversations (their own table, their own events). Lines heard while the
vault is locked are shown live but not stored. The daemon feeds `heard` and supplies `poster`,
which sends as a bitchat identity of the owner's page (not the node's, not the owner's Pigeon
identity) and returns the sent line, which comes back through `heard` first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Final, Protocol

from pigeon.messenger.events import EventHub, NeighbourhoodHeard, Subscription
from pigeon.store.errors import StoreError
from pigeon.store.vault import Vault
from pigeon.store.vault_records import PublicChatLine

HISTORY_CAP: Final = 500  # lines kept in the vault; older ones are deleted on write
PAGE_LINES: Final = 200
MAX_TEXT_CHARS: Final = 400  # bitchat's one-packet limit on what the node sends (bytes)
MAX_NICKNAME_BYTES: Final = 24

__all__ = ["HISTORY_CAP", "Neighbourhood", "NeighbourhoodError", "PublicChatLine"]

Poster = Callable[[str, str], PublicChatLine]


class VaultSource(Protocol):
    """The part of the vault keeper this module needs."""

    @property
    def is_unlocked(self) -> bool:
        """The vault is open."""
        ...

    @property
    def vault(self) -> Vault:
        """The open vault; raises Locked otherwise."""
        ...


class NeighbourhoodError(ValueError):
    """A post the page cannot make: no bitchat, an empty or too long nickname or text."""


class Neighbourhood:
    """History and live lines of bitchat's public chat around the node."""

    def __init__(self, keeper: VaultSource, poster: Poster | None = None) -> None:
        self._keeper = keeper
        self._poster = poster
        self._hub = EventHub()
        self.own_ids: set[bytes] = set()  # bitchat ids the owner posts as (their lines: mine)

    @property
    def can_post(self) -> bool:
        """bitchat runs on this node."""
        return self._poster is not None

    def set_poster(self, poster: Poster | None, own_id: bytes | None = None) -> None:
        """Where posts go from now on (the daemon's bitchat driver), and the id they carry."""
        self._poster = poster
        if own_id is not None:
            self.own_ids.add(own_id)

    def subscribe(self, wakeup: Callable[[], None] | None = None) -> Subscription:
        """Live lines from now on (`NeighbourhoodHeard` events)."""
        return self._hub.subscribe(wakeup=wakeup)

    def lines(self, limit: int = PAGE_LINES) -> list[PublicChatLine]:
        """The stored lines, oldest first; none while the vault is locked."""
        if not self._keeper.is_unlocked:
            return []
        return self._keeper.vault.neighbourhood(limit)

    def heard(self, line: PublicChatLine) -> None:
        """A public line was heard: store it (vault open) and tell the page."""
        if line.sender in self.own_ids and not line.mine:
            line = replace(line, mine=True)
        if self._keeper.is_unlocked:
            try:
                with self._keeper.vault.transaction() as tx:
                    seq = tx.append_neighbourhood(line, HISTORY_CAP)
            except StoreError:
                seq = 0  # shown live, not kept; the store logged why
            line = PublicChatLine(
                line.sender,
                line.nickname,
                line.body,
                line.sent_at_ms,
                line.heard_at,
                line.mine,
                seq,
            )
        self._hub.publish(NeighbourhoodHeard(line))

    def post(self, nickname: str, text: str) -> PublicChatLine:
        """Send `text` to bitchat's public chat as `nickname`; raises NeighbourhoodError."""
        nickname, text = nickname.strip(), text.strip()
        if self._poster is None:
            raise NeighbourhoodError("bitchat is off on this node")
        if not nickname or len(nickname.encode()) > MAX_NICKNAME_BYTES:
            raise NeighbourhoodError("a nickname needs 1 to 24 bytes")
        if not text or len(text.encode()) > MAX_TEXT_CHARS:
            raise NeighbourhoodError("a public message needs 1 to 400 bytes")
        return self._poster(nickname, text)
