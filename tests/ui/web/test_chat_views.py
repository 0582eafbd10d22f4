"""The chat page keeps a rendered conversation until the messenger reports a change."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from markupsafe import Markup

from pigeon.messenger.api import MessageView
from pigeon.ui.web.chat_views import MAX_KEPT_CHATS, ChatViews
from pigeon.ui.web.message_html import render_message
from tests.messenger.helpers import PASSPHRASE, Endpoint
from tests.ui.web.conftest import Browser, Site, pair, shuttle

AiohttpClient = Any


def _vault_statements(site: Site) -> Callable[[], list[str]]:
    """Start recording the SQL run on the owner's vault; the returned call stops and reports."""
    statements: list[str] = []
    connection = site.owner.keeper.vault._db._live()
    connection.set_trace_callback(statements.append)  # type: ignore[attr-defined]

    def stop() -> list[str]:
        connection.set_trace_callback(None)  # type: ignore[attr-defined]
        return statements

    return stop


def _befriend(site: Site, tmp_path: Path) -> tuple[Endpoint, str, str]:
    peer = Endpoint(tmp_path / "peer", 900)
    peer.start(site.clock())
    contact = site.messenger.add_contact(peer.messenger.own_card_text(), "Bob", site.clock())
    at_peer = peer.messenger.add_contact(site.messenger.own_card_text(), "Alice", site.clock())
    return peer, contact.id, at_peer.id


async def test_an_unchanged_chat_is_shown_again_without_reading_the_vault(
    site: Site, tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    _, contact_id, _ = _befriend(site, tmp_path)
    for index in range(5):
        site.messenger.send_text(contact_id, f"note {index}", site.clock())
    owner = Browser(await aiohttp_client(site.app), pair(site))
    first = await (await owner.get(f"/chat/{contact_id}")).text()
    stop = _vault_statements(site)
    again = await (await owner.get(f"/chat/{contact_id}")).text()
    assert stop() == []
    assert again == first
    assert "note 4" in again


async def test_every_change_shows_on_the_next_view(
    site: Site, tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    peer, contact_id, alice_at_peer = _befriend(site, tmp_path)
    owner = Browser(await aiohttp_client(site.app), pair(site))
    path = f"/chat/{contact_id}"
    assert "No messages yet" in await (await owner.get(path)).text()
    site.messenger.send_text(contact_id, "hello <b>Bob</b>", site.clock())  # message added
    page = await (await owner.get(path)).text()
    assert "hello &lt;b&gt;Bob&lt;/b&gt;" in page
    assert "delivered" not in page
    shuttle(site.owner, peer, site.clock() + 1)  # message updated: delivered
    assert "delivered" in await (await owner.get(path)).text()
    peer.messenger.send_text(alice_at_peer, "hi Alice", site.clock() + 2)
    shuttle(site.owner, peer, site.clock() + 3)  # an incoming message, unread on the tab
    page = await (await owner.get(path)).text()
    assert "hi Alice" in page
    assert 'id="unread-total">1<' in page
    site.messenger.rename_contact(contact_id, "Robert")  # contacts changed
    assert "Robert" in await (await owner.get(path)).text()
    assert "Contact renamed." in await (await owner.get(path + "?flash=renamed")).text()
    site.messenger.lock(site.clock())  # lock changed: no kept page is served while locked
    locked = await owner.get(path)
    assert locked.status == 423
    assert "hi Alice" not in await locked.text()
    site.messenger.unlock(PASSPHRASE, site.clock())
    assert "hi Alice" in await (await owner.get(path)).text()


class Renders:
    """render_message, noting the text of each message it renders."""

    def __init__(self, during: Callable[[], None] | None = None) -> None:
        self.texts: list[str | None] = []
        self.during = during  # called once, at the first render

    def __call__(self, message: MessageView) -> Markup:
        self.texts.append(message.text)
        if self.during is not None:
            during, self.during = self.during, None
            during()
        return render_message(message)


def test_a_view_read_while_the_conversation_changed_is_not_kept(site: Site, tmp_path: Path) -> None:
    _, contact_id, _ = _befriend(site, tmp_path)
    site.messenger.send_text(contact_id, "first", site.clock())
    arrives = Renders(lambda: site.messenger.send_text(contact_id, "second", site.clock()))
    views = ChatViews(site.messenger, arrives)
    try:
        assert "second" not in views.view(contact_id).messages_html  # read before it arrived
        assert "second" in views.view(contact_id).messages_html
        views.view(contact_id)
        assert arrives.texts == ["first", "first", "second"]  # nothing of the first view kept
        views.clear()
        views.view(contact_id)
        assert arrives.texts[3:] == ["first", "second"]
    finally:
        views.close()


def test_after_a_change_only_new_and_changed_messages_are_rendered_again(
    site: Site, tmp_path: Path
) -> None:
    peer, contact_id, _ = _befriend(site, tmp_path)
    for index in range(3):
        site.messenger.send_text(contact_id, f"note {index}", site.clock())
    renders = Renders()
    views = ChatViews(site.messenger, renders)
    try:
        views.view(contact_id)
        assert renders.texts == ["note 0", "note 1", "note 2"]
        site.messenger.send_text(contact_id, "note 3", site.clock())
        assert "note 3" in views.view(contact_id).messages_html
        assert renders.texts[3:] == ["note 3"]
        shuttle(site.owner, peer, site.clock() + 1)  # every state changes: all render again
        assert views.view(contact_id).messages_html.count(">delivered<") == 4
        assert sorted(renders.texts[4:]) == ["note 0", "note 1", "note 2", "note 3"]
        site.messenger.lock(site.clock())  # the lock drops every rendered text
        site.messenger.unlock(PASSPHRASE, site.clock())
        views.view(contact_id)
        assert len(renders.texts) == 12
    finally:
        views.close()


def test_at_most_max_kept_chats_are_kept_the_oldest_goes_first(site: Site, tmp_path: Path) -> None:
    contact_ids = []
    for index in range(MAX_KEPT_CHATS + 1):
        peer = Endpoint(tmp_path / f"peer{index}", 900 + index)
        peer.start(site.clock())
        card = peer.messenger.own_card_text()
        contact_ids.append(site.messenger.add_contact(card, f"Peer {index}", site.clock()).id)
    for contact_id in contact_ids:
        site.messenger.send_text(contact_id, contact_id, site.clock())
    renders = Renders()
    views = ChatViews(site.messenger, renders)
    try:
        for contact_id in contact_ids:
            views.view(contact_id)
        assert renders.texts == contact_ids
        views.view(contact_ids[-1])  # still kept
        views.view(contact_ids[0])  # the oldest made room for the last: rendered again
        assert renders.texts[len(contact_ids) :] == [contact_ids[0]]
    finally:
        views.close()
