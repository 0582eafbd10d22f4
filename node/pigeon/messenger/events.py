"""The messenger's event stream for live screens: subscriptions with a bounded, ordered buffer.

`EventHub.subscribe()` returns a `Subscription`; the hub appends every event to every open
subscription in publication order. A subscriber that falls more than `maxlen` events behind
loses its buffer and finds one `Resync` event instead (reload the views, then carry on).
`wakeup` (optional) is called after each append so an asyncio layer can set an Event; it must
not call back into the messenger. No asyncio here.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from pigeon.messenger.views import MessageView
from pigeon.store.vault_records import PublicChatLine

_LOGGER = logging.getLogger(__name__)

DEFAULT_MAXLEN: Final = 256


@dataclass(frozen=True, slots=True)
class MessageAdded:
    """A message was sent or received."""

    message: MessageView


@dataclass(frozen=True, slots=True)
class MessageUpdated:
    """A message changed state or file progress."""

    message: MessageView


@dataclass(frozen=True, slots=True)
class ContactsChanged:
    """Contacts were added, renamed, removed, verified, or their unread counts changed."""


@dataclass(frozen=True, slots=True)
class LockChanged:
    """The vault was locked or unlocked."""

    locked: bool


@dataclass(frozen=True, slots=True)
class Resync:
    """Events were lost to a full buffer: reload everything."""


@dataclass(frozen=True, slots=True)
class NeighbourhoodHeard:
    """A public bitchat message was heard (or posted by the owner); see `neighbourhood`."""

    line: PublicChatLine


Event = MessageAdded | MessageUpdated | ContactsChanged | LockChanged | Resync | NeighbourhoodHeard


class Subscription:
    """One subscriber's ordered, bounded queue of events."""

    __slots__ = ("_buffer", "_hub", "_maxlen", "closed", "wakeup")

    def __init__(self, hub: EventHub, maxlen: int, wakeup: Callable[[], None] | None) -> None:
        self._hub = hub
        self._maxlen = maxlen
        self._buffer: deque[Event] = deque()
        self.wakeup = wakeup
        self.closed = False

    def _push(self, event: Event) -> None:
        if len(self._buffer) >= self._maxlen:
            _LOGGER.debug("a subscriber fell behind: it gets a resync")
            self._buffer.clear()
            event = Resync()
        self._buffer.append(event)
        if self.wakeup is not None:
            self.wakeup()

    def get(self) -> Event | None:
        """The oldest pending event, or None when there is none."""
        return self._buffer.popleft() if self._buffer else None

    def drain(self) -> list[Event]:
        """Every pending event, oldest first."""
        events = list(self._buffer)
        self._buffer.clear()
        return events

    def __len__(self) -> int:
        return len(self._buffer)

    def close(self) -> None:
        """Stop receiving events; idempotent."""
        if not self.closed:
            self.closed = True
            self._hub.unsubscribe(self)


class EventHub:
    """Fans events out to subscriptions."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []

    def subscribe(
        self, maxlen: int = DEFAULT_MAXLEN, wakeup: Callable[[], None] | None = None
    ) -> Subscription:
        """A new subscription that sees every event published from now on."""
        if maxlen < 1:
            raise ValueError("maxlen must be at least 1")
        subscription = Subscription(self, maxlen, wakeup)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget `subscription` (its `close` calls this)."""
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def publish(self, event: Event) -> None:
        """Append `event` to every open subscription."""
        for subscription in list(self._subscriptions):
            subscription._push(event)
