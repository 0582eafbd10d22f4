"""The node as bitchat's Nostr gateway against a real Nostr relay (PyPI's nostr-relay in its
own process on loopback) and scripted bitchat phones on the simulated radio: carried events
are published, courier envelopes parked as drops and fetched for a phone at another node, and
the relay is stopped and restarted mid-way without losing anything."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from pigeon.bitchat import packet as wire
from pigeon.bitchat.carrier import Direction, NostrCarrier, decode_carrier, encode_carrier
from pigeon.bitchat.courier_agent import read_payload
from pigeon.bitchat.courier_wire import (
    CourierEnvelope,
    decode_envelope,
    encode_envelope,
    epoch_day,
    recipient_tag,
)
from pigeon.bitchat.identity import BitchatIdentity
from pigeon.bitchat.router import BitchatRouter
from pigeon.config import (
    BitchatSection,
    ButtonsSection,
    DisplaySection,
    NodeConfig,
    NodeSection,
    RadioSection,
)
from pigeon.daemon.bitchat_courier import CourierService
from pigeon.daemon.bitchat_driver import BitchatDriver
from pigeon.daemon.bitchat_gateway import GATEWAY_CAPABILITY, GatewayService
from pigeon.daemon.node import Node, NodeEnvironment
from pigeon.daemon.sdnotify import Notifier
from pigeon.gateway.drops import make_drop
from pigeon.nostr.event import Event, parse_json, sign
from pigeon.sim.bitchat_phone import BITCHAT_SERVICE, BitchatPhone
from pigeon.store.keeper import DataDir, open_spool
from pigeon.store.spool_db import Spool
from pigeon.transport.sim import RadioParams, SimMedium
from pigeon.ui.oled import GatewayLine
from pigeon.ui.web.metrics import render_metrics

from .conftest import free_port, wait_until
from .nostr_relay_process import NostrRelayProcess

GEOHASH = "u4pruy"
pytestmark = pytest.mark.timeout(180)


@dataclass
class GatewayNode:
    driver: BitchatDriver
    gateway: GatewayService
    spool: Spool
    tasks: list[asyncio.Task[None]]

    @property
    def peer_id(self) -> bytes:
        return self.driver.identity.peer_id

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.spool.close()


async def start_node(
    medium: SimMedium, name: str, x: float, data: Path, relay: str, seed: int, courier: bool = True
) -> GatewayNode:
    identity = BitchatIdentity.generate(random.Random(seed).randbytes)
    router = BitchatRouter(identity.peer_id, random.Random(seed + 1))
    driver = BitchatDriver(router, identity, name, tick_s=0.05)
    spool = open_spool(DataDir(data))
    if courier:
        driver.courier = CourierService(identity, router, driver.chat, spool.courier_shelf())
    gateway = GatewayService(
        driver, [relay], spool.drop_ledger(), park_after_s=0.0, pump_s=0.1, backoff_min_s=0.1
    )
    driver.gateway = gateway
    transport = medium.transport(name, x, 0.0, service=BITCHAT_SERVICE, frame_limit=512)
    tasks = [asyncio.create_task(driver.run(transport)), asyncio.create_task(gateway.run())]
    return GatewayNode(driver, gateway, spool, tasks)


async def start_phone(medium: SimMedium, name: str, x: float, seed: int) -> BitchatPhone:
    phone = BitchatPhone(name, random.Random(seed))
    await phone.start(medium.transport(name, x, 0.0, service=BITCHAT_SERVICE, frame_limit=512))
    return phone


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[NostrRelayProcess]:
    process = NostrRelayProcess(tmp_path / "relay", free_port())
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


def geohash_event(text: str, created_at: int | None = None) -> Event:
    """A phone's geohash chat event, signed by its own throwaway Nostr key."""
    stamp = int(time.time()) if created_at is None else created_at
    tags = (("g", GEOHASH), ("n", "lee"))
    return sign(os.urandom(32), stamp, 20_000, tags, text, os.urandom)


def carrier(event: Event) -> bytes:
    body = json.dumps(event.to_json(), ensure_ascii=False).encode()
    return encode_carrier(NostrCarrier(Direction.TO_GATEWAY, GEOHASH, body))


def forged(event: Event) -> Event:
    return Event(event.id, event.pubkey, event.created_at, 20_000, event.tags, "changed", event.sig)


class Watcher:
    """An independent NIP-01 subscriber (raw aiohttp) collecting the events a relay sends."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self, url: str, filter_: dict[str, object]) -> None:
        self._task = asyncio.create_task(self._run(url, filter_))
        await asyncio.wait_for(self._ready.wait(), 20.0)

    async def _run(self, url: str, filter_: dict[str, object]) -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            await ws.send_str(json.dumps(["REQ", "watch", filter_]))
            async for message in ws:
                reply = json.loads(message.data)
                if reply[0] == "EOSE":
                    self._ready.set()
                elif reply[0] == "EVENT":
                    self.ids.append(reply[2]["id"])

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def test_carried_events_are_checked_and_published(
    tmp_path: Path, relay: NostrRelayProcess
) -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(1))
    node = await start_node(medium, "node", 0.0, tmp_path / "node", relay.url, 10)
    lee = await start_phone(medium, "lee", 10.0, 20)
    watcher = Watcher()
    try:
        await wait_until(lambda: node.gateway.pool.connected, 30.0)
        await wait_until(lambda: node.driver.chat.announced(lee.identity.peer_id) is not None)
        await wait_until(lambda: _advertises_gateway(lee, node.peer_id))  # uplinked: bit 2
        await watcher.start(relay.url, {"kinds": [20_000], "#g": [GEOHASH]})
        good = geohash_event("hello from the mesh")
        await lee.carry(node.peer_id, carrier(forged(geohash_event("forged"))))
        await lee.carry(node.peer_id, carrier(geohash_event("stale", int(time.time()) - 3600)))
        await lee.carry(node.peer_id, carrier(good))
        await lee.carry(node.peer_id, carrier(good))  # a repeat is absorbed
        await wait_until(lambda: node.gateway.uplink.counters["published"] == 1, 30.0)
        await wait_until(lambda: good.id in watcher.ids, 30.0)
        assert watcher.ids == [good.id]
        counters = node.gateway.uplink.counters
        assert counters["refused_BadEventId"] == 1
        assert counters["refused_shape"] == 1
        assert counters["accepted"] == 1
        # bitchat's uplink is fire-and-forget (GatewayService.swift handleUplinkDeposit, at
        # 9b84b361 lines 190-235: no reply): the phone hears only the node's announces.
        from_node = {
            wire.parse(f).type for f in lee.received if wire.parse(f).sender == node.peer_id
        }
        assert from_node == {wire.ANNOUNCE}
    finally:
        await watcher.aclose()
        await node.aclose()
        await lee.aclose()


async def test_the_channel_a_phone_posted_to_comes_back_from_the_relay_onto_the_mesh(
    tmp_path: Path, relay: NostrRelayProcess
) -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(5))
    node = await start_node(medium, "node", 0.0, tmp_path / "node", relay.url, 14)
    lee = await start_phone(medium, "lee", 10.0, 25)
    try:
        await wait_until(lambda: node.gateway.pool.connected, 30.0)
        await wait_until(lambda: node.driver.chat.announced(lee.identity.peer_id) is not None)
        own = geohash_event("lee posts")
        await lee.carry(node.peer_id, carrier(own))
        await wait_until(lambda: node.gateway.uplink.counters["published"] == 1, 30.0)
        await wait_until(lambda: node.gateway.downlink.channels(time.time()) == [GEOHASH])
        await asyncio.sleep(1.0)  # the channel subscription reaches the relay
        reply = geohash_event("someone online answers")
        async with aiohttp.ClientSession() as session, session.ws_connect(relay.url) as ws:
            await ws.send_str(json.dumps(["EVENT", reply.to_json()]))
            answer = json.loads((await ws.receive()).data)
            assert answer[:3] == ["OK", reply.id, True]
        await wait_until(lambda: _carried_to(lee, node.peer_id) != [], 30.0)
        assert _carried_to(lee, node.peer_id) == [reply]  # lee's own post is not echoed back
    finally:
        await node.aclose()
        await lee.aclose()


async def test_carriers_wait_out_a_relay_restart(tmp_path: Path, relay: NostrRelayProcess) -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(2))
    node = await start_node(medium, "node", 0.0, tmp_path / "node", relay.url, 11)
    lee = await start_phone(medium, "lee", 10.0, 21)
    try:
        await wait_until(lambda: node.gateway.pool.connected, 30.0)
        await wait_until(lambda: node.driver.chat.announced(lee.identity.peer_id) is not None)
        await relay.stop()
        await wait_until(lambda: not node.gateway.pool.connected, 30.0)
        events = [geohash_event(f"while offline {n}") for n in range(3)]
        for event in events:
            await lee.carry(node.peer_id, carrier(event))
        await wait_until(lambda: node.gateway.uplink.counters["accepted"] == 3)
        assert node.gateway.uplink.counters["published"] == 0
        assert node.gateway.uplink.queued == 3
        await relay.start()
        await wait_until(lambda: node.gateway.uplink.counters["published"] == 3, 60.0)
        assert node.gateway.uplink.queued == 0
        assert node.gateway.uplink.counters["relay_refused"] == 0
    finally:
        await node.aclose()
        await lee.aclose()


async def test_a_parked_drop_survives_a_relay_sigkill_and_reaches_its_phone_at_another_node(
    tmp_path: Path, relay: NostrRelayProcess
) -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(3))
    first = await start_node(medium, "first", 0.0, tmp_path / "first", relay.url, 12)
    ann = await start_phone(medium, "ann", 10.0, 22)
    bob = BitchatPhone("bob", random.Random(23))
    second: GatewayNode | None = None
    try:
        await wait_until(lambda: first.gateway.pool.connected, 30.0)
        await wait_until(lambda: first.driver.chat.announced(ann.identity.peer_id) is not None)
        now = time.time()
        tag = recipient_tag(bob.identity.noise_public, epoch_day(now))
        envelope = CourierEnvelope(tag, int((now + 3600) * 1000), b"sealed for bob" * 8)
        await ann.deposit(first.peer_id, encode_envelope(envelope))
        await wait_until(lambda: first.gateway.counters["parked"] == 1, 30.0)

        await relay.kill()  # killed outright, the relay restarts with the drop on its disk
        await wait_until(lambda: not first.gateway.pool.connected, 30.0)
        await relay.start()

        second = await start_node(medium, "second", 1000.0, tmp_path / "second", relay.url, 13)
        await bob.start(
            medium.transport("bob", 1010.0, 0.0, service=BITCHAT_SERVICE, frame_limit=512)
        )
        await wait_until(lambda: second.gateway.counters["fetched"] == 1, 60.0)
        await wait_until(lambda: _envelopes_to(bob, second.peer_id) != [], 10.0)
        assert _envelopes_to(bob, second.peer_id) == [envelope]
        assert second.driver.courier is not None
        assert len(second.driver.courier.policy) == 0  # handed over, never held
    finally:
        for node in (first, second):
            if node is not None:
                await node.aclose()
        await ann.aclose()
        await bob.aclose()


async def test_an_envelope_handed_over_in_person_is_not_handed_over_again_from_its_drop(
    tmp_path: Path, relay: NostrRelayProcess
) -> None:
    # The node parks what it holds for bob; when bob comes by, the courier hands the envelope
    # over in person, and the gateway then subscribes to bob's tags and gets the drop back.
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(6))
    node = await start_node(medium, "node", 0.0, tmp_path / "node", relay.url, 15)
    ann = await start_phone(medium, "ann", 10.0, 26)
    bob = BitchatPhone("bob", random.Random(27))
    try:
        await wait_until(lambda: node.gateway.pool.connected, 30.0)
        await wait_until(lambda: node.driver.chat.announced(ann.identity.peer_id) is not None)
        now = time.time()
        tag = recipient_tag(bob.identity.noise_public, epoch_day(now))
        envelope = CourierEnvelope(tag, int((now + 3600) * 1000), b"sealed for bob" * 8)
        await ann.deposit(node.peer_id, encode_envelope(envelope))
        await wait_until(lambda: node.gateway.counters["parked"] == 1, 30.0)
        await bob.start(
            medium.transport("bob", 20.0, 0.0, service=BITCHAT_SERVICE, frame_limit=512)
        )
        await wait_until(lambda: _envelopes_to(bob, node.peer_id) != [], 30.0)
        counters = node.gateway.counters
        await wait_until(lambda: counters["drop_duplicate"] + counters["fetched"] >= 1, 60.0)
        await asyncio.sleep(0.5)
        assert _envelopes_to(bob, node.peer_id) == [envelope]
        assert (counters["fetched"], counters["drop_duplicate"]) == (0, 1)
    finally:
        await node.aclose()
        await ann.aclose()
        await bob.aclose()


async def test_with_the_courier_off_the_gateway_still_hands_fetched_drops_over_once(
    tmp_path: Path, relay: NostrRelayProcess
) -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(8))
    node = await start_node(medium, "node", 0.0, tmp_path / "node", relay.url, 16, courier=False)
    bob = BitchatPhone("bob", random.Random(29))
    try:
        await wait_until(lambda: node.gateway.pool.connected, 30.0)
        now = time.time()
        tag = recipient_tag(bob.identity.noise_public, epoch_day(now))
        envelope = CourierEnvelope(tag, int((now + 3600) * 1000), b"sealed for bob" * 8)
        for _ in range(2):  # parked twice (two phones, or one twice): two throwaway keys
            async with aiohttp.ClientSession() as session, session.ws_connect(relay.url) as ws:
                drop = make_drop(envelope, int(now), os.urandom)
                await ws.send_str(json.dumps(["EVENT", drop.to_json()]))
                assert json.loads((await ws.receive()).data)[:3] == ["OK", drop.id, True]
        await bob.start(
            medium.transport("bob", 10.0, 0.0, service=BITCHAT_SERVICE, frame_limit=512)
        )
        counters = node.gateway.counters
        await wait_until(lambda: counters["fetched"] + counters["drop_duplicate"] == 2, 60.0)
        await asyncio.sleep(0.5)
        assert _envelopes_to(bob, node.peer_id) == [envelope]
        assert (counters["fetched"], counters["drop_duplicate"]) == (1, 1)
    finally:
        await node.aclose()
        await bob.aclose()


def _carried_to(phone: BitchatPhone, gateway: bytes) -> list[Event]:
    """The events `gateway` broadcast to `phone` in from-gateway carriers."""
    found: list[Event] = []
    for frame in phone.received:
        view = wire.parse(frame)
        if view.type == wire.NOSTR_CARRIER and view.sender == gateway and view.is_broadcast:
            carried = decode_carrier(read_payload(frame, view))
            assert carried.direction == Direction.FROM_GATEWAY
            found.append(parse_json(carried.event_json))
    return found


def _envelopes_to(phone: BitchatPhone, sender: bytes) -> list[CourierEnvelope]:
    found: list[CourierEnvelope] = []
    for frame in phone.received:
        view = wire.parse(frame)
        if view.type == wire.COURIER_ENVELOPE and view.sender == sender:
            found.append(decode_envelope(read_payload(frame, view)))
    return found


def _advertises_gateway(phone: BitchatPhone, node: bytes) -> bool:
    announce = phone.chat.announced(node)
    return announce is not None and (announce.capabilities or 0) & GATEWAY_CAPABILITY != 0


async def test_a_node_with_the_gateway_on_publishes_and_shows_it(
    tmp_path: Path, relay: NostrRelayProcess
) -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(4))
    config = NodeConfig(
        node=NodeSection(name="pigeon-gateway-test", data_dir=str(tmp_path / "node")),
        radio=RadioSection(kind="sim"),
        display=DisplaySection(kind="png"),
        buttons=ButtonsSection(kind="none"),
        bitchat=BitchatSection(gateway=True, nostr_relays=(relay.url,)),
    )
    node = Node(
        config, NodeEnvironment(medium, (0.0, 0.0), Notifier({}), selftest=False, web=False)
    )
    lee = BitchatPhone("lee", random.Random(24))
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        run = group.create_task(node.run(stop))
        try:
            await wait_until(node.ready.is_set)
            assert node.bitchat_driver is not None
            node_id = node.bitchat_driver.identity.peer_id
            await lee.start(
                medium.transport("lee", 10.0, 0.0, service=BITCHAT_SERVICE, frame_limit=512)
            )
            await wait_until(lambda: _advertises_gateway(lee, node_id), 60.0)
            await wait_until(lambda: node.board.status().bitchat.peers == 1)
            await lee.carry(node_id, carrier(geohash_event("from a node")))
            await wait_until(lambda: _published(node) == 1, 60.0)
            assert (
                "pigeon_node_bitchat_gateway_published_total 1"
                in render_metrics(node.board.status()).splitlines()
            )
            view = node.board.view_state(time.monotonic())
            assert view.bitchat_nostr == 1
            assert view.bitchat_gateway == GatewayLine(published=1, fetched=0)
        finally:
            await lee.aclose()
            stop.set()
    assert run.result() == 0


async def test_a_node_with_the_gateway_off_publishes_nothing_though_relays_are_set(
    tmp_path: Path, relay: NostrRelayProcess
) -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(7))
    config = NodeConfig(
        node=NodeSection(name="pigeon-gateway-off", data_dir=str(tmp_path / "node")),
        radio=RadioSection(kind="sim"),
        display=DisplaySection(kind="png"),
        buttons=ButtonsSection(kind="none"),
        bitchat=BitchatSection(gateway=False, nostr_relays=(relay.url,)),
    )
    node = Node(
        config, NodeEnvironment(medium, (0.0, 0.0), Notifier({}), selftest=False, web=False)
    )
    lee = BitchatPhone("lee", random.Random(28))
    watcher = Watcher()
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        run = group.create_task(node.run(stop))
        try:
            await wait_until(node.ready.is_set)
            assert node.bitchat_driver is not None
            assert node.bitchat_gateway is None
            assert "bitchat-gateway" not in [part.name for part in node.parts()]
            node_id = node.bitchat_driver.identity.peer_id
            await watcher.start(relay.url, {"kinds": [20_000], "#g": [GEOHASH]})
            await lee.start(
                medium.transport("lee", 10.0, 0.0, service=BITCHAT_SERVICE, frame_limit=512)
            )
            await wait_until(lambda: lee.chat.announced(node_id) is not None, 60.0)
            await wait_until(lambda: node.board.status().bitchat.peers == 1)
            await lee.carry(node_id, carrier(geohash_event("nobody uplinks this")))
            await asyncio.sleep(2.0)
            assert watcher.ids == []
            assert not _advertises_gateway(lee, node_id)
            assert node.board.status().bitchat.gateway is None
            assert (
                "pigeon_node_bitchat_gateway_enabled 0"
                in render_metrics(node.board.status()).splitlines()
            )
            view = node.board.view_state(time.monotonic())
            assert (view.bitchat_nostr, view.bitchat_gateway) == (None, None)
        finally:
            await watcher.aclose()
            await lee.aclose()
            stop.set()
    assert run.result() == 0


def _published(node: Node) -> int:
    gateway = node.board.status().bitchat.gateway
    return gateway.published if gateway is not None else -1


async def test_a_gateway_cancelled_as_its_wait_ends_stops(tmp_path: Path) -> None:
    # Python 3.11's wait_for returned the wait's result instead of the cancellation when both
    # landed together, and the gateway's loop then ran on: a node's stop hung for good.
    identity = BitchatIdentity.generate(random.Random(7).randbytes)
    driver = BitchatDriver(BitchatRouter(identity.peer_id, random.Random(8)), identity, "n")
    spool = open_spool(DataDir(tmp_path))
    gateway = GatewayService(driver, [], spool.drop_ledger(), pump_s=60.0)
    running = asyncio.create_task(gateway.run())
    await asyncio.sleep(0.1)  # waiting to be woken
    gateway._on_state()  # a relay connected or went: the wait ends...
    running.cancel()  # ...as the node stops
    done, _ = await asyncio.wait({running}, timeout=5.0)
    spool.close()
    assert running in done
    assert running.cancelled()
