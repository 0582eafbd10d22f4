"""`build_app`: the whole page as one aiohttp Application, every route behind pairing.

Pages (server-rendered; forms post back and redirect with a fixed notice key `?flash=`):
`/pair` (open to all), `/` chats, `/chat/{id}`, `/contacts` (+ POST add: `name` and `card`
text or a `photo` of the QR, multipart or urlencoded), `/contacts/{id}` (+ POST `verify`
{safety_number}, `rename` {name}, `check-in` {minutes}, `remove`), `/card`, `/node`
(+ `/node/live`, the status block alone), `/device`, `/settings` (+ POST `lock`, `passphrase`
{old, new}, `ephemeral` {enabled: yes|no}, `check-in` {minutes}, `profile` {name, relays},
`browsers/{session_id}/revoke`, whose GET asks to confirm), `/unlock` (GET, POST {passphrase};
creates the vault the first time), `/reset` (GET; POST {confirm: the node's name} carries out an
identity reset asked for on the node's buttons, 409 if none is pending; POST `/reset/cancel`
withdraws it). While the vault is locked, pages show the unlock form (status 423); `/reset` works
locked too. Other HTTP errors of pages (404, ...) are pages too, with a way back.
JSON API (errors are {"error": text} with 400/404/409/413/423/503):
  GET  /api/status                          node status (NodeStatus as JSON)
  GET  /api/card                            {card, handle}
  GET  /api/contacts                        {contacts: [contact]}
  GET  /api/contacts/{id}/messages          {messages: [message]} oldest first; ?before=SEQ&limit=N
  POST /api/contacts/{id}/messages          {text} -> 201 {message}
  POST /api/contacts/{id}/files             multipart "file" -> 201 {message}
  POST /api/contacts/{id}/read              mark the conversation read
  GET  /api/messages/{id}/file              the file, as an attachment
  GET  /api/panel/frame.png                 the OLED frame
  GET  /api/panel/state                     {asleep, buttons}: the screen sleeps, buttons virtual
  POST /api/panel/press, /api/panel/release {button: "a"|"b"} (409 without virtual buttons)
WebSocket `/ws` (server to browser only): {"type": "message_added"|"message_updated", message},
{"type": "contacts_changed"}, {"type": "lock_changed", locked}, {"type": "resync"} (reload),
{"type": "revoked"} then close 4401. Shapes of `message` and `contact`: `wire.py`.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from pigeon.messenger.api import Messenger
from pigeon.messenger.neighbourhood import Neighbourhood
from pigeon.ui.web import (
    api_routes,
    chat_pages,
    contact_pages,
    device,
    metrics,
    neighbourhood_pages,
    pair_pages,
    reset_pages,
    settings_pages,
)
from pigeon.ui.web.chat_views import CHAT_VIEWS, ChatViews
from pigeon.ui.web.failures import typed_errors
from pigeon.ui.web.keys import (
    CONFIG,
    MESSENGER,
    NEIGHBOURHOOD,
    PAIRING,
    PANEL,
    RESET,
    SOCKETS,
    STATUS,
)
from pigeon.ui.web.live import close_all_sockets, websocket
from pigeon.ui.web.message_html import render_message
from pigeon.ui.web.pairing import Pairing
from pigeon.ui.web.ports import (
    DevicePanel,
    IdentityReset,
    NodeStatusSource,
    NoIdentityReset,
    WebConfig,
)
from pigeon.ui.web.security import host_check, origin_check, require_session, security_headers
from pigeon.ui.web.static_files import load_static, static_handler

MULTIPART_OVERHEAD_BYTES: Final = 256 * 1024


def build_app(
    messenger: Messenger,
    status: NodeStatusSource,
    panel: DevicePanel,
    pairing: Pairing,
    config: WebConfig,
    *,
    reset: IdentityReset | None = None,
    neighbourhood: Neighbourhood | None = None,
) -> web.Application:
    """The page: pairing, chat, contacts, node status, settings, device panel, API and /ws;
    without `reset`, no identity reset is ever pending."""
    app = web.Application(
        middlewares=[security_headers, host_check, origin_check, require_session, typed_errors],
        client_max_size=config.max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
    )
    app[MESSENGER] = messenger
    app[STATUS] = status
    app[PANEL] = panel
    app[RESET] = reset or NoIdentityReset()
    app[PAIRING] = pairing
    app[CONFIG] = config
    app[SOCKETS] = {}
    if neighbourhood is not None:  # None: no Neighbourhood view content (bitchat not built)
        app[NEIGHBOURHOOD] = neighbourhood
    app[CHAT_VIEWS] = ChatViews(messenger, render_message)
    app.on_shutdown.append(close_all_sockets)
    app.on_cleanup.append(_close_chat_views)
    _add_routes(app.router)
    return app


async def _close_chat_views(app: web.Application) -> None:
    app[CHAT_VIEWS].close()


def _add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/pair", pair_pages.pair_form)
    router.add_post("/pair", pair_pages.pair_submit)
    router.add_get("/static/{name}", static_handler(load_static()))
    router.add_get("/ws", websocket)
    router.add_get("/neighbourhood", neighbourhood_pages.neighbourhood_page)
    router.add_post("/neighbourhood", neighbourhood_pages.post_public)
    router.add_get("/", chat_pages.chats_page)
    router.add_get("/chat/{contact_id}", chat_pages.chat_page)
    router.add_get("/contacts", contact_pages.contacts_page)
    router.add_post("/contacts", contact_pages.add_contact)
    router.add_get("/contacts/{contact_id}", contact_pages.contact_page)
    router.add_post("/contacts/{contact_id}/verify", contact_pages.verify)
    router.add_post("/contacts/{contact_id}/rename", contact_pages.rename)
    router.add_post("/contacts/{contact_id}/check-in", contact_pages.check_in)
    router.add_post("/contacts/{contact_id}/remove", contact_pages.remove)
    router.add_get("/card", contact_pages.card_page)
    router.add_get("/node", device.node_page)
    router.add_get("/node/live", device.node_live)
    router.add_get("/device", device.device_page)
    router.add_get("/settings", settings_pages.settings_page)
    router.add_post("/settings/lock", settings_pages.lock)
    router.add_post("/settings/passphrase", settings_pages.change_passphrase)
    router.add_post("/settings/ephemeral", settings_pages.set_ephemeral)
    router.add_post("/settings/mailbox-hints", settings_pages.set_mailbox_hints)
    router.add_post("/settings/check-in", settings_pages.check_in_all)
    router.add_post("/settings/profile", settings_pages.set_profile)
    router.add_get("/settings/browsers/{session_id}/revoke", pair_pages.revoke_page)
    router.add_post("/settings/browsers/{session_id}/revoke", pair_pages.revoke)
    router.add_get("/unlock", settings_pages.unlock_page)
    router.add_post("/unlock", settings_pages.unlock)
    router.add_get("/reset", reset_pages.reset_page)
    router.add_post("/reset", reset_pages.confirm)
    router.add_post("/reset/cancel", reset_pages.cancel)
    router.add_get("/api/status", device.status_json)
    router.add_get("/metrics", metrics.metrics)
    router.add_get("/api/panel/frame.png", device.frame_png)
    router.add_get("/api/panel/state", device.panel_state)
    router.add_post("/api/panel/press", device.press)
    router.add_post("/api/panel/release", device.release)
    router.add_get("/api/card", api_routes.own_card)
    router.add_get("/api/contacts", api_routes.contacts)
    router.add_get("/api/contacts/{contact_id}/messages", api_routes.messages)
    router.add_post("/api/contacts/{contact_id}/messages", api_routes.send_text)
    router.add_post("/api/contacts/{contact_id}/files", api_routes.send_file)
    router.add_post("/api/contacts/{contact_id}/read", api_routes.mark_read)
    router.add_get("/api/messages/{message_id}/file", api_routes.file_download)
