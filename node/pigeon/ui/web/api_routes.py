"""The JSON API the page's script uses (`/api/...`); every route needs a paired browser."""

from __future__ import annotations

import urllib.parse

from aiohttp import web

from pigeon.ui.web.context import commanded, messenger, now
from pigeon.ui.web.errors import BadRequest
from pigeon.ui.web.keys import CONFIG
from pigeon.ui.web.requests import read_json, read_multipart, require_str
from pigeon.ui.web.wire import contact_json, message_json

MAX_TEXT_CHARS = 4096


async def contacts(request: web.Request) -> web.StreamResponse:
    """GET /api/contacts."""
    return web.json_response({"contacts": [contact_json(c) for c in messenger(request).contacts()]})


async def messages(request: web.Request) -> web.StreamResponse:
    """GET /api/contacts/{id}/messages[?before=SEQ&limit=N]: oldest first."""
    before = _int_query(request, "before")
    limit = _int_query(request, "limit") or 50
    views = messenger(request).conversation(
        request.match_info["contact_id"], before_seq=before, limit=min(max(limit, 1), 200)
    )
    return web.json_response({"messages": [message_json(m) for m in views]})


def _int_query(request: web.Request, key: str) -> int | None:
    text = request.query.get(key)
    if text is None:
        return None
    if not text.isdigit() or len(text) > 12:
        raise BadRequest(f"{key} must be a whole number")
    return int(text)


async def send_text(request: web.Request) -> web.StreamResponse:
    """POST /api/contacts/{id}/messages {"text": ...}."""
    text = require_str(await read_json(request), "text", max_len=MAX_TEXT_CHARS)
    view = messenger(request).send_text(request.match_info["contact_id"], text, now(request))
    commanded(request)
    return web.json_response({"message": message_json(view)}, status=201)


async def send_file(request: web.Request) -> web.StreamResponse:
    """POST /api/contacts/{id}/files (multipart field "file", up to the upload limit)."""
    limit = request.app[CONFIG].max_upload_bytes
    upload = (await read_multipart(request, {"file": limit})).get("file")
    if upload is None or not upload.data:
        raise BadRequest("choose a file to send")
    view = messenger(request).send_file(
        request.match_info["contact_id"], upload.filename or "file", upload.data, now(request)
    )
    commanded(request)
    return web.json_response({"message": message_json(view)}, status=201)


async def mark_read(request: web.Request) -> web.StreamResponse:
    """POST /api/contacts/{id}/read."""
    messenger(request).mark_read(request.match_info["contact_id"])
    return web.json_response({"ok": True})


async def file_download(request: web.Request) -> web.StreamResponse:
    """GET /api/messages/{id}/file: the file as an attachment (never rendered by the browser)."""
    name, data = messenger(request).file_data(request.match_info["message_id"])
    quoted = urllib.parse.quote(name, safe="")
    headers = {
        "Content-Disposition": f"attachment; filename=\"download\"; filename*=UTF-8''{quoted}",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    return web.Response(body=data, content_type="application/octet-stream", headers=headers)


async def own_card(request: web.Request) -> web.StreamResponse:
    """GET /api/card: our card text and handle."""
    owner = messenger(request)
    return web.json_response(
        {
            "card": owner.own_card_text(),
            "app_link": owner.own_app_card_link(),
            "handle": owner.own_handle(),
        }
    )
