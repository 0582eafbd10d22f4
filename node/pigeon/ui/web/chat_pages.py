"""Conversations: the list of chats, and one chat (live updates come over /ws)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiohttp import web

from pigeon.messenger.api import MessageView
from pigeon.ui.web.chat_views import CHAT_VIEWS
from pigeon.ui.web.context import messenger
from pigeon.ui.web.keys import CONFIG
from pigeon.ui.web.render import render_page

PREVIEW_CHARS: Final = 80


async def chats_page(request: web.Request) -> web.StreamResponse:
    """Contacts with their latest message, most recent first."""
    owner = messenger(request)
    contacts = sorted(owner.contacts(), key=lambda c: -c.last_activity)
    previews: dict[str, Preview] = {}
    for contact in contacts:
        latest = owner.conversation(contact.id, limit=1)
        if latest:
            previews[contact.id] = _preview(latest[-1])
    return render_page(
        request,
        "chats.html",
        title="Chats",
        page="chats",
        section="chats",
        contacts=contacts,
        previews=previews,
        unread=sum(c.unread for c in contacts),
    )


@dataclass(frozen=True, slots=True)
class Preview:
    """A conversation's latest message in the list: our words, then theirs (or ours) apart, so
    the page can isolate the message's text direction from the words around it."""

    prefix: str
    text: str


def _preview(message: MessageView) -> Preview:
    prefix = "You: " if message.direction == "out" else ""
    if message.kind == "file":
        return Preview(prefix + "File: ", (message.file_name or "")[:PREVIEW_CHARS])
    return Preview(prefix, (message.text or "")[:PREVIEW_CHARS])


async def chat_page(request: web.Request) -> web.StreamResponse:
    """One conversation with the composer."""
    chat = request.app[CHAT_VIEWS].view(request.match_info["contact_id"])
    max_upload = request.app[CONFIG].max_upload_bytes
    return render_page(
        request,
        "chat.html",
        title=chat.contact.name,
        page="chat",
        section="chats",
        contact=chat.contact,
        messages_html=chat.messages_html,
        oldest_seq=chat.oldest_seq,
        has_older=chat.has_older,
        max_upload=max_upload,
        data={"contact": chat.contact.id, "max-upload": max_upload},
        unread=chat.unread,
    )
