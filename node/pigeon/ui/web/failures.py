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


HTTP_TITLES: Final = {
    404: "Page not found",
    405: "Not possible here",
    413: "Too large",
}
DEFAULT_HTTP_TEXTS: Final = {
    404: "There is no page at this address. It may have been removed, or the link is wrong.",
    405: "This address does not take that kind of request.",
}

# The section a failed address was in -> where its error page leads back to.
BACK_TO: Final = {
    "": ("/", "Back to chats"),
    "contacts": ("/contacts", "Back to contacts"),
    "card": ("/contacts", "Back to contacts"),
    "settings": ("/settings", "Back to settings"),
    "node": ("/node", "Back to the node"),
    "device": ("/device", "Back to the device"),
}


@web.middleware
async def typed_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer MessengerError and WebError; a page's HTTP error (404, ...) gets the page's
    frame and a way back; anything else stays a bug (logged by aiohttp)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or request.path.startswith("/api/"):
            raise
        return _http_error_page(request, exc)
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


def _http_error_page(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own errors are bare text: answer with the page's frame instead."""
    text = exc.text or ""
    if not text or text.startswith(f"{exc.status}:"):  # aiohttp's default "404: Not Found"
        text = DEFAULT_HTTP_TEXTS.get(exc.status, exc.reason)
    section = request.path.strip("/").split("/", 1)[0]
    back = BACK_TO.get(section, BACK_TO[""])
    response = render_page(
        request,
        "error.html",
        title=HTTP_TITLES.get(exc.status, "Something went wrong"),
        page="error",
        http_status=exc.status,
        message=text[:1].upper() + text[1:],
        back_href=back[0],
        back_label=back[1],
    )
    if "Allow" in exc.headers:  # a 405 says which methods would do
        response.headers["Allow"] = exc.headers["Allow"]
    return response
