"""Every route needs a paired browser; WebSockets need a good Origin; CSRF and Host checks."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from pigeon.ui.web.pairing import MAX_TRIES
from pigeon.ui.web.security import COOKIE_NAME, PUBLIC_PATHS
from pigeon.ui.web.static_files import load_static
from tests.ui.web.conftest import Browser, Site, pair

AiohttpClient = Any

STRICT_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, concrete path) for every route, placeholders filled with plausible values."""
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = info.get("formatter") or info.get("path")
        assert template, route
        path = re.sub(r"\{[^}]+\}", "abcd-1234", template)
        found.append((route.method, path))
    return found


async def test_every_route_refuses_a_browser_without_a_session(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    client: TestClient[Any, Any] = await aiohttp_client(site.app)
    stranger = Browser(client)
    routes = _routes(site.app)
    assert len(routes) > 30
    public = set()
    for method, path in routes:
        response = await stranger.client.request(
            method, path, headers=stranger.headers(), allow_redirects=False, data=b"code=1"
        )
        body = await response.read()
        if path in PUBLIC_PATHS:
            public.add((method, path))
            continue
        assert response.status in (303, 401), (method, path, response.status)
        if response.status == 303:
            assert method in ("GET", "HEAD")
            assert response.headers["Location"] == "/pair"
        assert len(body) < 100, (method, path)
    assert public == {("GET", "/pair"), ("HEAD", "/pair"), ("POST", "/pair")}
    for name in load_static():
        response = await stranger.get(f"/static/{name}")
        assert response.status == (200 if name in {"style.css", "icon.svg"} else 401), name


async def test_static_script_needs_a_session_but_the_stylesheet_does_not(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    stranger = Browser(await aiohttp_client(site.app))
    assert (await stranger.get("/static/app.js")).status == 401
    assert (await stranger.get("/static/style.css")).status == 200
    owner = Browser(stranger.client, pair(site))
    script = await owner.get("/static/app.js")
    assert script.status == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert (await owner.get("/static/nope.js")).status == 404
    assert (await owner.get("/static/..%2Fpairing.py")).status == 404


async def test_a_revoked_or_forged_cookie_is_refused(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(site.app)
    token = pair(site)
    forged = Browser(client, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert (await forged.get("/api/contacts")).status == 401
    owner = Browser(client, token)
    assert (await owner.get("/api/contacts")).status == 200
    session = site.pairing.sessions()[0]
    site.pairing.revoke(session.session_id)
    assert (await owner.get("/api/contacts")).status == 401
    assert (await owner.get("/")).headers["Location"] == "/pair"


async def test_pairing_page_trades_the_code_for_a_strict_cookie(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    stranger = Browser(await aiohttp_client(site.app))
    code = site.pairing.start(site.clock())
    response = await stranger.post("/pair", data={"code": code})
    assert response.status == 303
    assert response.headers["Location"] == "/?flash=paired"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert attribute in cookie
    assert "Domain" not in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    owner = Browser(stranger.client, token)
    assert (await owner.get("/api/contacts")).status == 200
    again = await stranger.post("/pair", data={"code": code})
    assert again.status == 403
    assert "No code is open" in await again.text()


async def test_pairing_page_counts_wrong_codes(site: Site, aiohttp_client: AiohttpClient) -> None:
    stranger = Browser(await aiohttp_client(site.app))
    code = site.pairing.start(site.clock())
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for attempt in range(MAX_TRIES):
        response = await stranger.post("/pair", data={"code": wrong})
        assert response.status == 403
        assert "Set-Cookie" not in response.headers
        if attempt == 0:
            assert f"{MAX_TRIES - 1} tries left" in await response.text()
    closed = await stranger.post("/pair", data={"code": code})
    assert closed.status == 403
    assert "Set-Cookie" not in closed.headers


async def test_the_pair_page_says_when_wrong_codes_closed_the_code(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    stranger = Browser(await aiohttp_client(site.app))
    owner = Browser(await aiohttp_client(site.app))
    assert 'id="pairing-closed"' not in await (await owner.get("/pair")).text()
    code = site.pairing.start(site.clock())
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(MAX_TRIES):
        last = await stranger.post("/pair", data={"code": wrong})
    assert 'id="pairing-closed"' in await last.text()
    # The owner, typing the right code too late on their own browser, is told why it failed.
    late = await owner.post("/pair", data={"code": code})
    assert late.status == 403
    text = await late.text()
    assert 'id="pairing-closed"' in text
    assert f"after {MAX_TRIES} wrong codes" in text
    assert "No code is open" not in text
    page = await owner.get("/pair")
    assert page.status == 200
    assert f"after {MAX_TRIES} wrong codes" in await page.text()
    # A new hold of the button clears the notice, and the new code works.
    fresh = site.pairing.start(site.clock())
    assert 'id="pairing-closed"' not in await (await owner.get("/pair")).text()
    assert (await owner.post("/pair", data={"code": fresh})).status == 303


async def test_expired_code_is_refused_on_the_page(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    stranger = Browser(await aiohttp_client(site.app))
    code = site.pairing.start(site.clock())
    site.clock.now += 121
    response = await stranger.post("/pair", data={"code": code})
    assert response.status == 403
    assert "Set-Cookie" not in response.headers


async def test_state_changing_requests_need_our_origin(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = Browser(await aiohttp_client(site.app), pair(site))
    for origin in (
        "https://evil.example",
        "null",
        f"http://{owner.client.host}:{owner.client.port}",
    ):
        response = await owner.post("/settings/lock", headers={"Origin": origin})
        assert response.status == 403, origin
    cookie = {"Cookie": owner.headers()["Cookie"]}
    for fetch_site in ({}, {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}):
        for origin in ({}, {"Origin": "null"}):
            response = await owner.client.post(
                "/settings/lock", headers={**cookie, **origin, **fetch_site}, allow_redirects=False
            )
            assert response.status == 403, (origin, fetch_site)
    spoofed = await owner.post(
        "/settings/lock",
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"},
    )
    assert spoofed.status == 403
    assert not site.messenger.is_locked
    code = site.pairing.start(site.clock())
    login_csrf = await owner.post(
        "/pair", data={"code": code}, headers={"Origin": "https://x.example"}
    )
    assert login_csrf.status == 403
    # A form our own page posted under no-referrer: Origin null, Sec-Fetch-Site same-origin.
    own_form = await owner.client.post(
        "/settings/lock",
        headers={**cookie, "Origin": "null", "Sec-Fetch-Site": "same-origin"},
        allow_redirects=False,
    )
    assert own_form.status == 303
    assert site.messenger.is_locked


async def test_unknown_host_names_are_refused(site: Site, aiohttp_client: AiohttpClient) -> None:
    owner = Browser(await aiohttp_client(site.app), pair(site))
    response = await owner.get("/", headers={"Host": "rebind.evil.example"})
    assert response.status == 421
    ok = await owner.get("/api/status", headers={"Host": "pigeon-ab12.local:8443"})
    assert ok.status == 200


async def test_every_answer_carries_the_strict_headers(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(site.app)
    owner = Browser(client, pair(site))
    answers = [
        await owner.get("/"),
        await owner.get("/pair"),
        await Browser(client).get("/"),
        await owner.get("/chat/nobody"),
        await owner.get("/api/status"),
        await owner.post("/settings/lock", headers={"Origin": "https://evil.example"}),
        await owner.get("/no/such/page"),
    ]
    for response in answers:
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        for name, value in STRICT_HEADERS.items():
            assert response.headers[name] == value
        assert "Strict-Transport-Security" not in response.headers


async def test_pages_have_no_inline_script_or_style(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = Browser(await aiohttp_client(site.app), pair(site))
    for path in ("/", "/contacts", "/card", "/node", "/settings", "/device", "/pair"):
        html = await (await owner.get(path)).text()
        assert re.search(r"<script(?![^>]*\bsrc=)", html) is None, path
        assert re.search(r"\son[a-z]+\s*=", html) is None, path
        assert " style=" not in html, path
        assert "<style" not in html, path


async def test_websocket_needs_session_and_origin(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(site.app)
    token = pair(site)
    origin = f"https://{client.host}:{client.port}"
    cookie = {"Cookie": f"{COOKIE_NAME}={token}"}
    cases = [
        ({"Origin": origin}, 401),
        (cookie, 403),
        ({**cookie, "Origin": "https://evil.example"}, 403),
    ]
    for headers, status in cases:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await client.ws_connect("/ws", headers=headers)
        assert caught.value.status == status
    socket = await client.ws_connect("/ws", headers={**cookie, "Origin": origin})
    await socket.close()


async def test_revoking_a_browser_closes_its_websocket(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    client = await aiohttp_client(site.app)
    victim_token, owner_token = pair(site), pair(site)
    origin = f"https://{client.host}:{client.port}"
    socket = await client.ws_connect(
        "/ws", headers={"Cookie": f"{COOKIE_NAME}={victim_token}", "Origin": origin}
    )
    victim = site.pairing.authenticate(victim_token, site.clock())
    assert victim is not None
    owner = Browser(client, owner_token)
    response = await owner.post(f"/settings/browsers/{victim.session_id}/revoke")
    assert response.status == 303
    message = await socket.receive_json(timeout=5)
    assert message == {"type": "revoked"}
    closing = await socket.receive(timeout=5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert socket.close_code == 4401


async def test_revoking_yourself_signs_you_out(site: Site, aiohttp_client: AiohttpClient) -> None:
    owner = Browser(await aiohttp_client(site.app), pair(site))
    me = site.pairing.sessions()[0]
    page = await (await owner.get("/settings")).text()
    assert "this browser" in page
    response = await owner.post(f"/settings/browsers/{me.session_id}/revoke")
    assert response.headers["Location"] == "/pair"
    assert (await owner.get("/settings")).headers["Location"] == "/pair"
    assert (await owner.post("/settings/browsers/0000000000000000/revoke")).status == 401
