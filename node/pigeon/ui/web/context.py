"""Small helpers every handler shares: the clock, and telling the daemon about new packets."""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from pigeon.messenger.api import ContactView, Messenger
from pigeon.ui.web.keys import CONFIG, MESSENGER


def now(request: web.Request) -> float:
    """Unix time from the app's clock."""
    return request.app[CONFIG].clock()


def messenger(request: web.Request) -> Messenger:
    """The owner's messenger."""
    return request.app[MESSENGER]


def commanded(request: web.Request, packets: Sequence[object] = ()) -> None:
    """A messenger command ran: let the daemon send what it produced now."""
    request.app[CONFIG].on_outgoing(packets)


def unread_of(contacts: Sequence[ContactView]) -> int:
    """Unread messages over `contacts`, for the Chats tab badge."""
    return sum(contact.unread for contact in contacts)


def unread_total(request: web.Request) -> int:
    """Unread messages over all contacts (0 while locked)."""
    owner = request.app[MESSENGER]
    return 0 if owner.is_locked else unread_of(owner.contacts())


def find_contact(contacts: Sequence[ContactView], contact_id: str) -> ContactView:
    """The contact with `contact_id` in a list already fetched (the messenger computes every
    contact's safety number on each listing, so pages list contacts once). Raises HTTPNotFound."""
    for contact in contacts:
        if contact.id == contact_id:
            return contact
    raise web.HTTPNotFound(text="no such contact")
