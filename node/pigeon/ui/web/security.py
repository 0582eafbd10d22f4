"""What every request passes through: security headers, Host and Origin checks, the session.

Order (outermost first): `security_headers` stamps every answer, errors included;
`host_check` refuses Host names the certificate does not cover (DNS rebinding); `origin_check`
refuses state-changing requests and WebSocket upgrades whose Origin is not this page;
`require_session` admits only paired browsers, except to the pairing page and its stylesheet.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import hdrs, web

from pigeon.ui.web.keys import CONFIG, PAIRING, SESSION
from pigeon.ui.web.pairing import SESSION_IDLE_S

_LOGGER = logging.getLogger(__name__)

COOKIE_NAME: Final = "__Host-pigeon"  # __Host-: Secure, Path=/ and no Domain, enforced by browsers
PUBLIC_PATHS: Final = frozenset({"/pair", "/static/style.css", "/static/icon.svg"})
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Add the strict headers to every answer, including error pages and redirects.

    HSTS is left out on purpose: with a self-signed certificate it would stop the owner from
    accepting the certificate at all.
    """
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    if not response.prepared:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
    return response


@web.middleware
async def host_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer only for the names and addresses the certificate was made for."""
    allowed = request.app[CONFIG].allowed_hosts
    host = (request.url.raw_host or "").lower().strip("[]")
    if allowed and host not in {name.lower() for name in allowed}:
        _LOGGER.warning("request for an unknown host refused")
        raise web.HTTPMisdirectedRequest(text="unknown host")
    return await handler(request)


def own_origin(request: web.Request) -> str:
    """This page's origin as the browser names it: https://host[:port] from the Host header."""
    return f"https://{request.host}".lower()


def same_origin(request: web.Request) -> bool:
    """True if the request carries an Origin header naming this page."""
    origin = request.headers.get(hdrs.ORIGIN)
    return origin is not None and origin.lower() == own_origin(request)


def same_origin_form(request: web.Request) -> bool:
    """True for a form our own page posted: under `Referrer-Policy: no-referrer` browsers send
    `Origin: null` with form posts, so the browser-set (unforgeable by pages)
    `Sec-Fetch-Site: same-origin` vouches instead. Browsers without Fetch Metadata fail closed."""
    return (
        request.headers.get(hdrs.ORIGIN, "null") == "null"
        and request.headers.get("Sec-Fetch-Site") == "same-origin"
    )


@web.middleware
async def origin_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CSRF and cross-site WebSocket defence on top of SameSite=Strict cookies."""
    upgrade = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
    if upgrade and not same_origin(request):
        _LOGGER.warning("cross-origin WebSocket refused")
        raise web.HTTPForbidden(text="cross-origin request refused")
    if request.method not in SAFE_METHODS and not (
        same_origin(request) or same_origin_form(request)
    ):
        _LOGGER.warning("cross-origin %s refused", request.method)
        raise web.HTTPForbidden(text="cross-origin request refused")
    return await handler(request)


@web.middleware
async def require_session(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Admit paired browsers; send others to /pair (pages) or answer 401 (API, WebSocket)."""
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    token = request.cookies.get(COOKIE_NAME, "")
    session = request.app[PAIRING].authenticate(token, request.app[CONFIG].clock())
    if session is None:
        if request.path.startswith(("/api/", "/ws", "/static/")) or request.method != "GET":
            raise web.HTTPUnauthorized(text="pair this browser first")
        raise web.HTTPSeeOther("/pair")
    request[SESSION] = session
    return await handler(request)


def set_session_cookie(response: web.StreamResponse, token: str) -> None:
    """Give the browser its session: HttpOnly, Secure, SameSite=Strict, host-only."""
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=int(SESSION_IDLE_S),
        path="/",
        secure=True,
        httponly=True,
        samesite="Strict",
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    """Tell the browser to drop its session cookie."""
    response.del_cookie(COOKIE_NAME, path="/", secure=True, httponly=True, samesite="Strict")
