"""The page's static files, read once from the package and served from memory."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Final

from aiohttp import web

from pigeon.ui.web.security import Handler

CONTENT_TYPES: Final = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@dataclass(frozen=True, slots=True)
class StaticFile:
    """One file's bytes, type and validator."""

    body: bytes
    content_type: str
    etag: str


def load_static() -> dict[str, StaticFile]:
    """Every file of `pigeon/ui/web/static`, by name."""
    found: dict[str, StaticFile] = {}
    for entry in resources.files("pigeon.ui.web").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in CONTENT_TYPES:
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            found[entry.name] = StaticFile(body, CONTENT_TYPES[suffix], etag)
    return found


def static_handler(files: dict[str, StaticFile]) -> Handler:
    """A handler for `/static/{name}` that knows only `files` (no paths, no listing)."""

    async def serve(request: web.Request) -> web.StreamResponse:
        found = files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        if request.headers.get("If-None-Match") == found.etag:
            return web.Response(status=304, headers={"ETag": found.etag})
        headers = {"ETag": found.etag, "Cache-Control": "no-cache"}
        return web.Response(body=found.body, content_type=found.content_type, headers=headers)

    return serve
