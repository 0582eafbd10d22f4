"""`/reset`: the owner confirms (or withdraws) an identity reset asked for on the node's buttons.

The buttons show someone is at the node; the page shows it is the owner (a paired browser that
passed the Origin check) and that they mean it (they type the node's name). Only the two
together reset; anything less is refused and changes nothing.
"""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web

from pigeon.ui.web.errors import ResetFailed, ResetNotPending
from pigeon.ui.web.keys import CONFIG, RESET
from pigeon.ui.web.live import close_every_session_socket
from pigeon.ui.web.render import render_page
from pigeon.ui.web.requests import read_form
from pigeon.ui.web.security import clear_session_cookie

_LOGGER = logging.getLogger(__name__)

NOT_PENDING: Final = (
    "No reset is pending: hold both buttons on the node for 10 seconds first,"
    " then confirm here within 2 minutes."
)


async def reset_page(request: web.Request) -> web.StreamResponse:
    """What a reset erases and what it keeps; the confirmation form while one is pending."""
    return _page(request)


def _page(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    extra = {"flash": error, "flash_kind": "bad"} if error else {}
    return render_page(
        request,
        "reset.html",
        title="Identity reset",
        page="reset",
        section="settings",
        http_status=status,
        pending=request.app[RESET].pending(),
        **extra,
    )


async def confirm(request: web.Request) -> web.StreamResponse:
    """Carry out the pending reset; the browser, revoked with all others, lands on /pair."""
    word = (await read_form(request)).get("confirm", "")
    reset = request.app[RESET]
    if not reset.pending():
        return _page(request, error=NOT_PENDING, status=409)
    name = request.app[CONFIG].node_name
    if word.strip().casefold() != name.casefold():
        return _page(request, error=f"Type the node's name, {name}, to confirm.", status=400)
    try:
        await reset.confirm()
    except ResetNotPending:
        return _page(request, error=NOT_PENDING, status=409)
    except ResetFailed as exc:
        _LOGGER.warning("the page reported a failed identity reset (%s)", exc.step)
        message = (
            f"The reset stopped while {exc.step}; the node's screen says the same."
            " Hold both buttons for 10 seconds to try again (pair this browser again first"
            " if it was already revoked)."
        )
        return _page(request, error=message, status=500)
    await close_every_session_socket(request.app)
    response = web.HTTPSeeOther("/pair?flash=reset")
    clear_session_cookie(response)
    raise response


async def cancel(request: web.Request) -> web.StreamResponse:
    """Withdraw the pending reset; the identity stays."""
    request.app[RESET].cancel()
    raise web.HTTPSeeOther("/?flash=kept")
