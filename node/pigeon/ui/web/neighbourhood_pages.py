"""The Neighbourhood view: bitchat's public chat heard by the node, live, and the owner's posts
under a nickname of their choosing. It says plainly that all of it is signed plaintext."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from pigeon.messenger.neighbourhood import Neighbourhood, NeighbourhoodError
from pigeon.ui.web.context import unread_total
from pigeon.ui.web.keys import NEIGHBOURHOOD
from pigeon.ui.web.render import render_page
from pigeon.ui.web.requests import read_form
from pigeon.ui.web.wire import public_line_json


def _neighbourhood(request: web.Request) -> Neighbourhood | None:
    return request.app.get(NEIGHBOURHOOD)


async def neighbourhood_page(request: web.Request) -> web.StreamResponse:
    """The public lines kept, the posting form, and the plain warning."""
    return _page(request)


def _page(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    chat = _neighbourhood(request)
    extra = {"flash": error, "flash_kind": "bad"} if error else {}
    return render_page(
        request,
        "neighbourhood.html",
        title="Neighbourhood",
        page="neighbourhood",
        section="neighbourhood",
        http_status=status,
        enabled=chat is not None and chat.can_post,
        lines=[public_line_json(line) for line in chat.lines()] if chat else [],
        nickname=request.query.get("as", ""),
        unread=unread_total(request),
        **extra,
    )


async def post_public(request: web.Request) -> web.StreamResponse:
    """Send the form's text to bitchat's public chat under the form's nickname."""
    form = await read_form(request)
    chat = _neighbourhood(request)
    nickname = form.get("nickname", "")
    try:
        if chat is None:
            raise NeighbourhoodError("bitchat is off on this node")
        chat.post(nickname, form.get("text", ""))
    except NeighbourhoodError as exc:
        return _page(request, error=str(exc), status=400)
    raise web.HTTPSeeOther("/neighbourhood?" + urlencode({"as": nickname.strip()}))
