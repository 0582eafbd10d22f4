"""Contacts: list and add (pasted card or QR photo), details, verification, own card."""

from __future__ import annotations

import asyncio
from typing import Final

from aiohttp import web
from markupsafe import Markup

from pigeon.messenger.api import DuplicateContact, InvalidCard, InvalidName, OwnCard
from pigeon.ui.web.context import commanded, find_contact, messenger, now, unread_of, unread_total
from pigeon.ui.web.errors import BadRequest, QrNotFound
from pigeon.ui.web.qr import MAX_PHOTO_BYTES, card_svg, decode_photo
from pigeon.ui.web.render import render_page
from pigeon.ui.web.requests import Upload, parse_minutes, read_form, read_multipart

MAX_CARD_FIELD_BYTES: Final = 8 * 1024
SAFETY_GROUP_DIGITS: Final = 5


async def contacts_page(request: web.Request) -> web.StreamResponse:
    """Every contact, and the add form."""
    return _contacts(request)


def _contacts(
    request: web.Request,
    *,
    error: str = "",
    status: int = 200,
    kept: tuple[str, str] = ("", ""),
) -> web.Response:
    """The page; after an error, the add form shows `kept` (name, card text) again."""
    extra = {"flash": error, "flash_kind": "bad"} if error else {}
    contacts = messenger(request).contacts()
    return render_page(
        request,
        "contacts.html",
        title="Contacts",
        page="contacts",
        section="contacts",
        http_status=status,
        contacts=contacts,
        unread=unread_of(contacts),
        kept_name=kept[0],
        kept_card=kept[1],
        **extra,
    )


async def add_contact(request: web.Request) -> web.StreamResponse:
    """POST /contacts (multipart: name, card text, or a photo of the card's QR)."""
    name, card_text, photo = await _add_form(request)
    kept = (name, card_text)
    try:
        if not card_text and photo:
            card_text = await asyncio.to_thread(decode_photo, photo)
        if not card_text:
            raise BadRequest("Paste their card, or choose a photo of its QR code.")
        contact = messenger(request).add_contact(card_text, name, now(request))
    except QrNotFound:
        error, status = "No QR code could be read in that photo.", 400
    except OwnCard:
        error, status = "That is your own card: add the card of someone you write to.", 400
    except InvalidCard:
        error, status = "That is not a valid contact card.", 400
    except DuplicateContact:
        error, status = "You have this contact already.", 409
    except InvalidName as exc:
        error, status = f"{str(exc).capitalize()}.", 400
    except BadRequest as exc:
        error, status = str(exc), 400
    else:
        commanded(request)
        raise web.HTTPSeeOther(f"/contacts/{contact.id}?flash=added")
    return _contacts(request, error=error, status=status, kept=kept)


async def _add_form(request: web.Request) -> tuple[str, str, bytes]:
    """(name, card text, photo bytes) from the multipart form, or from a plain form."""
    if request.content_type != "multipart/form-data":
        form = await read_form(request, MAX_CARD_FIELD_BYTES)
        return form.get("name", ""), form.get("card", "").strip(), b""
    fields = await read_multipart(
        request, {"name": 256, "card": MAX_CARD_FIELD_BYTES, "photo": MAX_PHOTO_BYTES}
    )
    photo = fields.get("photo")
    return (
        _text(fields.get("name")),
        _text(fields.get("card")).strip(),
        photo.data if photo else b"",
    )


def _text(upload: Upload | None) -> str:
    try:
        return upload.data.decode("utf-8") if upload is not None else ""
    except UnicodeDecodeError as exc:
        raise BadRequest("form text must be UTF-8") from exc


async def contact_page(request: web.Request) -> web.StreamResponse:
    """One contact: safety number, verification, name, check-in interval, relays."""
    contacts = messenger(request).contacts()
    contact = find_contact(contacts, request.match_info["contact_id"])
    number = contact.safety_number
    groups = [
        number[i : i + SAFETY_GROUP_DIGITS] for i in range(0, len(number), SAFETY_GROUP_DIGITS)
    ]
    return render_page(
        request,
        "contact.html",
        title=contact.name,
        page="contact",
        section="contacts",
        contact=contact,
        safety_groups=groups,
        unread=unread_of(contacts),
    )


async def verify(request: web.Request) -> web.StreamResponse:
    """The owner compared the number shown and it matched."""
    contact_id = request.match_info["contact_id"]
    form = await read_form(request)
    messenger(request).mark_verified(contact_id, form.get("safety_number", ""), now(request))
    commanded(request)
    raise web.HTTPSeeOther(f"/contacts/{contact_id}?flash=verified")


async def rename(request: web.Request) -> web.StreamResponse:
    """Give a contact another display name."""
    contact_id = request.match_info["contact_id"]
    form = await read_form(request)
    messenger(request).rename_contact(contact_id, form.get("name", ""))
    commanded(request)
    raise web.HTTPSeeOther(f"/contacts/{contact_id}?flash=renamed")


async def check_in(request: web.Request) -> web.StreamResponse:
    """Set how often queued envelopes to this contact are re-offered."""
    contact_id = request.match_info["contact_id"]
    minutes = parse_minutes((await read_form(request)).get("minutes", ""))
    messenger(request).set_check_in_interval(contact_id, minutes * 60.0)
    commanded(request)
    raise web.HTTPSeeOther(f"/contacts/{contact_id}?flash=interval")


async def remove(request: web.Request) -> web.StreamResponse:
    """Forget a contact and the conversation."""
    messenger(request).remove_contact(request.match_info["contact_id"])
    commanded(request)
    raise web.HTTPSeeOther("/contacts?flash=removed")


async def card_page(request: web.Request) -> web.StreamResponse:
    """Our own contact card as a QR code and as text."""
    card_text = messenger(request).own_card_text()
    app_link = messenger(request).own_app_card_link()
    svg = await asyncio.to_thread(card_svg, card_text)
    app_svg = await asyncio.to_thread(card_svg, app_link)
    return render_page(
        request,
        "card.html",
        title="My card",
        page="card",
        section="contacts",
        card_text=card_text,
        qr_svg=Markup(svg),  # segno's own markup: paths only, no text from anyone
        app_card_link=app_link,
        app_qr_svg=Markup(app_svg),
        unread=unread_total(request),
    )
