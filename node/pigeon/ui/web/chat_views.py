"""What the chat page shows of one conversation, rendered once and kept until something changes.

Rendering 100 messages through the Jinja macro costs several times what the rest of the page
does (bench/bench_web.py), yet a conversation is shown again and again unchanged: when the owner
comes back to it, reloads, or opens it on a second browser. So the messenger's part of the page
(the contact, the rendered message list, the unread badge) is kept per conversation, and every
messenger event (message added or updated, contacts changed, lock changed, resync) drops all of
it: the events are how the live page learns of every change, so a kept view is never stale.
Dropping on the lock also keeps no message text in the web layer while the vault is locked.
The rest of the page (flash, reset notice, the request's own state) is rendered per request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from markupsafe import Markup

from pigeon.messenger.api import ContactView, MessageView, Messenger, Subscription
from pigeon.ui.web.context import find_contact, unread_of

PAGE_MESSAGES: Final = 100  # the script's "Load older messages" pages back in steps of this
MAX_KEPT_CHATS: Final = 8  # about 40 KB each with 100 messages

RenderMessages = Callable[[Sequence[MessageView]], Markup]


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

    def __init__(self, messenger: Messenger, render_messages: RenderMessages) -> None:
        self._messenger = messenger
        self._render = render_messages
        self._lock = threading.Lock()  # events may come from other threads (an unlock does)
        self._generation = 0
        self._kept: dict[str, tuple[int, ChatView]] = {}
        self._subscription: Subscription | None = None
        self._subscription = messenger.subscribe(maxlen=1, wakeup=self._changed)

    def _changed(self) -> None:
        self.clear()
        if self._subscription is not None:
            self._subscription.drain()  # only the fact of a change matters, not the event

    def view(self, contact_id: str) -> ChatView:
        """The conversation with `contact_id`; raises HTTPNotFound, or the messenger's errors."""
        generation = self._generation
        kept = self._kept.get(contact_id)
        if kept is not None and kept[0] == generation and not self._messenger.is_locked:
            return kept[1]
        view = self._build(contact_id)
        with self._lock:
            if self._generation == generation:  # nothing changed while it was read: keep it
                if len(self._kept) >= MAX_KEPT_CHATS:
                    del self._kept[next(iter(self._kept))]
                self._kept[contact_id] = (generation, view)
        return view

    def _build(self, contact_id: str) -> ChatView:
        contacts = self._messenger.contacts()
        contact = find_contact(contacts, contact_id)
        messages = self._messenger.conversation(contact.id, limit=PAGE_MESSAGES)
        return ChatView(
            contact=contact,
            messages_html=self._render(messages),
            oldest_seq=messages[0].seq if messages else None,
            has_older=len(messages) == PAGE_MESSAGES,
            unread=unread_of(contacts),
        )

    def clear(self) -> None:
        """Forget every kept view (the next view of each conversation reads and renders it)."""
        with self._lock:
            self._generation += 1
            self._kept.clear()

    def close(self) -> None:
        """Stop following the messenger and forget every view; idempotent."""
        if self._subscription is not None:
            self._subscription.close()
        self.clear()


CHAT_VIEWS: Final = web.AppKey("chat_views", ChatViews)
