"""Turning typed errors into answers: JSON for the API, a page for the browser, no tracebacks."""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web

from pigeon.messenger.api import (
    DuplicateContact,
    FileIncomplete,
    InvalidCard,
    InvalidName,
    InvalidText,
    MessageTooLarge,
    MessengerError,
    SafetyNumberMismatch,
    StorageFailed,
    UnknownContact,
    UnknownMessage,
    VaultLocked,
    WrongPassphrase,
)
from pigeon.ui.web.errors import BadRequest, ResetFailed, ResetNotPending, WebError
from pigeon.ui.web.render import render_page
from pigeon.ui.web.security import Handler
from pigeon.ui.web.settings_pages import locked_page

_LOGGER = logging.getLogger(__name__)

STATUS_BY_ERROR: Final[tuple[tuple[type[Exception], int], ...]] = (
    (VaultLocked, 423),
    (UnknownContact, 404),
    (UnknownMessage, 404),
    (DuplicateContact, 409),
    (FileIncomplete, 409),
    (MessageTooLarge, 413),
    (InvalidCard, 400),
    (InvalidName, 400),
    (InvalidText, 400),
    (SafetyNumberMismatch, 400),
    (WrongPassphrase, 403),
    (StorageFailed, 503),
    (BadRequest, 400),
    (ResetNotPending, 409),
    (ResetFailed, 500),
)


def status_for(error: Exception) -> int:
    """The HTTP status that answers a typed error."""
    for kind, status in STATUS_BY_ERROR:
        if isinstance(error, kind):
            return status
    return 500


@web.middleware
async def typed_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer MessengerError and WebError; anything else stays a bug (logged by aiohttp)."""
    try:
        return await handler(request)
    except (MessengerError, WebError) as exc:
        status = status_for(exc)
        if status >= 500:
            _LOGGER.error("request failed: %s", type(exc).__name__)
        if request.path.startswith("/api/"):
            return web.json_response({"error": str(exc)}, status=status)
        if isinstance(exc, VaultLocked):
            return locked_page(request)
        return render_page(
            request,
            "error.html",
            title="Something went wrong",
            page="error",
            http_status=status,
            message=str(exc),
        )
