"""A message's HTML from message_html.py is byte for byte what the Jinja macro it replaced gave.

The macro is kept, frozen, as tests/ui/web/message_macro.html (the oracle), rendered by the
page's own environment (same filters, globals, autoescaping and whitespace rules); the golden
file holds what the macro rendered for fixed messages at the commit that replaced it, in UTC.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from pigeon.messenger.api import MessageView
from pigeon.ui.web.message_html import render_message
from pigeon.ui.web.render import ENVIRONMENT, STATE_LABELS
from tests.messenger.helpers import Endpoint
from tests.ui.web.conftest import Browser, make_site, pair

AiohttpClient = Any
HERE = Path(__file__).parent
GOLDEN = HERE / "golden" / "message_html.json"

_ORACLE = ENVIRONMENT.overlay(
    loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(HERE), ENVIRONMENT.loader])  # type: ignore[list-item]
)


def macro_html(message: MessageView) -> str:
    """The message through the old macro, called as the page called it (no page context)."""
    module = _ORACLE.get_template("message_macro.html").module
    return str(Markup(module.message(message)))  # type: ignore[attr-defined]


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is UTC (the golden times were rendered in UTC)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_golden_messages_render_as_the_macro_rendered_them(utc: None) -> None:
    cases = json.loads(GOLDEN.read_text(encoding="utf-8"))
    states = {case["message"]["state"] for case in cases}
    assert states == set(STATE_LABELS)  # every state, with files and texts, in and out
    for case in cases:
        message = MessageView(**case["message"])
        assert str(render_message(message)) == case["html"]
        assert macro_html(message) == case["html"]  # the oracle is the macro that made them


# Markup and quoting characters, right-to-left letters, bidi controls, newlines, and the rest.
_RTL = "\u05e9\u05dc\u05d5\u05dd\u0645\u0631\u062d\u0628\u0627"  # Hebrew and Arabic letters
_TRICKY = st.sampled_from(list("<>&\"'`=/ \n\t0x\u202e\u2066\u2069\u202c\u200f" + _RTL))
_TEXT = st.one_of(st.none(), st.text(_TRICKY, max_size=20), st.text(max_size=20))
_PROGRESS = st.one_of(
    st.none(), st.sampled_from([0.0, 0.5, 0.999, 1.0, 1.5]), st.floats(allow_nan=True)
)
_MESSAGES = st.builds(
    MessageView,
    id=st.one_of(st.text(_TRICKY, min_size=1, max_size=12), st.text(min_size=1, max_size=12)),
    contact_id=st.just("c1"),
    direction=st.sampled_from(["in", "out"]),
    kind=st.sampled_from(["text", "file"]),
    text=_TEXT,
    file_name=_TEXT,
    file_size=st.one_of(st.none(), st.integers(0, 2**40)),
    file_progress=_PROGRESS,
    state=st.sampled_from(sorted(STATE_LABELS)),
    failure_reason=_TEXT,
    created_at=st.one_of(
        st.floats(0, 4_102_444_800, allow_nan=False), st.integers(0, 4_102_444_800)
    ),
    updated_at=st.just(0.0),
    seq=st.integers(1, 2**31),
)


@settings(max_examples=500, deadline=None)
@given(_MESSAGES)
def test_any_message_renders_as_the_macro_rendered_it(message: MessageView) -> None:
    assert str(render_message(message)) == macro_html(message)


@pytest.mark.parametrize("twelve_hour", [False, True])
async def test_the_chat_page_shows_the_messages_as_the_macro_rendered_them(
    tmp_path: Path, aiohttp_client: AiohttpClient, twelve_hour: bool
) -> None:
    site = make_site(tmp_path, twelve_hour=twelve_hour)
    robin = Endpoint(tmp_path / "robin", 78)
    robin.start(site.clock())
    contact = site.messenger.add_contact(robin.messenger.own_card_text(), "Robin", site.clock())
    for index, text in enumerate(["<b>hi</b> & 'you'", "שלום!", "\u202eevil.exe", "plain"]):
        site.messenger.send_text(contact.id, text, site.clock() + 3600 * 7 * index)
    owner = Browser(await aiohttp_client(site.app), pair(site))
    page = await (await owner.get(f"/chat/{contact.id}")).text()
    messages_block = r'<div class="messages"[^>]*>\n(.*)</div>\n<div class="composer">'
    shown = re.search(messages_block, page, re.S)
    assert shown is not None
    expected = "".join(macro_html(m) for m in site.messenger.conversation(contact.id, limit=100))
    assert shown.group(1) == expected
    assert f'data-clock="{"12h" if twelve_hour else "24h"}"' in page
