"""`/ws`: messenger events (and the neighbourhood's public bitchat lines) pushed to a paired
browser as JSON, one message per event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Final

from aiohttp import WSMsgType, web

from pigeon.ui.web.keys import MESSENGER, NEIGHBOURHOOD, SESSION, SOCKETS
from pigeon.ui.web.wire import event_json

_LOGGER = logging.getLogger(__name__)

HEARTBEAT_S: Final = 25.0
MAX_INBOUND_BYTES: Final = 1024  # the page never sends anything but pings
REVOKED_CLOSE_CODE: Final = 4401


async def websocket(request: web.Request) -> web.StreamResponse:
    """Upgrade (the middlewares checked session and Origin) and stream events until closed."""
    socket = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_INBOUND_BYTES)
    await socket.prepare(request)
    session_id = request[SESSION].session_id
    request.app[SOCKETS].setdefault(session_id, weakref.WeakSet()).add(socket)
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def wakeup() -> None:
        loop.call_soon_threadsafe(wake.set)

    subscriptions = [request.app[MESSENGER].subscribe(wakeup=wakeup)]
    if NEIGHBOURHOOD in request.app:  # the public bitchat lines, on the same stream
        subscriptions.append(request.app[NEIGHBOURHOOD].subscribe(wakeup=wakeup))
    reader = asyncio.create_task(_read_until_closed(socket))
    try:
        while not socket.closed and not reader.done():
            waiter = asyncio.create_task(wake.wait())
            await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            wake.clear()
            for subscription in subscriptions:
                for event in subscription.drain():
                    await socket.send_json(event_json(event))
    except ConnectionResetError:
        _LOGGER.debug("browser went away")
    finally:
        for subscription in subscriptions:
            subscription.close()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await socket.close()
    return socket


async def _read_until_closed(socket: web.WebSocketResponse) -> None:
    async for message in socket:
        if message.type is WSMsgType.ERROR:
            return


async def close_session_sockets(app: web.Application, session_id: str) -> None:
    """Tell a revoked browser's open pages, then hang up on them."""
    for socket in list(app[SOCKETS].pop(session_id, ())):
        if not socket.closed:
            with contextlib.suppress(ConnectionResetError):
                await socket.send_json({"type": "revoked"})
            await socket.close(code=REVOKED_CLOSE_CODE, message=b"revoked")


async def close_every_session_socket(app: web.Application) -> None:
    """Every browser was revoked (the identity reset): tell their open pages, then hang up."""
    for session_id in list(app[SOCKETS].keys()):
        await close_session_sockets(app, session_id)


async def close_all_sockets(app: web.Application) -> None:
    """On shutdown: close every open WebSocket so the server can stop promptly."""
    for sockets in list(app[SOCKETS].values()):
        for socket in list(sockets):
            await socket.close(code=1001, message=b"node stopping")
