"""Reading what the browser sends: JSON bodies and form fields, checked into plain values.

The pure parsers (`parse_json_object`, `parse_form`, `require_str`, `parse_minutes`) raise only
BadRequest; the `read_*` coroutines add size limits for a live request.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import BodyPartReader, web

from pigeon.ui.web.errors import BadRequest

MAX_JSON_BYTES: Final = 16 * 1024  # a 4 KiB text, JSON-escaped, fits with room to spare
MAX_FORM_BYTES: Final = 8 * 1024
MAX_CHECK_IN_MINUTES: Final = 24 * 60


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A JSON object from `body`. Raises BadRequest."""
    if len(body) > MAX_JSON_BYTES:
        raise BadRequest("request body too large")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadRequest("request body is not JSON") from exc
    if not isinstance(document, dict):
        raise BadRequest("request body must be a JSON object")
    if not _all_unicode(document):
        raise BadRequest("request body holds text that is not valid Unicode (a lone surrogate)")
    return document


def _all_unicode(document: object) -> bool:
    """False if any key or string in `document` holds a lone surrogate: JSON's "\\ud800"
    escape decodes to one, and no UTF-8 store, envelope or page can carry it."""
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not is_unicode(item):
                return False
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


def is_unicode(text: str) -> bool:
    """True unless `text` holds a lone surrogate (which cannot be encoded as UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def require_str(document: dict[str, Any], key: str, *, max_len: int) -> str:
    """The string at `key`, at most `max_len` characters. Raises BadRequest."""
    value = document.get(key)
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    if len(value) > max_len:
        raise BadRequest(f"{key} is too long")
    return value


def parse_minutes(text: str) -> int:
    """A check-in interval in whole minutes, 1 to a day. Raises BadRequest."""
    try:
        value = float(text.strip()) if len(text) < 16 else math.nan
    except ValueError as exc:
        raise BadRequest("the interval must be a number of minutes") from exc
    if not math.isfinite(value) or not 1 <= value <= MAX_CHECK_IN_MINUTES:
        raise BadRequest(f"the interval must be 1 to {MAX_CHECK_IN_MINUTES} minutes")
    return round(value)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body, refusing more than MAX_JSON_BYTES. Raises BadRequest."""
    return parse_json_object(await _read_capped(request, MAX_JSON_BYTES))


async def read_form(request: web.Request, max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    """An urlencoded form's fields (first value of each), refusing more than `max_bytes`.

    Raises BadRequest."""
    return parse_form(await _read_capped(request, max_bytes))


def parse_form(body: bytes) -> dict[str, str]:
    """Fields of an urlencoded form body (first value of each). Raises BadRequest."""
    try:
        text = body.decode("ascii")
        pairs = urllib.parse.parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=32,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("the form is malformed") from exc
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return fields


@dataclass(frozen=True, slots=True)
class Upload:
    """One multipart field: its bytes, and the file name if it was a file."""

    data: bytes
    filename: str | None


async def read_multipart(request: web.Request, limits: dict[str, int]) -> dict[str, Upload]:
    """The multipart fields named in `limits`, each at most its limit in bytes; others are
    skipped. Raises BadRequest (malformed, or a field over its limit)."""
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError, KeyError) as exc:
        raise BadRequest("expected a multipart form") from exc
    found: dict[str, Upload] = {}
    while True:
        part = await reader.next()
        if part is None:
            return found
        if not isinstance(part, BodyPartReader) or part.name not in limits or part.name in found:
            await part.release()
            continue
        # aiohttp decodes part headers with surrogateescape: a file name in bytes that are not
        # UTF-8 arrives holding lone surrogates, which nothing downstream can store.
        if part.filename is not None and not is_unicode(part.filename):
            raise BadRequest("the file name must be UTF-8")
        data = await _read_part(part, limits[part.name])
        found[part.name] = Upload(data, part.filename)


async def _read_part(part: BodyPartReader, limit: int) -> bytes:
    data = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise BadRequest(f"{part.name} is larger than {limit // (1024 * 1024) or 1} MB")
    return bytes(data)


async def _read_capped(request: web.Request, max_bytes: int) -> bytes:
    if (request.content_length or 0) > max_bytes:
        raise BadRequest("request body too large")
    body = await request.content.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise BadRequest("request body too large")
    return body
