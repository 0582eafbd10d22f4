"""A scripted bitchat phone on the simulated radio: bitchat's public chat as its phones speak it.

Written from the facts in docs/protocol.md ("bitchat"), not from bitchat's code: it announces
itself (signed, TTL 7) when a link comes up, sends signed public messages (v1, TTL 7, padded)
as one packet per GATT write to every link, and hears packets as a phone does: it drops what
it cannot parse, what is more than 120 s off its clock and what it has seen, learns announces
and keeps the public messages signed by announced peers. It can deposit a courier envelope
with a courier (a signed 0x04 packet addressed to it), or a Nostr carrier with a gateway (0x28);
what comes back is in `received`. If
`relays`, it relays as a phone (TTL > 1, TTL - 1, the received bytes otherwise).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Final

from pigeon.bitchat import packet as wire
from pigeon.bitchat.chat import PublicChat, PublicMessage
from pigeon.bitchat.errors import BitchatError
from pigeon.bitchat.identity import BitchatIdentity
from pigeon.bitchat.router import FRESHNESS_MS, packet_key
from pigeon.transport.base import Broken, Busy, Closed, PeerId, Transport
from pigeon.transport.sim import BITCHAT_SERVICE

__all__ = ["BITCHAT_SERVICE", "PHONE_FRAME_LIMIT", "BitchatPhone"]

_LOGGER = logging.getLogger(__name__)

PHONE_FRAME_LIMIT: Final = 512  # one GATT value
PHONE_SEEN_IDS: Final = 1000  # bitchat's duplicate cache


@dataclass(slots=True)
class BitchatPhone:
    """One phone: a `LinkSink` for its transport; `say` posts, `heard` collects."""

    nickname: str
    rng: random.Random
    relays: bool = False
    capabilities: int = 0  # announced capability bits (bit 12: it takes courier receipts)
    clock: Callable[[], float] = time.time
    identity: BitchatIdentity = field(init=False)
    heard: list[PublicMessage] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)  # every new packet, bytes as received
    chat: PublicChat = field(default_factory=PublicChat)
    _links: dict[str, int] = field(default_factory=dict)
    _seen: OrderedDict[bytes, None] = field(default_factory=OrderedDict)
    _transport: Transport | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.identity = BitchatIdentity.generate(self.rng.randbytes)

    async def start(self, transport: Transport) -> None:
        """Join the radio through `transport`."""
        self._transport = transport
        await transport.start(self)

    async def aclose(self) -> None:
        """Leave the radio."""
        if self._transport is not None:
            await self._transport.aclose()

    @property
    def links(self) -> list[str]:
        """Links up now."""
        return list(self._links)

    async def announce(self) -> None:
        """Announce this phone to every link."""
        stamp = self._now_ms()
        await self._originate(self.identity.announce(self.nickname, stamp, self.capabilities))

    async def deposit(self, courier: bytes, envelope: bytes) -> bytes:
        """Hand an encoded courier envelope to the courier with bitchat id `courier` (a signed,
        directed 0x04 packet on every link); return the packet's bytes."""
        data = self.identity.directed(wire.COURIER_ENVELOPE, courier, envelope, self._now_ms())
        await self._originate(data)
        return data

    async def carry(self, gateway: bytes, carrier: bytes) -> bytes:
        """Hand an encoded Nostr carrier to the gateway with bitchat id `gateway` (a signed,
        directed 0x28 packet on every link); return the packet's bytes."""
        data = self.identity.directed(wire.NOSTR_CARRIER, gateway, carrier, self._now_ms())
        await self._originate(data)
        return data

    async def say(self, text: str) -> bytes:
        """Post `text` to the public chat; return the packet's bytes."""
        data = self.identity.public_message(text, self._now_ms())
        await self._originate(data)
        return data

    async def wait_for_heard(self, count: int, timeout_s: float) -> list[PublicMessage]:
        """Wait until `count` public messages were heard; raises TimeoutError."""
        async with asyncio.timeout(timeout_s):
            while len(self.heard) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.heard

    # -- LinkSink -------------------------------------------------------------------------------

    def link_up(self, peer: PeerId, frame_limit: int) -> None:
        self._links[peer] = frame_limit
        self._spawn(self.announce())

    def link_down(self, peer: PeerId, reason: str) -> None:
        self._links.pop(peer, None)

    def frame_received(self, peer: PeerId, frame: bytes) -> None:
        try:
            view = wire.parse(frame)
        except BitchatError:
            return
        if abs(view.timestamp_ms - self._now_ms()) > FRESHNESS_MS:
            return
        key = packet_key(frame, view)
        if key in self._seen:
            return
        self._remember(key)
        self.received.append(frame)
        if view.is_broadcast:
            try:
                message = self.chat.receive(frame)
            except BitchatError:
                message = None  # a phone drops what fails its checks
            if message is not None:
                self.heard.append(message)
                self._arrived.set()
        if self.relays and view.ttl > 1:
            self._spawn(self._send_all(wire.with_ttl(frame, view.ttl - 1), exclude=peer))

    # -- sending --------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _remember(self, key: bytes) -> None:
        self._seen[key] = None
        if len(self._seen) > PHONE_SEEN_IDS:
            self._seen.popitem(last=False)

    def _spawn(self, job: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _originate(self, data: bytes) -> None:
        self._remember(packet_key(data, wire.parse(data)))
        await self._send_all(data, exclude=None)

    async def _send_all(self, data: bytes, exclude: str | None) -> None:
        if self._transport is None:
            return
        for link in [link for link in self._links if link != exclude]:
            try:
                await self._transport.send(PeerId(link), data)
            except (Broken, Busy, Closed, ValueError) as exc:
                _LOGGER.debug("a phone's bitchat packet was not sent: %s", exc)
