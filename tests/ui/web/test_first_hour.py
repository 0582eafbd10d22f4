"""A new owner's first hour on the page, in headless Chromium over real HTTPS: the first
passphrase on a device-bound vault, locking only once it can be undone, errors that keep the
add-contact form, error pages inside the page's frame, the unread badge while a chat is open,
and revoking a browser after confirming which one it is."""

from __future__ import annotations

import datetime
import random
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from playwright.async_api import Browser, Page, async_playwright, expect

from pigeon.daemon.first_boot import open_vault_at_start
from pigeon.daemon.node_messenger import NodeMessenger
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.ui.oled.screens import time_label
from pigeon.ui.web import FilePairingStore, Pairing, WebConfig, build_app, ensure_certificate, serve
from pigeon.ui.web.render import clock_text
from tests.messenger.helpers import CHEAP_ARGON2, Endpoint
from tests.ui.web.conftest import (
    ALLOWED_HOSTS,
    NODE_NAME,
    RecordingPanel,
    StaticStatus,
    make_site,
    shuttle,
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
        assert not DataDir(tmp_path / "node").auto_unlock.exists()

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


async def test_error_pages_keep_the_frame_and_lead_back(tmp_path: Path, browser: Browser) -> None:
    site = make_site(tmp_path, real_time=True)
    ensure_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    async with serve(site.app, 0, None, "127.0.0.1", tmp_path / "tls") as (port, _):
        base = f"https://127.0.0.1:{port}"
        context = await browser.new_context(ignore_https_errors=True)
        page = await context.new_page()
        await pair_page(page, base, site.pairing)
        response = await page.goto(f"{base}/no/such/page")
        assert response is not None
        assert response.status == 404
        await expect(page.locator("h1")).to_have_text("Page not found")
        await expect(page.locator("nav.tabs")).to_be_visible()
        await expect(page.locator("header .brand")).to_be_visible()
        await page.click("#back")
        await expect(page).to_have_url(f"{base}/")

        response = await page.goto(f"{base}/contacts/AAAA-BBBB-CCCC-DDDD-EEEE")
        assert response is not None
        assert response.status == 404
        await expect(page.locator("#error")).to_contain_text("No such contact")
        await expect(page.locator("#back")).to_have_text("Back to contacts")
        await expect(page.locator("nav.tabs")).to_be_visible()
        await context.close()


async def test_the_unread_badge_follows_while_a_chat_is_open(
    tmp_path: Path, browser: Browser
) -> None:
    site = make_site(tmp_path, real_time=True)
    now = site.clock()
    bob, carol = Endpoint(tmp_path / "bob", 31), Endpoint(tmp_path / "carol", 32)
    ids = {}
    for peer, name in ((bob, "Bob"), (carol, "Carol")):
        peer.start(now)
        ids[name] = site.messenger.add_contact(peer.messenger.own_card_text(), name, now).id
        peer.messenger.add_contact(site.messenger.own_card_text(), "Alice", now)
    alice_at_bob = bob.messenger.contacts()[0].id
    bob.messenger.send_text(alice_at_bob, "Bob's first", now)
    shuttle(site.owner, bob, now)
    assert site.messenger.contact(ids["Bob"]).unread == 1
    ensure_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    async with serve(site.app, 0, None, "127.0.0.1", tmp_path / "tls") as (port, _):
        base = f"https://127.0.0.1:{port}"
        context = await browser.new_context(ignore_https_errors=True)
        page = await context.new_page()
        await pair_page(page, base, site.pairing)
        await expect(page.locator("#unread-total")).to_have_text("1")

        # Opening Bob's chat reads it: the badge goes, without a reload.
        await page.goto(f"{base}/chat/{ids['Bob']}")
        await expect(page.locator("#conn")).to_have_class("conn live")
        await expect(page.locator("#unread-total")).to_have_count(0)

        # Carol writes while Bob's chat is open: the badge counts her message.
        carol.messenger.send_text(carol.messenger.contacts()[0].id, "Carol here", site.clock())
        shuttle(site.owner, carol, site.clock())
        await expect(page.locator("#unread-total")).to_have_text("1")
        await context.close()


async def test_revoking_a_browser_says_which_and_asks_first(
    tmp_path: Path, browser: Browser
) -> None:
    site = make_site(tmp_path, real_time=True)
    ensure_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    async with serve(site.app, 0, None, "127.0.0.1", tmp_path / "tls") as (port, _):
        base = f"https://127.0.0.1:{port}"
        other = await browser.new_context(ignore_https_errors=True)
        await pair_page(await other.new_page(), base, site.pairing)
        context = await browser.new_context(ignore_https_errors=True)
        page = await context.new_page()
        await pair_page(page, base, site.pairing)
        await page.goto(f"{base}/settings")

        # The same label twice: the rows tell them apart by when each was paired and an id.
        rows = page.locator("#browsers .row")
        await expect(rows).to_have_count(2)
        subs = await rows.locator(".sub").all_inner_texts()
        assert all("paired " in sub and "last seen" in sub for sub in subs)
        assert len(set(subs)) == 2
        mine = await page.locator("#browsers .row", has_text="this browser").get_attribute(
            "data-session"
        )
        theirs = next(s.session_id for s in site.pairing.sessions() if s.session_id != mine)

        # Revoke asks first, naming the browser; "Keep it" changes nothing.
        await page.click(f"a.danger[data-session='{theirs}']")
        await expect(page.locator("#revoke h1")).to_have_text("Revoke this browser?")
        await expect(page.locator("#revoke")).to_contain_text(f"#{theirs[:6]}")
        await expect(page.locator("#revoke")).to_contain_text("Paired ")
        await page.click("#keep-browser")
        await expect(rows).to_have_count(2)
        assert len(site.pairing.sessions()) == 2

        await page.click(f"a.danger[data-session='{theirs}']")
        await page.click("#confirm-revoke")
        await expect(page.locator(".flash")).to_contain_text("Browser revoked")
        assert [s.session_id for s in site.pairing.sessions()] == [mine]
        await other.close()
        await context.close()


async def test_the_device_page_says_when_the_screen_sleeps(
    tmp_path: Path, browser: Browser
) -> None:
    panel = RecordingPanel(sleeping=True)
    site = make_site(tmp_path, real_time=True, panel=panel)
    ensure_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    async with serve(site.app, 0, None, "127.0.0.1", tmp_path / "tls") as (port, _):
        base = f"https://127.0.0.1:{port}"
        context = await browser.new_context(ignore_https_errors=True)
        page = await context.new_page()
        await pair_page(page, base, site.pairing)
        await page.goto(f"{base}/device")
        await expect(page.locator("#oled-asleep")).to_be_visible()
        await expect(page.locator("#oled-asleep")).to_contain_text("The screen is asleep")
        await expect(page.locator("main")).to_contain_text("The screen sleeps after 1 minute")
        panel.sleeping = False  # a button woke it: the note goes without a reload
        await expect(page.locator("#oled-asleep")).to_be_hidden()
        panel.sleeping = True
        await expect(page.locator("#oled-asleep")).to_be_visible()
        await context.close()


@pytest.mark.parametrize(
    ("twelve_hour", "pattern"), [(True, r"^\d{1,2}:\d{2}(am|pm)$"), (False, r"^\d{2}:\d{2}$")]
)
async def test_the_page_shows_times_on_the_nodes_clock_setting(
    tmp_path: Path, browser: Browser, twelve_hour: bool, pattern: str
) -> None:
    site = make_site(tmp_path, real_time=True, twelve_hour=twelve_hour)
    robin = Endpoint(tmp_path / "robin", 78)
    robin.start(site.clock())
    contact = site.messenger.add_contact(robin.messenger.own_card_text(), "Robin", site.clock())
    site.messenger.send_text(contact.id, "what time is it?", site.clock())
    ensure_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    async with serve(site.app, 0, None, "127.0.0.1", tmp_path / "tls") as (port, _):
        base = f"https://127.0.0.1:{port}"
        context = await browser.new_context(ignore_https_errors=True, locale="en-US")
        page = await context.new_page()
        await pair_page(page, base, site.pairing)
        await page.goto(f"{base}/chat/{contact.id}")
        await expect(page.locator(".msg.out time")).to_have_text(re.compile(pattern))
        await context.close()


def test_server_side_times_follow_the_clock_setting() -> None:
    evening = datetime.datetime(2026, 11, 21, 18, 54).timestamp()
    morning = datetime.datetime(2026, 11, 21, 0, 5).timestamp()
    assert (clock_text(evening, True), clock_text(evening, False)) == ("6:54pm", "18:54")
    assert (clock_text(morning, True), clock_text(morning, False)) == ("12:05am", "00:05")


@given(st.integers(min_value=946_684_800, max_value=4_102_444_800), st.booleans())
def test_the_oled_and_the_page_print_a_time_alike(at: int, twelve: bool) -> None:
    moment = datetime.datetime.fromtimestamp(at)  # the daemon's conversion for the OLED
    assert time_label(moment, None, twelve) == clock_text(at, twelve)
