"""`/pair` (the only page open to strangers), and the owner's list of paired browsers."""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import hdrs, web

from pigeon.ui.web.errors import ClosedByWrongCodes, NoPairingWindow, UnknownSession, WrongCode
from pigeon.ui.web.keys import CONFIG, PAIRING, SESSION
from pigeon.ui.web.live import close_session_sockets
from pigeon.ui.web.pairing import MAX_TRIES
from pigeon.ui.web.render import render_page
from pigeon.ui.web.requests import read_form
from pigeon.ui.web.security import set_session_cookie

_LOGGER = logging.getLogger(__name__)


async def pair_form(request: web.Request) -> web.StreamResponse:
    """The code form (saying so if wrong codes closed the last code)."""
    return _pair_page(request)


async def pair_submit(request: web.Request) -> web.StreamResponse:
    """Trade the code from the OLED for a session cookie."""
    form = await read_form(request)
    code = form.get("code", "")
    label = _browser_label(request.headers.get(hdrs.USER_AGENT, ""))
    try:
        token = request.app[PAIRING].submit(code, request.app[CONFIG].clock(), label)
    except WrongCode as exc:
        if not exc.tries_left:  # that closed the code: the page's notice says so
            return _pair_page(request, http_status=403)
        tries = "1 try" if exc.tries_left == 1 else f"{exc.tries_left} tries"
        return _pair_page(request, f"That code is not right. {tries} left.", http_status=403)
    except ClosedByWrongCodes:
        return _pair_page(request, http_status=403)
    except NoPairingWindow:
        message = "No code is open. Hold the node's button for 3 seconds first."
        return _pair_page(request, message, http_status=403)
    response = web.HTTPSeeOther("/?flash=paired")
    set_session_cookie(response, token)
    raise response


def _pair_page(request: web.Request, error: str = "", *, http_status: int = 200) -> web.Response:
    extra = {"flash": error, "flash_kind": "bad"} if error else {}
    return render_page(
        request,
        "pair.html",
        title="Pair",
        page="pair",
        http_status=http_status,
        closed_at=request.app[PAIRING].closed_by_wrong_codes(),
        wrong_codes=MAX_TRIES,
        **extra,
    )


def _browser_label(user_agent: str) -> str:
    """A short description such as "Chrome on Android" (what the owner needs to recognise it)."""
    agent = user_agent.lower()
    browser = next((name for key, name in _BROWSERS if key in agent), "Browser")
    system = next((name for key, name in _SYSTEMS if key in agent), "")
    return f"{browser} on {system}" if system else browser


_BROWSERS: Final = (
    ("firefox", "Firefox"),
    ("edg/", "Edge"),
    ("opr/", "Opera"),
    ("samsungbrowser", "Samsung Internet"),
    ("headlesschrome", "Headless Chrome"),
    ("chrome", "Chrome"),
    ("chromium", "Chromium"),
    ("safari", "Safari"),
)
_SYSTEMS: Final = (
    ("android", "Android"),
    ("iphone", "iPhone"),
    ("ipad", "iPad"),
    ("mac os", "macOS"),
    ("windows", "Windows"),
    ("cros", "ChromeOS"),
    ("linux", "Linux"),
)


async def revoke_page(request: web.Request) -> web.StreamResponse:
    """Which browser a revoke would sign out (label, when paired, last seen), to confirm."""
    session_id = request.match_info["session_id"]
    found = [s for s in request.app[PAIRING].sessions() if s.session_id == session_id]
    if not found:
        raise web.HTTPNotFound(text="No such paired browser: it may have been revoked already.")
    return render_page(
        request,
        "revoke.html",
        title="Revoke a browser",
        page="revoke",
        section="settings",
        session=found[0],
        current=session_id == request[SESSION].session_id,
    )


async def revoke(request: web.Request) -> web.StreamResponse:
    """Forget one paired browser and hang up its live pages; revoking yourself signs you out."""
    session_id = request.match_info["session_id"]
    try:
        request.app[PAIRING].revoke(session_id)
    except UnknownSession as exc:
        raise web.HTTPNotFound(text="no such browser") from exc
    await close_session_sockets(request.app, session_id)
    if session_id == request[SESSION].session_id:
        raise web.HTTPSeeOther("/pair")
    raise web.HTTPSeeOther("/settings?flash=revoked#browsers")
