"""The Neighbourhood view in headless Chromium over real HTTPS: it says the chat is public, a
public bitchat line heard by the node appears live over the page's WebSocket, the owner posts
under a nickname of their choosing (a real signed bitchat packet that a phone's checks accept),
and the history is there again after a reload (kept in the real SQLCipher vault)."""

from __future__ import annotations

import random
import time
from pathlib import Path

from playwright.async_api import Browser, expect

from pigeon.bitchat.chat import PublicChat
from pigeon.bitchat.identity import BitchatIdentity
from pigeon.messenger.neighbourhood import Neighbourhood, PublicChatLine
from pigeon.ui.web import build_app, ensure_certificate, serve
from pigeon.ui.web.ports import WebConfig
from tests.ui.web.conftest import ALLOWED_HOSTS, NODE_NAME, make_site
from tests.ui.web.test_browser import PHONE, browser, pytestmark

__all__ = ["browser", "pytestmark"]


async def test_the_owner_reads_and_posts_in_the_neighbourhoods_public_chat(
    tmp_path: Path, browser: Browser
) -> None:
    site = make_site(tmp_path, real_time=True)
    speaker = BitchatIdentity.generate(random.Random(3).randbytes)
    phone = PublicChat()  # what a bitchat phone in range checks and shows
    chat = Neighbourhood(site.owner.keeper)
    posted: list[str] = []

    def post(nickname: str, text: str) -> PublicChatLine:
        stamp = int(time.time() * 1000)
        phone.receive(speaker.announce(nickname, stamp))
        heard = phone.receive(speaker.public_message(text, stamp))
        assert heard is not None  # signed as bitchat signs: a phone accepts it
        posted.append(heard.text)
        line = PublicChatLine(speaker.peer_id, nickname, text, stamp, time.time(), True)
        chat.heard(line)
        return line

    chat.set_poster(post, speaker.peer_id)
    config = WebConfig(node_name=NODE_NAME, allowed_hosts=ALLOWED_HOSTS, clock=site.clock)
    app = build_app(
        site.messenger, site.status, site.panel, site.pairing, config, neighbourhood=chat
    )
    ensure_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    async with serve(app, 0, None, "127.0.0.1", tmp_path / "tls") as (port, _):
        base = f"https://127.0.0.1:{port}"
        context = await browser.new_context(ignore_https_errors=True, viewport=PHONE)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{base}/pair")
        site.pairing.start(site.clock())
        window = site.pairing.window(site.clock())
        assert window is not None
        await page.fill("#code", window.code)
        await page.click("button[type=submit]")
        await expect(page.locator("#conn")).to_have_class("conn live")

        await page.click("nav a[href='/neighbourhood']")
        await expect(page).to_have_url(f"{base}/neighbourhood")
        await expect(page.locator("#public-warning")).to_contain_text("everything here is public")
        await expect(page.locator("#public-warning")).to_contain_text("signed plaintext")
        await expect(page.locator("#conn")).to_have_class("conn live")

        juno = PublicChatLine(b"\x01" * 8, "juno", "anyone at the market?", 1, time.time())
        chat.heard(juno)
        await expect(page.locator("#public-lines li").last).to_contain_text("juno")
        await expect(page.locator("#public-lines li").last).to_contain_text("anyone at the market?")

        await page.fill("#nickname", "corner-house")
        await page.fill("#text", "the bakery is open")
        await page.click("#post-public button[type=submit]")
        await expect(page).to_have_url(f"{base}/neighbourhood?as=corner-house")
        await expect(page.locator("#nickname")).to_have_value("corner-house")
        mine = page.locator("#public-lines li.mine")
        await expect(mine).to_contain_text("the bakery is open")
        assert posted == ["the bakery is open"]

        await page.reload()
        await expect(page.locator("#public-lines li")).to_have_count(2)
        await expect(page.locator("#public-lines li").first).to_contain_text("juno")

        await page.fill("#nickname", "x" * 24)
        await page.fill("#text", "ü" * 300)  # 600 bytes: over bitchat's one-packet limit
        await page.click("#post-public button[type=submit]")
        await expect(page.locator(".flash")).to_contain_text("1 to 400 bytes")
        await context.close()
    assert errors == []
