"""Serving the page: HTTPS with the node's certificate, and plain HTTP that only redirects."""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from aiohttp import web

from pigeon.ui.web.errors import CertificateError
from pigeon.ui.web.keys import CONFIG
from pigeon.ui.web.security import security_headers
from pigeon.ui.web.tls import CERT_FILE, KEY_FILE

_LOGGER = logging.getLogger(__name__)


def tls_context(cert_dir: Path) -> ssl.SSLContext:
    """A server context (TLS 1.2 or newer) with the certificate from `ensure_certificate`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_dir / CERT_FILE, cert_dir / KEY_FILE)
    except (OSError, ssl.SSLError) as exc:
        raise CertificateError("cannot load the TLS certificate; run ensure_certificate") from exc
    return context


def redirect_app(https_port: int, own_hosts: Sequence[str]) -> web.Application:
    """An app that answers every plain-HTTP request with a redirect to the HTTPS page.

    The target's host is the one the request named if it is one of `own_hosts` (the names and
    addresses the certificate covers), else the first of them: a Host header alone never
    chooses where the browser goes next (an open redirect). With no own hosts, 421.
    """
    known = {host.lower().strip("[]") for host in own_hosts}
    fallback = own_hosts[0].lower().strip("[]") if own_hosts else None
    port = "" if https_port == 443 else f":{https_port}"

    async def to_https(request: web.Request) -> web.StreamResponse:
        asked = (request.url.raw_host or "").lower().strip("[]")
        host = asked if asked in known else fallback
        if host is None:
            raise web.HTTPMisdirectedRequest(text="unknown host")
        if ":" in host:  # an IPv6 literal needs its brackets back
            host = f"[{host}]"
        raise web.HTTPPermanentRedirect(f"https://{host}{port}{request.rel_url.raw_path_qs}")

    app = web.Application(middlewares=[security_headers])
    app.router.add_route("*", "/{tail:.*}", to_https)
    return app


@contextlib.asynccontextmanager
async def serve(
    app: web.Application, https_port: int, http_port: int | None, host: str, cert_dir: Path
) -> AsyncIterator[tuple[int, int | None]]:
    """Serve `app` over HTTPS (and the redirect over HTTP unless `http_port` is None) until the
    block ends; yields the bound (https, http) ports (useful with port 0).
    Raises CertificateError, OSError (a port in use)."""
    context = tls_context(cert_dir)
    runners: list[web.AppRunner] = []
    try:
        secure = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        runners.append(secure)
        await secure.setup()
        secure_site = web.TCPSite(secure, host, https_port, ssl_context=context)
        await secure_site.start()
        bound_https = _bound_port(secure)
        bound_http: int | None = None
        if http_port is not None:
            own_hosts = app[CONFIG].allowed_hosts
            plain = web.AppRunner(redirect_app(bound_https, own_hosts), access_log=None)
            runners.append(plain)
            await plain.setup()
            await web.TCPSite(plain, host, http_port).start()
            bound_http = _bound_port(plain)
        _LOGGER.info("web page on https port %d (http %s)", bound_https, bound_http)
        yield bound_https, bound_http
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise OSError("the server is not listening")
