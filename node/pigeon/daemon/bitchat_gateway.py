"""The node as bitchat's Nostr gateway: the sans-IO policies (`pigeon.gateway`) over a NIP-01
relay pool (`nostr_client`), beside the bitchat driver and its courier.

Uplink: carriers (0x28) addressed to the node are checked by `UplinkPolicy` and their events
published to the configured relays; an event no relay answered waits for the next connection.
Drops: envelopes the courier holds for recipients not seen for a while are parked as kind-1401
drops, and drops for verified peers on direct links are fetched and handed over on their link
(by the courier, or by the gateway itself when the courier is switched off).
The spool's drop ledger remembers both across restarts and power cuts: an envelope handed over
(by the gateway, or by the courier in person) is never handed over again from a drop, and a
parked one is not parked again inside its cooldown.
The node advertises the gateway capability (bit 2) only while a relay is connected, and
re-announces when that changes, as bitchat does when its gateway toggle flips.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Final

from pigeon.bitchat import packet as wire
from pigeon.bitchat.courier_wire import CourierEnvelope, encode_envelope
from pigeon.bitchat.events import Action
from pigeon.bitchat.fragment import split
from pigeon.daemon.bitchat_driver import BitchatDriver
from pigeon.daemon.bitchat_send import originate_on_link
from pigeon.daemon.nostr_client import NostrPool
from pigeon.gateway.downlink import DownlinkPolicy
from pigeon.gateway.drops import (
    PARK_AFTER_S,
    DropPlanner,
    Watched,
    drop_filter,
    make_drop,
    read_drop,
    watch_tags,
)
from pigeon.gateway.uplink import UplinkPolicy
from pigeon.nostr.errors import NostrError
from pigeon.nostr.event import Event
from pigeon.store.drop_ledger import DropLedger, Mark

_LOGGER = logging.getLogger(__name__)

GATEWAY_CAPABILITY: Final = 1 << 2  # bitchat's PeerCapabilities.gateway
DROPS_SUBSCRIPTION: Final = "bitchat-courier-drops"
CHANNELS_SUBSCRIPTION: Final = "bitchat-geohash-channels"
PUMP_S: Final = 5.0


class GatewayService:
    """Publishes carried events and parks and fetches courier drops while uplinked."""

    def __init__(
        self,
        driver: BitchatDriver,
        relays: Sequence[str],
        ledger: DropLedger,
        *,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
        park_after_s: float = PARK_AFTER_S,
        pump_s: float = PUMP_S,
        backoff_min_s: float = 0.5,
    ) -> None:
        self._driver = driver
        self._clock = clock
        self._random_bytes = random_bytes
        self.pump_s = pump_s
        self.uplink = UplinkPolicy(self._signing_key_of)
        self._ledger = ledger
        self.drops = DropPlanner(park_after_s, parked=ledger.parked(clock()))
        self.downlink = DownlinkPolicy()
        self.pool = NostrPool(relays, self._on_event, self._on_state, backoff_min_s=backoff_min_s)
        self.counters: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._announced_uplinked = False
        self._watched: dict[str, Watched] = {}
        self._subscribed: frozenset[str] = frozenset()
        self._channels: list[str] = []

    def _signing_key_of(self, peer: bytes) -> bytes | None:
        announce = self._driver.chat.announced(peer)
        return announce.signing_key if announce is not None else None

    # -- CarrierSink (called by the bitchat driver) --------------------------------------------

    def on_carrier(self, link: str, packet: bytes) -> None:
        """A carrier addressed to the node: checked, then queued for the relays."""
        now = self._clock()
        queued = self.uplink.deposit(packet, now)
        if queued is not None:
            self.downlink.posted(queued.geohash, now)  # its poster reads the channel through us
            self._wake.set()

    def capabilities(self) -> int:
        """The gateway bit, only while a relay is connected."""
        return GATEWAY_CAPABILITY if self.pool.connected else 0

    # -- the relays ------------------------------------------------------------------------------

    def _on_state(self) -> None:
        self._wake.set()

    def _on_event(self, subscription: str, event: Event) -> None:
        now = self._clock()
        if subscription == CHANNELS_SUBSCRIPTION:
            self.downlink.on_event(event, self.uplink.published(event.id), now)
            self._wake.set()
            return
        if subscription != DROPS_SUBSCRIPTION or not self.drops.is_new(event.id):
            return
        try:
            envelope = read_drop(event, now)
        except NostrError as exc:
            self.counters[f"drop_refused_{type(exc).__name__}"] += 1
            return
        watched = self._watched.get(envelope.recipient_tag.hex())
        if watched is None:
            return  # a drop from an older watch set; no longer ours to hand over
        if self._ledger.was_delivered(envelope.identity, now):
            self.drops.handed_over(event.id, now)  # handed over already, maybe before a restart
            self.counters["drop_duplicate"] += 1
            return
        if self._driver.router.peer_on(watched.link) != watched.peer:
            self.counters["drop_peer_gone"] += 1
            return
        went, actions = self._hand_over(watched, envelope, now)
        self._driver.carry_out(actions)
        if went:
            self.drops.handed_over(event.id, now)
            self.counters["fetched"] += 1

    def _hand_over(
        self, watched: Watched, envelope: CourierEnvelope, now: float
    ) -> tuple[bool, list[Action]]:
        """Hand a fetched envelope to its peer and record it delivered: by the courier when it
        runs (it forgets a copy it holds), else here (`[bitchat] courier = false`)."""
        courier = self._driver.courier
        if courier is not None:
            return courier.hand_over(watched.link, watched.peer, envelope, now)
        payload = encode_envelope(envelope)
        packet = self._driver.identity.directed(
            wire.COURIER_ENVELOPE, watched.peer, payload, int(now * 1000)
        )
        router = self._driver.router
        went, actions = originate_on_link(router, watched.link, packet, now, self._random_bytes)
        if went:
            self._ledger.note(Mark.DELIVERED, envelope.identity, now, envelope.expiry_ms / 1000)
        return went, actions

    async def run(self) -> None:
        """Keep the relays connected and the gateway's work done until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.pool.run())
            while True:
                await self.pump()
                self._wake.clear()
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
                # cancellation that lands as its wait ends, and this loop then never stops.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.pump_s):
                        await self._wake.wait()

    async def pump(self) -> None:
        """One round: re-announce on an uplink change, publish, park, refresh the watch."""
        uplinked = self.pool.connected
        if uplinked != self._announced_uplinked:
            self._announced_uplinked = uplinked
            self._driver.announce()  # the gateway bit follows the uplink
        if not uplinked:
            return
        await self._publish_uplinks()
        await self._refresh_channels()
        self._rebroadcast()
        await self._refresh_watch()
        await self._park_drops()

    async def _publish_uplinks(self) -> None:
        for queued in self.uplink.take():
            verdict = await self.pool.publish(queued.event)
            self.uplink.settle(queued.event.id, verdict, self._clock())

    async def _refresh_channels(self) -> None:
        now = self._clock()
        channels = self.downlink.channels(now)
        if channels == self._channels:
            return
        self._channels = channels
        subscription = self.downlink.subscription(now)
        if subscription is None:
            await self.pool.unsubscribe(CHANNELS_SUBSCRIPTION)
        else:
            await self.pool.subscribe(CHANNELS_SUBSCRIPTION, subscription)

    def _rebroadcast(self) -> None:
        """Relay events for the carried channels onto every bitchat link, in fragments where a
        link takes less than the whole packet."""
        now = self._clock()
        router = self._driver.router
        limits = [router.frame_limit(link) for link in router.links()]
        limit = min((n for n in limits if n is not None), default=None)
        if limit is None:
            return  # no phone linked: the events wait (bounded) for one
        for payload in self.downlink.drain(now):
            packet = self._driver.identity.unsigned_broadcast(
                wire.NOSTR_CARRIER, payload, int(now * 1000)
            )
            frames = [packet]
            if len(packet) > limit:
                try:
                    frames = split(packet, wire.BROADCAST, limit, self._random_bytes(8))
                except ValueError:
                    continue
            for frame in frames:
                self._driver.carry_out(router.originate(frame, now))

    async def _refresh_watch(self) -> None:
        now = self._clock()
        self._watched = watch_tags(self._peers_in_range(), now)
        tags = frozenset(self._watched)
        if tags == self._subscribed:
            return
        self._subscribed = tags
        if tags:
            await self.pool.subscribe(DROPS_SUBSCRIPTION, drop_filter(tags, now))
        else:
            await self.pool.unsubscribe(DROPS_SUBSCRIPTION)

    def _peers_in_range(self) -> list[Watched]:
        """Verified announced peers on direct links, as bitchat's gateway watches them."""
        router, chat = self._driver.router, self._driver.chat
        peers: list[Watched] = []
        for link in sorted(router.links()):
            peer = router.peer_on(link)
            announce = chat.announced(peer) if peer is not None else None
            if peer is not None and announce is not None:
                peers.append(Watched(peer, link, announce.noise_key))
        return peers

    async def _park_drops(self) -> None:
        courier = self._driver.courier
        if courier is None:
            return
        now = self._clock()
        for held in self.drops.to_park(courier.policy.held(), now):
            drop = make_drop(held.envelope, int(now), self._random_bytes)
            verdict = await self.pool.publish(drop)
            at = self._clock()
            if verdict is True:
                self._ledger.note(Mark.PARKED, held.identity, at, held.expires_at)
            self.drops.parked(held.identity, verdict is True, at)
            self.counters["parked" if verdict else "park_unanswered"] += 1
