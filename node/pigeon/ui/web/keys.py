"""Typed keys for what the app and each request carry (aiohttp `AppKey` / `RequestKey`)."""

from __future__ import annotations

import weakref
from typing import Final

from aiohttp import web

from pigeon.messenger.api import Messenger
from pigeon.messenger.neighbourhood import Neighbourhood
from pigeon.ui.web.pairing import BrowserSession, Pairing
from pigeon.ui.web.ports import DevicePanel, IdentityReset, NodeStatusSource, WebConfig

MESSENGER: Final = web.AppKey("messenger", Messenger)
NEIGHBOURHOOD: Final = web.AppKey("neighbourhood", Neighbourhood)
STATUS: Final = web.AppKey("status", NodeStatusSource)
PANEL: Final = web.AppKey("panel", DevicePanel)
RESET: Final = web.AppKey("reset", IdentityReset)
PAIRING: Final = web.AppKey("pairing", Pairing)
CONFIG: Final = web.AppKey("config", WebConfig)
# Open WebSockets per browser session id, closed when that browser is revoked.
SOCKETS: Final = web.AppKey("sockets", dict[str, weakref.WeakSet[web.WebSocketResponse]])
SESSION: Final = web.RequestKey("session", BrowserSession)
