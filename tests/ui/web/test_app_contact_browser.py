"""The page in headless Chromium: the owner pastes a Pigeon app link, sees what protections the
contact gets, verifies the app's safety number, chats and sees the app's ack as delivered.
The app user is a scripted app-protocol peer (vodozemac and pynacl only)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import Browser, expect

from pigeon.ui.web import ensure_certificate, serve
from tests.crypto.plain_app_peer import card_text
from tests.messenger.app_peer import ACK, MESSAGE, X3DH_INIT, ScriptedAppPeer
from tests.messenger.test_app_contacts import app_safety_number_from_facts
from tests.ui.web.conftest import Site, make_site
from tests.ui.web.test_browser import PHONE, _shot, browser, pytestmark

__all__ = ["browser", "pytestmark"]


def _link(peer: ScriptedAppPeer) -> str:
    text = card_text(peer.peer, "Ada", ["wss://relay.example/ws"])
    return "pigeon://contact?card=" + text.replace("+", "-").replace("/", "_").rstrip("=")


def _to_peer(site: Site, peer: ScriptedAppPeer) -> list[int]:
    return [peer.receive(o.envelope) for o in site.messenger.take_app_outgoing()]


async def test_owner_adds_an_app_user_by_link_verifies_and_chats(
    tmp_path: Path, browser: Browser
) -> None:
    site = make_site(tmp_path, real_time=True)
    own_link = site.messenger.own_app_card_link()
    peer = next(
        p
        for p in (ScriptedAppPeer(bytes([n]) * 32, own_link) for n in range(1, 64))
        if p.owner < p.peer.identity_key
    )
    ensure_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    async with serve(site.app, 0, None, "127.0.0.1", tmp_path / "tls") as (port, _):
        base = f"https://127.0.0.1:{port}"
        context = await browser.new_context(ignore_https_errors=True, viewport=PHONE)
        page = await context.new_page()
        await page.goto(f"{base}/pair")
        site.pairing.start(site.clock())
        window = site.pairing.window(site.clock())
        assert window is not None
        await page.fill("#code", window.code)
        await page.click("button[type=submit]")
        await expect(page.locator("#conn")).to_have_class("conn live")

        # Our own app link is offered with its QR code.
        await page.goto(f"{base}/card")
        assert await page.locator("#own-app-card").input_value() == own_link
        await expect(page.locator("#app-card-qr svg")).to_be_visible()

        # Paste the app user's link; the page says what kind of contact it is.
        await page.goto(f"{base}/contacts")
        await page.fill("#card", _link(peer))
        await page.click("#add button[type=submit]")
        await expect(page.locator(".flash")).to_contain_text("Contact added")
        contact_id = page.url.split("/contacts/")[1].split("?")[0]
        await expect(page.locator("#kind")).to_contain_text("Pigeon app contact")
        await expect(page.locator("#protections")).to_contain_text("no rotating tags")
        await expect(page.locator("#protections")).to_contain_text("no 512-byte padding")
        shown = "".join(await page.locator("#safety-number span").all_inner_texts())
        assert shown == app_safety_number_from_facts(peer.owner, peer.peer.identity_key)
        await _shot(page, "phone-app-contact")
        await page.click("#mark-verified")
        await expect(page.locator("#safety")).to_contain_text("You confirmed this number")

        # Chat: our text goes in the app's framing; the app's ack shows as delivered.
        await page.goto(f"{base}/chat/{contact_id}")
        await expect(page.locator("#conn")).to_have_class("conn live")
        await page.fill("#text", "Hello from the node")
        await page.press("#text", "Enter")
        mine = page.locator(".msg.out").last
        await expect(mine.locator(".bubble")).to_have_text("Hello from the node")
        assert _to_peer(site, peer) == [X3DH_INIT, MESSAGE]
        assert peer.received[0]["text"] == "Hello from the node"
        message_id = site.messenger.conversation(contact_id)[-1].id
        site.messenger.handle_app_envelope(peer.ack(message_id), site.clock())
        await expect(mine.locator("[data-role=state]")).to_have_text("delivered")

        # The app user's reply arrives live and is acked in the app's framing.
        reply, _ = peer.text("Hi node, from the app")
        acks = site.messenger.handle_app_envelope(reply, site.clock())
        assert [peer.receive(o.envelope) for o in acks] == [ACK]
        await expect(page.locator(".msg.in").last.locator(".bubble")).to_have_text(
            "Hi node, from the app"
        )
        await _shot(page, "phone-app-chat")
        await asyncio.sleep(0)
        await context.close()
