"""The page in headless Chromium (Debian's package) over real HTTPS, as the owner would use it.

Pair with the code the OLED would show, add the peer by its card, compare the safety number,
send a message and watch its state, receive the reply live, send a file, revoke the session and
be locked out. The peer is a second real messenger; packets move between the two directly.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Browser, Page, async_playwright, expect

from pigeon.ui.oled import Uplink, render
from pigeon.ui.oled.views import StatusView
from pigeon.ui.web import ensure_certificate, serve
from tests.messenger.helpers import Endpoint
from tests.ui.web.conftest import RecordingPanel, Site, make_site, shuttle

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
SHOTS = Path(os.environ.get("PIGEON_SCREENSHOTS", "/tmp/pigeon-web-shots"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
        reason="Debian's chromium is not installed (make test installs it)",
    ),
]


class OledPanel(RecordingPanel):
    """The device panel showing a real OLED status frame."""

    def frame_png(self) -> bytes:
        view = StatusView("pigeon-ab12", 2, 12, 12288, Uplink.CONNECTING, 1, False)
        buffer = io.BytesIO()
        render(view).save(buffer, format="PNG")
        return buffer.getvalue()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before any page exists
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


async def _shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


async def _pump(site: Site, peer: Endpoint, rounds: int = 1) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(rounds):
        shuttle(site.owner, peer, site.clock())
        await asyncio.sleep(0.05 if loop else 0)


async def test_owner_pairs_chats_and_is_locked_out_after_revoking(
    tmp_path: Path, browser: Browser
) -> None:
    site = make_site(tmp_path, real_time=True, panel=OledPanel())
    peer = Endpoint(tmp_path / "peer", 4242)
    peer.start(site.clock())
    peer.messenger.set_profile("Bob", ())
    ensure_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    async with serve(site.app, 0, None, "127.0.0.1", tmp_path / "tls") as (port, _):
        base = f"https://127.0.0.1:{port}"
        context = await browser.new_context(
            ignore_https_errors=True, viewport=PHONE, device_scale_factor=2, is_mobile=True
        )
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: errors.append(message.text) if message.type == "error" else None,
        )

        # Not paired: every page leads to /pair.
        await page.goto(f"{base}/settings")
        await expect(page).to_have_url(f"{base}/pair")
        await _shot(page, "phone-pair")

        # The owner holds the button; the OLED shows the code; the owner types it.
        site.pairing.start(site.clock())
        window = site.pairing.window(site.clock())
        assert window is not None
        await page.fill("#code", window.code)
        await page.click("button[type=submit]")
        await expect(page).to_have_url(f"{base}/?flash=paired")
        await expect(page.locator(".flash")).to_contain_text("paired")
        await expect(page.locator("#conn")).to_have_class("conn live")
        await _shot(page, "phone-chats-empty")

        # Add the peer by pasting its card.
        await page.goto(f"{base}/contacts")
        await page.fill("#name", "Bob")
        await page.fill("#card", peer.messenger.own_card_text())
        await _shot(page, "phone-contacts-add")
        await page.click("#add button[type=submit]")
        await expect(page.locator(".flash")).to_contain_text("Contact added")
        contact_id = page.url.split("/contacts/")[1].split("?")[0]

        # Compare the safety number with what the peer sees for us, then mark verified.
        alice = peer.messenger.add_contact(site.messenger.own_card_text(), "Alice", site.clock())
        shown = "".join(await page.locator("#safety-number span").all_inner_texts())
        assert shown == peer.messenger.safety_number(alice.id)
        await _shot(page, "phone-contact-safety")
        await page.click("#mark-verified")
        await expect(page.locator("#safety")).to_contain_text("You confirmed this number")
        assert site.messenger.contact(contact_id).verified

        # Send a message: it shows as queued, then delivered once the peer's receipt is back.
        await page.goto(f"{base}/chat/{contact_id}")
        await expect(page.locator("#conn")).to_have_class("conn live")
        await page.fill("#text", "Hello Bob! Are you at the market today?")
        await page.press("#text", "Enter")
        mine = page.locator(".msg.out").last
        await expect(mine.locator(".bubble")).to_have_text(
            "Hello Bob! Are you at the market today?"
        )
        await expect(mine.locator("[data-role=state]")).to_have_text("queued")
        await _pump(site, peer)
        await expect(mine.locator("[data-role=state]")).to_have_text("delivered")
        assert [m.text for m in peer.messenger.conversation(alice.id)] == [
            "Hello Bob! Are you at the market today?"
        ]

        # The reply arrives live, without a reload.
        peer.messenger.send_text(alice.id, "Yes, by the fountain at noon.", site.clock())
        await _pump(site, peer)
        reply = page.locator(".msg.in").last
        await expect(reply.locator(".bubble")).to_have_text("Yes, by the fountain at noon.")

        # Send a file from the chat.
        picture = io.BytesIO()
        Image.new("RGB", (64, 48), (40, 120, 200)).save(picture, format="PNG")
        await page.set_input_files(
            "#file",
            files=[{"name": "map.png", "mimeType": "image/png", "buffer": picture.getvalue()}],
        )
        file_message = page.locator(".msg.out .file .name", has_text="map.png")
        await expect(file_message).to_be_visible()
        await _pump(site, peer, rounds=3)
        await expect(page.locator(".msg.out").last.locator("[data-role=state]")).to_have_text(
            "delivered"
        )
        received = [m for m in peer.messenger.conversation(alice.id) if m.kind == "file"]
        assert peer.messenger.file_data(received[0].id) == ("map.png", picture.getvalue())

        # A file from the peer arrives live and downloads from the chat.
        notes = ("Market list:\n" + "apples, bread, cheese\n" * 400).encode()
        peer.messenger.send_file(alice.id, "list.txt", notes, site.clock())
        await _pump(site, peer, rounds=3)
        incoming = page.locator(".msg.in a.name", has_text="list.txt")
        await expect(incoming).to_be_visible()
        async with page.expect_download() as waiting:
            await incoming.click()
        download = await waiting.value
        assert download.suggested_filename == "list.txt"
        saved = Path(str(await download.path()))
        assert await asyncio.to_thread(saved.read_bytes) == notes
        await _shot(page, "phone-chat")

        for path, name in [
            ("/", "phone-chats"),
            ("/contacts", "phone-contacts"),
            ("/card", "phone-card"),
            ("/node", "phone-node"),
            ("/device", "phone-device"),
            ("/settings", "phone-settings"),
        ]:
            await page.goto(base + path)
            await page.wait_for_timeout(400)
            await _shot(page, name)

        desktop = await browser.new_context(
            ignore_https_errors=True, viewport=DESKTOP, color_scheme="dark"
        )
        await desktop.add_cookies(await context.cookies())
        wide = await desktop.new_page()
        for path, name in [
            (f"/chat/{contact_id}", "desktop-chat"),
            (f"/contacts/{contact_id}", "desktop-contact"),
            ("/node", "desktop-node"),
            ("/device", "desktop-device"),
        ]:
            await wide.goto(base + path)
            await wide.wait_for_timeout(400)
            await _shot(wide, name)
        await desktop.close()

        assert errors == [], errors

        # Revoke this browser on the settings page: it is signed out and stays out.
        await page.goto(f"{base}/settings")
        await page.locator("#browsers .row", has_text="this browser").locator("a.danger").click()
        await page.click("#confirm-revoke")
        await expect(page).to_have_url(f"{base}/pair")
        await page.goto(f"{base}/chat/{contact_id}")
        await expect(page).to_have_url(f"{base}/pair")
        status = await page.evaluate("fetch('/api/contacts').then(r => r.status)")
        assert status == 401
        assert not site.pairing.is_paired()
        await context.close()


async def test_device_panel_buttons_reach_the_panel(tmp_path: Path, browser: Browser) -> None:
    site = make_site(tmp_path, real_time=True, panel=OledPanel())
    ensure_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    async with serve(site.app, 0, None, "127.0.0.1", tmp_path / "tls") as (port, _):
        base = f"https://127.0.0.1:{port}"
        context = await browser.new_context(ignore_https_errors=True, viewport=PHONE)
        page = await context.new_page()
        await page.goto(f"{base}/pair")
        await page.fill("#code", site.pairing.start(site.clock()))
        await page.click("button[type=submit]")
        await page.goto(f"{base}/device")
        await expect(page.locator("#oled")).to_be_visible()
        button = page.locator("[data-button=a]")
        await button.hover()
        await page.mouse.down()
        await expect(button).to_have_class("down")
        await page.mouse.up()
        for _ in range(50):
            if len(site.panel.edges) == 2:
                break
            await asyncio.sleep(0.05)
        assert site.panel.edges == [("a", True), ("a", False)]
        both = page.locator('[data-button="a b"]')  # one pointer holds both (identity reset)
        await both.hover()
        await page.mouse.down()
        for _ in range(50):
            if len(site.panel.edges) == 4:
                break
            await asyncio.sleep(0.05)
        await page.mouse.up()
        for _ in range(50):
            if len(site.panel.edges) == 6:
                break
            await asyncio.sleep(0.05)
        assert set(site.panel.edges[2:4]) == {("a", True), ("b", True)}
        assert set(site.panel.edges[4:]) == {("a", False), ("b", False)}
        await context.close()


async def test_long_conversations_page_back(tmp_path: Path, browser: Browser) -> None:
    site = make_site(tmp_path, real_time=True)
    peer = Endpoint(tmp_path / "peer", 77)
    peer.start(site.clock())
    bob = site.messenger.add_contact(peer.messenger.own_card_text(), "Bob", site.clock())
    for index in range(130):
        site.messenger.send_text(bob.id, f"note {index:03d}", site.clock())
    ensure_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    async with serve(site.app, 0, None, "127.0.0.1", tmp_path / "tls") as (port, _):
        base = f"https://127.0.0.1:{port}"
        context = await browser.new_context(ignore_https_errors=True, viewport=PHONE)
        page = await context.new_page()
        await page.goto(f"{base}/pair")
        await page.fill("#code", site.pairing.start(site.clock()))
        await page.click("button[type=submit]")
        await page.goto(f"{base}/chat/{bob.id}")
        bubbles = page.locator(".msg .bubble")
        await expect(bubbles).to_have_count(100)
        await expect(bubbles.first).to_have_text("note 030")
        await page.click("#older")
        await expect(bubbles).to_have_count(130)
        await expect(bubbles.first).to_have_text("note 000")
        await expect(bubbles.nth(30)).to_have_text("note 030")
        await expect(page.locator("#older")).to_have_count(0)
        await context.close()


async def test_a_reset_asked_for_on_the_buttons_is_confirmed_on_the_page(
    tmp_path: Path, browser: Browser
) -> None:
    site = make_site(tmp_path, real_time=True)
    ensure_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    async with serve(site.app, 0, None, "127.0.0.1", tmp_path / "tls") as (port, _):
        base = f"https://127.0.0.1:{port}"
        context = await browser.new_context(ignore_https_errors=True, viewport=PHONE)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{base}/pair")
        await page.fill("#code", site.pairing.start(site.clock()))
        await page.click("button[type=submit]")
        await expect(page.locator("#reset-notice")).to_have_count(0)

        site.reset.armed = True  # both buttons were held for 10 s
        await page.goto(f"{base}/settings")
        notice = page.locator("#reset-notice")
        await expect(notice).to_be_visible()
        await notice.locator("a").click()
        await expect(page).to_have_url(f"{base}/reset")
        await _shot(page, "phone-reset")
        await page.fill("#confirm", "not the name")
        await page.click("#confirm-reset")
        await expect(page.locator(".flash.bad")).to_contain_text("to confirm")
        assert site.reset.confirmed == 0
        await page.fill("#confirm", "pigeon-ab12")
        await page.click("#confirm-reset")
        await expect(page).to_have_url(f"{base}/pair?flash=reset")
        await expect(page.locator(".flash")).to_contain_text("new identity")
        assert site.reset.confirmed == 1
        assert await context.cookies() == []
        await page.goto(f"{base}/")
        await expect(page).to_have_url(f"{base}/pair")
        assert errors == [], errors
        await context.close()
