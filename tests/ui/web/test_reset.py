"""`/reset`: the notice while a reset is pending, and every way a confirmation is refused.

The daemon's side is a stand-in here (`ArmedReset`: the test arms it as the buttons would);
tests/daemon/test_identity_reset.py runs the real reset.
"""

from __future__ import annotations

from typing import Any

from tests.ui.web.conftest import NODE_NAME, Browser, Site, pair

AiohttpClient = Any
NOTICE = 'id="reset-notice"'


async def _owner(site: Site, aiohttp_client: AiohttpClient) -> Browser:
    return Browser(await aiohttp_client(site.app), pair(site))


def _still_paired(site: Site) -> bool:
    return site.pairing.is_paired() and site.reset.confirmed == 0


async def test_every_page_shows_the_notice_only_while_a_reset_is_pending(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    pages = ("/", "/contacts", "/node", "/device", "/settings", "/card")
    for path in pages:
        assert NOTICE not in await (await owner.get(path)).text(), path
    site.reset.armed = True
    for path in pages:
        page = await (await owner.get(path)).text()
        assert NOTICE in page, path
        assert 'href="/reset"' in page
    stranger = Browser(owner.client)
    assert NOTICE not in await (await stranger.get("/pair")).text()
    site.messenger.lock(site.clock())  # a locked vault shows the unlock form, and the notice
    locked = await owner.get("/")
    assert locked.status == 423
    assert NOTICE in await locked.text()


async def test_the_reset_page_says_what_goes_and_what_stays(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    idle = await owner.get("/reset")
    assert idle.status == 200
    text = await idle.text()
    assert "No reset is pending" in text
    assert 'name="confirm"' not in text
    site.reset.armed = True
    site.messenger.lock(site.clock())  # a forgotten passphrase is a reason to reset
    pending = await owner.get("/reset")
    assert pending.status == 200
    text = await pending.text()
    for erased in ("identity keys", "Every contact", "passphrase", "Every paired browser"):
        assert erased in text, erased
    for kept in ("device key", "relays for other people", "TLS certificate", "configuration"):
        assert kept in text, kept
    assert 'name="confirm"' in text
    assert NODE_NAME in text


async def test_confirming_without_a_pending_reset_is_refused(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    response = await owner.post("/reset", data={"confirm": NODE_NAME})
    assert response.status == 409
    assert "hold both buttons" in (await response.text()).lower()
    assert _still_paired(site)
    assert (await owner.get("/api/contacts")).status == 200


async def test_confirming_without_the_node_name_is_refused(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    site.reset.armed = True
    for word in ("", "yes", "RESET", "pigeon-ab13"):
        response = await owner.post("/reset", data={"confirm": word})
        assert response.status == 400, word
        assert f"name, {NODE_NAME}, to confirm." in await response.text()
    missing = await owner.post("/reset", data={})
    assert missing.status == 400
    assert site.reset.pending()  # the request stays open for a correct try
    assert _still_paired(site)


async def test_confirming_from_another_origin_or_without_a_session_is_refused(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    site.reset.armed = True
    for origin in ("https://evil.example", "null"):
        response = await owner.post(
            "/reset", data={"confirm": NODE_NAME}, headers={"Origin": origin}
        )
        assert response.status == 403, origin
    stranger = Browser(owner.client)
    assert (await stranger.post("/reset", data={"confirm": NODE_NAME})).status == 401
    assert (await stranger.post("/reset/cancel")).status == 401
    assert (await stranger.get("/reset")).headers["Location"] == "/pair"
    assert site.reset.pending()
    assert _still_paired(site)


async def test_a_confirmed_reset_signs_the_browser_out_to_the_pairing_page(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    site.reset.armed = True
    response = await owner.post("/reset", data={"confirm": f"  {NODE_NAME.upper()} "})
    assert response.status == 303
    assert response.headers["Location"] == "/pair?flash=reset"
    assert 'pigeon=""' in response.headers["Set-Cookie"]  # the browser drops its cookie
    assert site.reset.confirmed == 1
    assert not site.pairing.is_paired()
    assert (await owner.get("/")).headers["Location"] == "/pair"
    landing = await Browser(owner.client).get("/pair?flash=reset")
    assert "Pair this browser again" in await landing.text()


async def test_a_failed_reset_names_the_step_and_how_to_retry(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    site.reset.armed = True
    site.reset.fail_step = "erasing the vault"
    response = await owner.post("/reset", data={"confirm": NODE_NAME})
    assert response.status == 500
    text = await response.text()
    assert "stopped while erasing the vault" in text
    assert "try again" in text
    assert "Set-Cookie" not in response.headers


async def test_keep_my_identity_withdraws_the_request(
    site: Site, aiohttp_client: AiohttpClient
) -> None:
    owner = await _owner(site, aiohttp_client)
    site.reset.armed = True
    response = await owner.post("/reset/cancel")
    assert response.status == 303
    assert response.headers["Location"] == "/?flash=kept"
    assert not site.reset.pending()
    assert NOTICE not in await (await owner.get("/")).text()
    refused = await owner.post("/reset", data={"confirm": NODE_NAME})
    assert refused.status == 409
    assert _still_paired(site)
