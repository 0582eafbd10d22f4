"""Settings (vault, ephemeral mode, check-in interval, mailbox hints, card profile, paired
browsers) and unlock."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from pigeon.messenger.api import InvalidCard, VaultLocked, WrongPassphrase
from pigeon.ui.web.context import commanded, messenger, now, unread_of
from pigeon.ui.web.errors import BadRequest
from pigeon.ui.web.keys import CONFIG, PAIRING, SESSION, STATUS
from pigeon.ui.web.render import render_page
from pigeon.ui.web.requests import parse_minutes, read_form

MIN_PASSPHRASE_CHARS: Final = 8
MAX_PASSPHRASE_CHARS: Final = 1024
DEFAULT_CHECK_IN_MINUTES: Final = 5
LOCK_NEEDS_PASSPHRASE: Final = (
    "Set a passphrase first: until then only this node can open the vault, so a locked vault"
    " could not be unlocked from this page."
)


async def settings_page(request: web.Request) -> web.StreamResponse:
    """Everything the owner can change."""
    return _settings(request)


def _settings(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    owner = messenger(request)
    contacts = owner.contacts()
    intervals = {round(c.check_in_interval_s / 60) for c in contacts}
    minutes = intervals.pop() if len(intervals) == 1 else DEFAULT_CHECK_IN_MINUTES
    extra = {"flash": error, "flash_kind": "bad"} if error else {}
    return render_page(
        request,
        "settings.html",
        title="Settings",
        page="settings",
        section="settings",
        http_status=status,
        passphrase_set=request.app[CONFIG].passphrase_set(),
        ephemeral=owner.ephemeral,
        mailbox_hints=owner.mailbox_hints,
        check_in_minutes=minutes,
        relays=request.app[STATUS].status().relays,
        sessions=request.app[PAIRING].sessions(),
        current_session=request[SESSION].session_id,
        unread=unread_of(contacts),
        **extra,
    )


async def lock(request: web.Request) -> web.StreamResponse:
    """Close the vault now; refused while no passphrase is set (nothing could open it again)."""
    if not request.app[CONFIG].passphrase_set():
        return _settings(request, error=LOCK_NEEDS_PASSPHRASE, status=409)
    messenger(request).lock(now(request))
    commanded(request)
    raise web.HTTPSeeOther("/")


async def change_passphrase(request: web.Request) -> web.StreamResponse:
    """Rewrap the vault key under a new passphrase (the first one: no current passphrase)."""
    form = await read_form(request)
    new = form.get("new", "")
    if not MIN_PASSPHRASE_CHARS <= len(new) <= MAX_PASSPHRASE_CHARS:
        return _settings(
            request, error="The new passphrase needs at least 8 characters.", status=400
        )
    first = not request.app[CONFIG].passphrase_set()
    try:
        messenger(request).change_passphrase("" if first else form.get("old", ""), new)
    except WrongPassphrase:
        return _settings(request, error="The current passphrase is not right.", status=400)
    raise web.HTTPSeeOther("/settings?flash=" + ("passphrase-set" if first else "passphrase"))


async def set_ephemeral(request: web.Request) -> web.StreamResponse:
    """Turn ephemeral history on or off (effective at the next unlock)."""
    messenger(request).set_ephemeral(await _switch(request))
    raise web.HTTPSeeOther("/settings?flash=ephemeral")


async def set_mailbox_hints(request: web.Request) -> web.StreamResponse:
    """Attach contacts' mailbox hints to our envelopes from now on, or stop."""
    messenger(request).set_mailbox_hints(await _switch(request))
    raise web.HTTPSeeOther("/settings?flash=mailbox-hints")


async def _switch(request: web.Request) -> bool:
    """An on/off form's `enabled` field; BadRequest unless it is "yes" or "no"."""
    enabled = (await read_form(request)).get("enabled", "")
    if enabled not in {"yes", "no"}:
        raise BadRequest("enabled must be yes or no")
    return enabled == "yes"


async def check_in_all(request: web.Request) -> web.StreamResponse:
    """Set every contact's check-in interval at once."""
    minutes = parse_minutes((await read_form(request)).get("minutes", ""))
    owner = messenger(request)
    for contact in owner.contacts():
        owner.set_check_in_interval(contact.id, minutes * 60.0)
    commanded(request)
    raise web.HTTPSeeOther("/settings?flash=interval")


async def set_profile(request: web.Request) -> web.StreamResponse:
    """The name and mailbox relays our contact card carries."""
    form = await read_form(request)
    name = form.get("name", "").strip() or None
    relays = form.get("relays", "").split()
    try:
        messenger(request).set_profile(name, relays)
    except InvalidCard:
        return _settings(
            request, error="That name or a relay address does not fit on a card.", status=400
        )
    raise web.HTTPSeeOther("/card")


async def unlock_page(request: web.Request) -> web.StreamResponse:
    """The passphrase form (or the create-vault form on first start)."""
    if not messenger(request).is_locked:
        raise web.HTTPSeeOther("/")
    return _locked(request)


def _locked(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    extra = {"flash": error, "flash_kind": "bad"} if error else {}
    return render_page(
        request,
        "locked.html",
        title="Vault locked",
        page="locked",
        http_status=status,
        vault_exists=messenger(request).is_initialised,
        **extra,
    )


async def unlock(request: web.Request) -> web.StreamResponse:
    """Open (or create) the vault; what it had held for the owner is processed now."""
    passphrase = (await read_form(request)).get("passphrase", "")
    owner = messenger(request)
    if not owner.is_initialised:
        if not MIN_PASSPHRASE_CHARS <= len(passphrase) <= MAX_PASSPHRASE_CHARS:
            return _locked(request, error="Choose at least 8 characters.", status=400)
        owner.initialise(passphrase, now(request))
        commanded(request)
        raise web.HTTPSeeOther("/?flash=unlocked")
    try:
        packets = owner.unlock(passphrase, now(request))
    except (WrongPassphrase, VaultLocked):
        return _locked(request, error="That passphrase does not open the vault.", status=403)
    commanded(request, packets)
    raise web.HTTPSeeOther("/?flash=unlocked")


def locked_page(request: web.Request) -> web.Response:
    """What any page shows while the vault is locked."""
    return _locked(request, status=423)
