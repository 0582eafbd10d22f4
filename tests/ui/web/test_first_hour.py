"""A new owner's first hour on the page, in headless Chromium over real HTTPS: the first
passphrase on a device-bound vault, locking only once it can be undone, errors that keep the
add-contact form, error pages inside the page's frame, the unread badge while a chat is open,
and revoking a browser after confirming which one it is."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright, expect

from pigeon.daemon.first_boot import auto_unlock_path, open_vault_at_start
from pigeon.daemon.node_messenger import NodeMessenger
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.ui.web import FilePairingStore, Pairing, WebConfig, build_app, ensure_certificate, serve
from tests.messenger.helpers import CHEAP_ARGON2, Endpoint
from tests.ui.web.conftest import (
    ALLOWED_HOSTS,
    NODE_NAME,
    RecordingPanel,
    StaticStatus,
    make_site,
)
from tests.ui.web.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

NEW_PASSPHRASE = "my first passphrase"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


@dataclass
class NodeSite:
    """The page over the messenger as the node runs it: first boot left it device-bound."""

    root: Path
    messenger: NodeMessenger
    pairing: Pairing
    app: web.Application


def device_bound_site(root: Path) -> NodeSite:
    data = DataDir(root / "node")
    messenger = NodeMessenger(
        VaultKeeper(data, argon2=CHEAP_ARGON2), open_spool(data), rng=random.Random(5).randbytes
    )
    open_vault_at_start(messenger, data, time.time())
    pairing = Pairing(FilePairingStore(root / "web-sessions.json"))
    config = WebConfig(
        node_name=NODE_NAME,
        allowed_hosts=ALLOWED_HOSTS,
        passphrase_set=lambda: not messenger.device_bound,
    )
    app = build_app(messenger, StaticStatus(), RecordingPanel(), pairing, config)
    return NodeSite(root, messenger, pairing, app)


async def pair_page(page: Page, base: str, pairing: Pairing) -> None:
    """Pair `page`'s browser by typing the code the OLED would show."""
    code = pairing.start(time.time())
    await page.goto(f"{base}/pair")
    await page.fill("#code", code)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{base}/?flash=paired")


async def test_the_first_passphrase_is_set_on_the_page_then_lock_is_offered(
    tmp_path: Path, browser: Browser
) -> None:
    site = device_bound_site(tmp_path)
    assert site.messenger.device_bound
    ensure_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    async with serve(site.app, 0, None, "127.0.0.1", tmp_path / "tls") as (port, _):
        base = f"https://127.0.0.1:{port}"
        context = await browser.new_context(ignore_https_errors=True)
        page = await context.new_page()
        await pair_page(page, base, site.pairing)

        # Device-bound: a form for the first passphrase, no "current" field, no lock button.
        await page.goto(f"{base}/settings")
        await expect(page.locator("#set-passphrase")).to_be_visible()
        await expect(page.locator("#old")).to_have_count(0)
        await expect(page.locator("#lock-vault")).to_have_count(0)
        await expect(page.locator("#device-bound")).to_contain_text("No passphrase is set yet")

        # Locking anyway (an old form, a script) is refused: nothing could open it again.
        status = await page.evaluate(
            "fetch('/settings/lock', {method: 'POST'}).then(r => r.status)"
        )
        assert status == 409
        assert not site.messenger.is_locked

        await page.fill("#new", NEW_PASSPHRASE)
        await page.click("#set-passphrase button[type=submit]")
        await expect(page.locator(".flash")).to_contain_text("Passphrase set")
        assert not site.messenger.device_bound
        assert not auto_unlock_path(DataDir(tmp_path / "node")).exists()

        # Owner-bound: lock is offered, and the passphrase just set opens the vault again.
        await expect(page.locator("#change-passphrase #old")).to_be_visible()
        await page.click("#lock-vault")
        await expect(page.locator("h1")).to_have_text("Unlock the vault")
        assert site.messenger.is_locked
        await page.fill("#passphrase", NEW_PASSPHRASE)
        await page.click("button[type=submit]")
        await expect(page.locator("#passphrase")).to_have_count(0)
        assert not site.messenger.is_locked
        await context.close()


async def test_adding_a_contact_keeps_the_form_and_takes_the_name_from_the_card(
    tmp_path: Path, browser: Browser
) -> None:
    site = make_site(tmp_path, real_time=True)
    robin = Endpoint(tmp_path / "robin", 77)
    robin.start(site.clock())
    robin.messenger.set_profile("Robin", ())
    own_card = site.messenger.own_card_text()
    ensure_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    async with serve(site.app, 0, None, "127.0.0.1", tmp_path / "tls") as (port, _):
        base = f"https://127.0.0.1:{port}"
        context = await browser.new_context(ignore_https_errors=True)
        page = await context.new_page()
        await pair_page(page, base, site.pairing)
        await page.goto(f"{base}/contacts")

        # Our own card: said so, and what was typed stays in the form.
        await page.fill("#name", "Me myself")
        await page.fill("#card", own_card)
        await page.click("#add button[type=submit]")
        await expect(page.locator(".flash.bad")).to_contain_text("That is your own card")
        await expect(page.locator("#name")).to_have_value("Me myself")
        await expect(page.locator("#card")).to_have_value(own_card)

        await page.fill("#card", "PIGEON:NOTACARD")
        await page.click("#add button[type=submit]")
        await expect(page.locator(".flash.bad")).to_contain_text("not a valid contact card")
        await expect(page.locator("#card")).to_have_value("PIGEON:NOTACARD")
        await expect(page.locator("#name")).to_have_value("Me myself")

        # No name given: the contact takes the name its card carries, signed.
        await page.fill("#name", "")
        await page.fill("#card", robin.messenger.own_card_text())
        await page.click("#add button[type=submit]")
        await expect(page.locator(".flash")).to_contain_text("Contact added")
        await expect(page.locator(".chat-head .title")).to_have_text("Robin")
        assert [c.name for c in site.messenger.contacts()] == ["Robin"]
        await context.close()
