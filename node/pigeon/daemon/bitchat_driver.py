"""Drives the sans-IO bitchat router (`pigeon.bitchat`) from its own transport: bitchat's service.

bitchat's GATT service is one more service on the node's adapter, so the node runs it as one
more `Transport`: on the simulated radio a `SimTransport` on bitchat's channel, on BLE (later)
`pigeon.transport.ble.bitchat_service`. Upcalls become router events at wall-clock time (bitchat's
freshness window is on the senders' clocks); `SendFrame` actions go, after their relay jitter,
to a bounded per-link queue drained by one sender task per link. The node announces its own
bitchat identity when a link comes up and every `announce_interval_s`; announces and public
messages the router hears feed the neighbourhood chat (`PublicChat`), whose messages go to
`on_public`. Logs name no peer, nickname or text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Final, Protocol

from pigeon.bitchat import packet as wire
from pigeon.bitchat.chat import PublicChat, PublicMessage
from pigeon.bitchat.errors import RemoteError
from pigeon.bitchat.events import (
    Action,
    Addressed,
    Drop,
    DropReason,
    Event,
    FrameReceived,
    Heard,
    LinkDown,
    LinkUp,
    SendFrame,
    Tick,
)
from pigeon.bitchat.identity import BitchatIdentity
from pigeon.bitchat.router import BitchatRouter
from pigeon.daemon.bitchat_courier import CourierService
from pigeon.daemon.link_senders import LinkSenders
from pigeon.daemon.verdict import frame_verdict
from pigeon.transport.base import FrameVerdict, PeerId, Transport

_LOGGER = logging.getLogger(__name__)

TICK_S: Final = 1.0
COURIER_EXPIRY_S: Final = 60.0  # how often held envelopes past their time are forgotten
MAX_QUEUED_FRAMES: Final = 256  # 40 packets/s out of a link at most: several seconds' worth
# What a frame's drops say about its link (daemon.verdict).
REFUSED_DROPS: Final = frozenset({DropReason.MALFORMED, DropReason.TOO_BIG})
IGNORED_DROPS: Final = frozenset(
    {DropReason.DUPLICATE, DropReason.RATE, DropReason.NO_LINK, DropReason.STALE}
)

PublicCallback = Callable[[PublicMessage], None]


class CarrierSink(Protocol):
    """Where Nostr carriers addressed to the node go (the gateway), and its capability bits."""

    def on_carrier(self, link: str, packet: bytes) -> None:
        """A 0x28 packet addressed to the node arrived on `link`."""

    def capabilities(self) -> int:
        """The capability bits to announce now."""


class BitchatDriver:
    """The bitchat router's I/O: one transport at a time, the node's announces, the chat."""

    def __init__(
        self,
        router: BitchatRouter,
        identity: BitchatIdentity,
        nickname: str,
        *,
        announce_interval_s: float = 30.0,
        on_public: PublicCallback | None = None,
        clock: Callable[[], float] = time.time,
        clock_synchronized: Callable[[], bool] = lambda: True,
        tick_s: float = TICK_S,
    ) -> None:
        self.router = router
        self.identity = identity
        self.nickname = nickname
        self.chat = PublicChat()
        self.announce_interval_s = announce_interval_s
        self._on_public = on_public
        self._clock = clock
        self._clock_synchronized = clock_synchronized
        self.tick_s = tick_s
        self._transport: Transport | None = None
        self._last_announce = float("-inf")
        self._last_expiry = float("-inf")
        self.courier: CourierService | None = None  # set by the daemon when `[bitchat] courier`
        self.gateway: CarrierSink | None = None  # set by the daemon when `[bitchat] gateway`
        self.heard: list[PublicMessage] = []  # this run's public messages, newest last (capped)
        self.counters: Counter[str] = Counter()
        self._senders = LinkSenders("bitchat", MAX_QUEUED_FRAMES, self.counters)

    # -- LinkSink (called by the transport, synchronously) --------------------------------------

    def link_up(self, peer: PeerId, frame_limit: int) -> None:
        """A bitchat phone linked."""
        assert self._transport is not None  # links come up only while a transport runs
        self._senders.open(peer, self._transport)
        self.feed(LinkUp(peer, frame_limit))
        self.announce(peer)

    def link_down(self, peer: PeerId, reason: str) -> None:
        """The link is gone."""
        _LOGGER.debug("a bitchat link went down: %s", reason)
        self._senders.close(peer)
        self.feed(LinkDown(peer))

    def frame_received(self, peer: PeerId, frame: bytes) -> FrameVerdict:
        """The link sent one bitchat packet; whether it was useful, ignored or refused."""
        actions = self.router.handle(FrameReceived(peer, frame), self._clock())
        self._carry_out(actions)
        drops = ((a.reason.value, a.link) for a in actions if type(a) is Drop)
        return frame_verdict(drops, peer, REFUSED_DROPS, IGNORED_DROPS)

    def set_on_public(self, on_public: PublicCallback | None) -> None:
        """Where public messages heard (and posted) go from now on."""
        self._on_public = on_public

    # -- the router -----------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        """Give the router one event now and carry out what it returns."""
        self._carry_out(self.router.handle(event, self._clock()))

    def announce(self, link: str | None = None) -> None:
        """Announce the node's bitchat identity now to every link, or to `link` only."""
        now = self._clock()
        if link is None:
            self._last_announce = now
        caps = self.courier.agent.capabilities() if self.courier is not None else 0
        caps |= self.gateway.capabilities() if self.gateway is not None else 0
        packet = self.identity.announce(self.nickname, int(self._phones_now() * 1000), caps)
        self._carry_out(self.router.originate(packet, now, link))
        self.counters["announced"] += 1

    def post(self, speaker: BitchatIdentity, nickname: str, text: str) -> PublicMessage:
        """Send `text` to the public chat as `speaker` (announced first under `nickname`).
        Raises LocalError for a nickname or text bitchat cannot carry."""
        now = self._clock()
        stamp = int(self._phones_now() * 1000)
        announce = speaker.announce(nickname, stamp)
        message = speaker.public_message(text, stamp)
        for packet in (announce, message):
            self._carry_out(self.router.originate(packet, now))
        posted = PublicMessage(speaker.peer_id, nickname, stamp, text)
        self._remember(posted)
        return posted

    def _carry_out(self, actions: list[Action]) -> None:
        loop = asyncio.get_running_loop()
        for action in actions:
            if type(action) is SendFrame:
                frames = [action.frame]
                if action.delay_s > 0:
                    loop.call_later(action.delay_s, self._senders.offer, action.link, frames)
                else:
                    self._senders.offer(action.link, frames)
            elif type(action) is Heard:
                self._hear(action.packet)
                self._courier_hears(action)
            elif type(action) is Addressed:
                self._addressed(action)

    def _addressed(self, action: Addressed) -> None:
        """A carrier goes to the gateway, anything else to the courier (when they run)."""
        if action.packet[1:2] == bytes((wire.NOSTR_CARRIER,)):
            if self.gateway is not None:
                self.gateway.on_carrier(action.link, action.packet)
        elif self.courier is not None:
            self._carry_out(
                self.courier.on_addressed(action.link, action.packet, self._phones_now())
            )

    def carry_out(self, actions: list[Action]) -> None:
        """Carry out router actions made outside `feed` (the gateway's hand-overs)."""
        self._carry_out(actions)

    def _expire_courier(self) -> None:
        now = self._clock()
        if self.courier is not None and now - self._last_expiry >= COURIER_EXPIRY_S:
            self._last_expiry = now
            self.courier.expire(self._phones_now())

    def _courier_hears(self, heard: Heard) -> None:
        """After the chat checked an announce, the courier may hand over or spray on its link."""
        courier = self.courier
        if courier is None or heard.link is None or heard.packet[1:2] != bytes((wire.ANNOUNCE,)):
            return
        self._carry_out(courier.on_announce(heard.link, heard.packet, self._phones_now()))

    def _hear(self, packet: bytes) -> None:
        try:
            message = self.chat.receive(packet)
        except RemoteError as exc:
            self.counters["chat_refused"] += 1
            _LOGGER.debug("a bitchat chat packet was refused: %s", type(exc).__name__)
            return
        if message is not None:
            self.counters["public_heard"] += 1
            self._remember(message)

    def _remember(self, message: PublicMessage) -> None:
        self.heard.append(message)
        del self.heard[:-200]
        if self._on_public is not None:
            self._on_public(message)

    def _phones_now(self) -> float:
        """The time by the phones' clocks, for what the node stamps and the courier's expiries:
        ours, or while ours is not synchronized, ours moved by the linked phones' median."""
        return self._clock() + self.router.clock_offset_s()

    def _judge_freshness_if_synchronized(self) -> None:
        synchronized = self._clock_synchronized()
        if synchronized != self.router.judge_freshness:
            self.router.judge_freshness = synchronized
            _LOGGER.info(
                "the system clock is %s: bitchat packets' freshness is judged %s",
                "synchronized" if synchronized else "not synchronized",
                "here again" if synchronized else "by the phones only, until it is",
            )

    @property
    def links(self) -> list[str]:
        """bitchat links up now."""
        return self.router.links()

    async def run(self, transport: Transport) -> None:
        """Start `transport`, tick the router and announce until cancelled; closes it."""
        if self._transport is not None:
            raise RuntimeError("the bitchat driver already runs a transport")
        self._transport = transport
        try:
            await transport.start(self)
            while True:
                self._judge_freshness_if_synchronized()
                self.feed(Tick())
                if (
                    self.courier is not None
                    and self._clock() - self._last_expiry >= COURIER_EXPIRY_S
                ):
                    self._last_expiry = self._clock()
                    self.courier.expire(self._phones_now())
                if self._clock() - self._last_announce >= self.announce_interval_s:
                    self.announce()
                await asyncio.sleep(self.tick_s)
        finally:
            self._transport = None
            await transport.aclose()
            for peer in self._senders.close_all():
                self.feed(LinkDown(peer))
