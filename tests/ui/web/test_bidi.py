"""Text direction in headless Chromium: names, messages and file names keep their own direction
and cannot reorder the words around them (a right-to-left override stays in its own bubble).

Positions are read from the laid-out page: `_span` gives the left and right edge, in CSS pixels,
of the first occurrence of a piece of text inside an element.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from pigeon.ui.web import ensure_certificate, serve
from tests.messenger.helpers import Endpoint
from tests.ui.web.conftest import Site, make_site, shuttle
from tests.ui.web.test_browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE
from tests.ui.web.test_browser import pytestmark as browser_marks

pytestmark = browser_marks  # slow, and skipped without Debian's chromium, as test_browser.py

RLO = "\u202e"
PDI = "\u2069"
PDF = "\u202c"
NAME = "2 דנה"  # Hebrew, starting with a digit: laid out right to left, the 2 comes first (right)
SPOOF = f"{PDI}{PDF}{RLO}evil.exe"  # unmatched closers first: they must not close our isolation
HEBREW = "שלום!"  # right to left: the "!" ends the sentence at its left
ARABIC = "مرحبا!"

OVERHANG_PX = 1.0
_SPAN_JS = """([selector, needle]) => {
  const root = document.querySelector(selector);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.data.indexOf(needle);
    if (at < 0) continue;
    const range = document.createRange();
    range.setStart(node, at);
    range.setEnd(node, at + needle.length);
    const box = range.getBoundingClientRect();
    return [box.left, box.right];
  }
  return null;
}"""


async def _span(page: Page, selector: str, needle: str) -> tuple[float, float]:
    found = await page.evaluate(_SPAN_JS, [selector, needle])
    assert found is not None, (selector, needle)
    return float(found[0]), float(found[1])


async def _left_of(page: Page, selector: str, first: str, second: str) -> bool:
    """True if all of `first` is laid out left of all of `second` (inside `selector`), give or
    take a pixel of glyph overhang."""
    left_one, right_one = await _span(page, selector, first)
    left_two, _ = await _span(page, selector, second)
    return right_one <= left_two + OVERHANG_PX and left_one < left_two


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


async def _pair(page: Page, site: Site, base: str) -> None:
    await page.goto(f"{base}/pair")
    await page.fill("#code", site.pairing.start(site.clock()))
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{base}/?flash=paired")


async def test_names_messages_and_file_names_keep_their_direction_to_themselves(
    tmp_path: Path, chromium: Browser
) -> None:
    site = make_site(tmp_path, real_time=True)
    peer = Endpoint(tmp_path / "peer", 4343)
    peer.start(site.clock())
    contact = site.messenger.add_contact(peer.messenger.own_card_text(), NAME, site.clock())
    alice = peer.messenger.add_contact(site.messenger.own_card_text(), "Alice", site.clock())
    site.messenger.send_text(contact.id, SPOOF, site.clock())
    peer.messenger.send_file(alice.id, "דוח 7.pdf", b"%PDF-1.4 report", site.clock())
    for _ in range(3):
        shuttle(site.owner, peer, site.clock())
    site.messenger.send_text(contact.id, HEBREW, site.clock())  # the latest: the list shows it
    shuttle(site.owner, peer, site.clock())
    ensure_certificate(tmp_path / "tls", ["localhost"], ["127.0.0.1"])
    async with serve(site.app, 0, None, "127.0.0.1", tmp_path / "tls") as (port, _):
        base = f"https://127.0.0.1:{port}"
        context = await chromium.new_context(ignore_https_errors=True, viewport=PHONE)
        page = await context.new_page()
        await _pair(page, site, base)

        # The chat list: the name and the latest message each in their own direction, after
        # our own "You:" and never moving it.
        row = "#conversations .row"
        assert await _left_of(page, f"{row} .title", "דנה", "2")  # the name reads 2 first
        assert await _left_of(page, f"{row} .sub", "You:", "שלום")
        assert await _left_of(page, f"{row} .sub", "!", "שלום")

        # The chat: each bubble is laid out in its own direction; the override stays inside
        # its bubble (the later bubble and the state labels read normally).
        await page.goto(f"{base}/chat/{contact.id}")
        hebrew = f"#m-{site.messenger.conversation(contact.id)[-1].id}"
        assert await _left_of(page, f"{hebrew} .bubble", "!", "שלום")
        assert await _left_of(page, ".chat-head .title", "דנה", "2")
        file_name = ".msg.in .file .name"
        assert await _left_of(page, file_name, "7.pdf", "דוח")  # its own RTL order, kept whole
        for state in await page.locator(".msg.out [data-role=state]").all():
            await expect(state).to_have_text("delivered")
        spoof = f"#m-{site.messenger.conversation(contact.id)[0].id}"
        # Inside its bubble the override does what its sender wrote (the text is shown as
        # sent: "exe.live"), but the bubble's time and state below read normally.
        assert await _left_of(page, f"{spoof} .bubble", "exe", "evil")
        assert await _left_of(page, f"{spoof} .meta", ":", "delivered")  # time, then state

        # A message arriving live (inserted by the script) is isolated the same way.
        peer.messenger.send_text(alice.id, ARABIC, site.clock())
        for _ in range(3):
            shuttle(site.owner, peer, site.clock())
            await asyncio.sleep(0.05)
        live = page.locator(".msg.in .bubble", has_text="مرحبا")
        await expect(live).to_have_count(1)
        assert await live.get_attribute("dir") == "auto"
        assert await _left_of(page, ".msg.in:last-child .bubble", "!", "مرحبا")

        # The contact page's sentences keep their word order around the name (on one line).
        await page.set_viewport_size(DESKTOP)
        await page.goto(f"{base}/contacts/{contact.id}")
        sentence = "#safety p"
        assert await _left_of(page, sentence, "the ones", "דנה")
        assert await _left_of(page, sentence, "דנה", "2")
        assert await _left_of(page, sentence, "2", "sees")
        await context.close()
