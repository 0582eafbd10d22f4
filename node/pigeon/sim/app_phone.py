"""A scripted Pigeon-app phone on the simulated radio: the app's mesh as its phones speak it.

Written from the facts in docs/protocol.md ("The Pigeon app's mesh dialect"), not from the
app's code: it originates packets (version 1, TTL 8, a random 16-byte id, an envelope with
sender and recipient keys), fragments each once for the smallest value length over its links
minus 7, clamped to 150..503, and writes the fragments to every link. It reassembles what it
hears per link, keeps the app's FIFO of 1,024 packet ids, keeps packets addressed to its key
(bytes as received) and, if `relays`, relays the rest as a phone does (TTL > 1, TTL - 1).
It has no crypto: envelope payloads are whatever the script gives.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from pigeon.appmesh.envelope import Envelope, EnvelopeType, encode_envelope, route_of
from pigeon.appmesh.errors import AppMeshError
from pigeon.appmesh.fragment import decode_fragment, payload_size, split
from pigeon.appmesh.packet import (
    DEFAULT_TTL,
    ID_SIZE,
    AppPacket,
    encode_packet,
    read_header,
    with_ttl,
)
from pigeon.appmesh.packet import HEADER_SIZE as PACKET_HEADER_SIZE
from pigeon.appmesh.reassembly import Reassembler
from pigeon.appmesh.seen import PHONE_SEEN_IDS
from pigeon.transport.base import Broken, Busy, Closed, PeerId, Transport
from pigeon.transport.sim import APP_SERVICE

__all__ = ["APP_SERVICE", "PHONE_VALUE_LENGTH", "AppPhone"]

_LOGGER = logging.getLogger(__name__)

# An iPhone typically negotiates an ATT MTU of 185, a value length of 182 (payload 175).
PHONE_VALUE_LENGTH: Final = 182


@dataclass(slots=True)
class AppPhone:
    """One phone: a `LinkSink` for its transport; `send` originates, `inbox` collects."""

    key: bytes  # its Ed25519 identity key (any 32 bytes here)
    rng: random.Random
    relays: bool = True
    inbox: list[bytes] = field(default_factory=list)  # packets for `key`, bytes as received
    heard: list[bytes] = field(default_factory=list)  # every new packet, bytes as received
    frames_sent: list[bytes] = field(default_factory=list)
    frames_received: list[bytes] = field(default_factory=list)
    _links: dict[str, int] = field(default_factory=dict)  # link -> negotiated value length
    _seen: OrderedDict[bytes, None] = field(default_factory=OrderedDict)
    _reassembler: Reassembler = field(default_factory=Reassembler)
    _transport: Transport | None = None
    _next_message_id: int = 0
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _relaying: set[asyncio.Task[None]] = field(default_factory=set)

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

    async def send(
        self, recipient: bytes, body: bytes, kind: EnvelopeType = EnvelopeType.MESSAGE
    ) -> bytes:
        """Originate one packet to every link, as the app does; return its bytes."""
        return await self.send_envelope(encode_envelope(Envelope(kind, self.key, recipient, body)))

    async def send_envelope(self, envelope: bytes) -> bytes:
        """Originate one packet carrying `envelope` as the script wrote it (a scripted app peer
        builds its own); return the packet's bytes."""
        data = encode_packet(AppPacket(DEFAULT_TTL, self.rng.randbytes(ID_SIZE), envelope))
        await self.send_packet(data)
        return data

    async def send_packet(self, data: bytes) -> None:
        """Send a whole packet to every link (the app sends one packet by radio and by relay
        alike); raises AppMeshError if it has no packet header."""
        _, packet_id = read_header(data)
        self._remember(packet_id)
        await self._broadcast(data, exclude=None)

    async def wait_for_inbox(self, count: int, timeout_s: float) -> list[bytes]:
        """Wait until `count` packets for us arrived; raises TimeoutError."""
        async with asyncio.timeout(timeout_s):
            while len(self.inbox) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.inbox

    # -- LinkSink -------------------------------------------------------------------------------

    def link_up(self, peer: PeerId, frame_limit: int) -> None:
        self._links[peer] = frame_limit

    def link_down(self, peer: PeerId, reason: str) -> None:
        self._links.pop(peer, None)
        self._reassembler.drop(peer)

    def frame_received(self, peer: PeerId, frame: bytes) -> None:
        self.frames_received.append(frame)
        loop = asyncio.get_running_loop()
        try:
            data = self._reassembler.add(peer, decode_fragment(frame), loop.time())
            if data is None:
                return
            ttl, packet_id = read_header(data)
            _, _, recipient = route_of(data, PACKET_HEADER_SIZE)
        except AppMeshError:
            return  # the app drops what it cannot parse
        if packet_id in self._seen:
            return
        self._remember(packet_id)
        self.heard.append(data)
        if recipient == self.key:
            self.inbox.append(data)
            self._arrived.set()
        if self.relays and ttl > 1:
            forward = with_ttl(data, ttl - 1)
            task = loop.create_task(self._broadcast(forward, exclude=peer))
            self._relaying.add(task)
            task.add_done_callback(self._relaying.discard)

    # -- sending --------------------------------------------------------------------------------

    def _remember(self, packet_id: bytes) -> None:
        self._seen[packet_id] = None
        if len(self._seen) > PHONE_SEEN_IDS:
            self._seen.popitem(last=False)

    async def _broadcast(self, data: bytes, exclude: str | None) -> None:
        targets = [link for link in self._links if link != exclude]
        if not targets or self._transport is None:
            return
        size = payload_size(self._links[link] for link in targets)
        frames = split(data, self._next_message_id, size)
        self._next_message_id = (self._next_message_id + 1) & 0xFFFF
        for link in targets:
            for frame in frames:
                try:
                    await self._transport.send(PeerId(link), frame)
                except (Broken, Busy, Closed, ValueError) as exc:
                    _LOGGER.debug("a phone's frame was not sent: %s", exc)
                    break
                self.frames_sent.append(frame)
