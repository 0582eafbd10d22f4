"""Admission at accept: every TCP connection counts from the moment it is accepted, and one that
has not become a WebSocket within `handshake_timeout_s` is closed.

aiohttp's low-level `web.Server` hears of each connection (`connection_made`/`connection_lost`)
before any HTTP is read. `GatedServer` counts there, so sockets that never send a request, send
it slowly or never upgrade hold a slot only briefly, instead of aiohttp's hour-long keep-alive.
A connection refused at accept is kept open just long enough to be told why (a typed ERROR once
it upgrades), and at most `REFUSED_HELD_MAX` of those at a time; the rest are closed at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from aiohttp.web import RequestHandler

from pigeon.relay.limits import AdmissionControl, Limits, Refusal, ip_key

REFUSED_HELD_MAX: Final = 64


@dataclass(slots=True)
class _Entry:
    transport: asyncio.BaseTransport
    refusal: Refusal | None  # refused at accept: told once it upgrades, then closed
    ip: str | None = None  # the address `admit` counted for this connection, if any
    timer: asyncio.TimerHandle | None = None


class GatedServer(web.Server):
    """aiohttp's server with connection caps applied at accept and a handshake deadline."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Any],
        admission: AdmissionControl,
        limits: Limits,
        *,
        per_ip_at_accept: bool,
        monotonic: Callable[[], float],
    ) -> None:
        super().__init__(handler, keepalive_timeout=limits.handshake_timeout_s, access_log=None)
        self._admission = admission
        self._timeout_s = limits.handshake_timeout_s
        self._per_ip_at_accept = per_ip_at_accept
        self._monotonic = monotonic
        self._entries: dict[RequestHandler, _Entry] = {}
        self._refused_held = 0

    @property
    def refused_held(self) -> int:
        """Refused connections held open to be told why."""
        return self._refused_held

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        """Count the new connection, or refuse it; either way start its handshake deadline."""
        super().connection_made(handler, transport)
        refusal = self._admission.open()
        ip: str | None = None
        if refusal is None and self._per_ip_at_accept:
            peer = transport.get_extra_info("peername")
            ip = ip_key(str(peer[0]) if peer else "unknown")
            refusal = self._admission.admit(ip, self._monotonic())
            if refusal is not None:
                self._admission.close()
                ip = None
        if refusal is not None:
            if self._refused_held >= REFUSED_HELD_MAX:
                transport.close()
                return
            self._refused_held += 1
        entry = _Entry(transport, refusal, ip)
        entry.timer = asyncio.get_running_loop().call_later(self._timeout_s, transport.close)
        self._entries[handler] = entry

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        """Give back what the connection held."""
        entry = self._entries.pop(handler, None)
        if entry is not None:
            if entry.timer is not None:
                entry.timer.cancel()
            if entry.refusal is not None:
                self._refused_held -= 1
            else:
                self._admission.close()
                if entry.ip is not None:
                    self._admission.release(entry.ip)
        super().connection_lost(handler, exc)

    def upgraded(self, handler: RequestHandler) -> Refusal | None:
        """The connection became a WebSocket: stop its deadline; returns its refusal, if any."""
        entry = self._entries.get(handler)
        if entry is None:  # closed meanwhile
            return None
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        return entry.refusal

    def admit_forwarded(self, handler: RequestHandler, ip: str) -> Refusal | None:
        """Behind a proxy: count an upgraded, admitted connection for the forwarded address."""
        entry = self._entries.get(handler)
        if entry is None:  # closed meanwhile
            return None
        refusal = self._admission.admit(ip, self._monotonic())
        if refusal is None:
            entry.ip = ip
        return refusal
