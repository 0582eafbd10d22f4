"""What the chat page shows of one conversation, rendered once and kept until something changes.

Reading and rendering 100 messages costs several times what the rest of the page does
(bench/bench_web.py), yet a conversation is shown again and again unchanged: when the owner
comes back to it, reloads, or opens it on a second browser. So the messenger's part of the page
(the contact, the rendered message list, the unread badge) is kept per conversation, and every
messenger event (message added or updated, contacts changed, lock changed, resync) drops all of
it: the events are how the live page learns of every change, so a kept view is never stale.
Each message's HTML is kept beside it, keyed by its view (a frozen value: an equal view renders
the same HTML), so after a change only new or changed messages are rendered again. The lock (or
a resync) drops those too: no message text stays in the web layer while the vault is locked.
The rest of the page (flash, reset notice, the request's own state) is rendered per request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from aiohttp import web
from markupsafe import Markup

from pigeon.messenger.api import (
    ContactView,
    LockChanged,
    MessageView,
    Messenger,
    Resync,
    Subscription,
)
from pigeon.ui.web.context import find_contact, unread_of

PAGE_MESSAGES: Final = 100  # the script's "Load older messages" pages back in steps of this
MAX_KEPT_CHATS: Final = 8  # about 40 KB each with 100 messages, and as much again of fragments

_V = TypeVar("_V")
RenderMessage = Callable[[MessageView], Markup]
Fragments = dict[MessageView, Markup]


@dataclass(frozen=True, slots=True)
class ChatView:
    """One conversation as the chat page shows it; `oldest_seq` is None without messages."""

    contact: ContactView
    messages_html: Markup
    oldest_seq: int | None
    has_older: bool
    unread: int  # over every contact, for the Chats tab badge


class ChatViews:
    """Chat views kept until the messenger publishes its next event."""

    def __init__(self, messenger: Messenger, render_message: RenderMessage) -> None:
        self._messenger = messenger
        self._render = render_message
        self._lock = threading.Lock()  # events may come from other threads (an unlock does)
        self._generation = 0
        self._kept: dict[str, tuple[int, ChatView]] = {}
        self._fragments: dict[str, Fragments] = {}  # per kept conversation
        self._subscription: Subscription | None = None
        self._subscription = messenger.subscribe(maxlen=1, wakeup=self._changed)

    def _changed(self) -> None:
        events = self._subscription.drain() if self._subscription is not None else []
        texts_go = not events or any(isinstance(e, LockChanged | Resync) for e in events)
        with self._lock:
            self._generation += 1
            self._kept.clear()
            if texts_go:
                self._fragments.clear()

    def view(self, contact_id: str) -> ChatView:
        """The conversation with `contact_id`; raises HTTPNotFound, or the messenger's errors."""
        generation = self._generation
        kept = self._kept.get(contact_id)
        if kept is not None and kept[0] == generation and not self._messenger.is_locked:
            return kept[1]
        view, fragments = self._build(contact_id)
        with self._lock:
            if self._generation == generation:  # nothing changed while it was read: keep it
                _put(self._kept, contact_id, (generation, view))
                _put(self._fragments, contact_id, fragments)
        return view

    def _build(self, contact_id: str) -> tuple[ChatView, Fragments]:
        contacts = self._messenger.contacts()
        contact = find_contact(contacts, contact_id)
        messages = self._messenger.conversation(contact.id, limit=PAGE_MESSAGES)
        known = self._fragments.get(contact.id, {})
        rendered = [known.get(m) or self._render(m) for m in messages]
        fragments = dict(zip(messages, rendered, strict=True))
        view = ChatView(
            contact=contact,
            # Each fragment is Markup already: Markup.join would pass every one through escape.
            messages_html=Markup("".join(rendered)),
            oldest_seq=messages[0].seq if messages else None,
            has_older=len(messages) == PAGE_MESSAGES,
            unread=unread_of(contacts),
        )
        with self._lock:  # a removed contact's texts go with it
            present = {c.id for c in contacts}
            for gone in [key for key in self._fragments if key not in present]:
                del self._fragments[gone]
        return view, fragments

    def clear(self) -> None:
        """Forget every kept view and fragment (the next view reads and renders everything)."""
        with self._lock:
            self._generation += 1
            self._kept.clear()
            self._fragments.clear()

    def close(self) -> None:
        """Stop following the messenger and forget every view; idempotent."""
        if self._subscription is not None:
            self._subscription.close()
        self.clear()


def _put(kept: dict[str, _V], contact_id: str, value: _V) -> None:
    """Store `value` as the newest entry, dropping the oldest beyond MAX_KEPT_CHATS."""
    kept.pop(contact_id, None)
    if len(kept) >= MAX_KEPT_CHATS:
        del kept[next(iter(kept))]
    kept[contact_id] = value


CHAT_VIEWS: Final = web.AppKey("chat_views", ChatViews)
