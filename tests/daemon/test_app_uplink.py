"""The app-mesh uplink bridge: budgets, a bounded queue, backoff, and end to end through a real
`pigeon relay` process on loopback: app phone A on node 1's sim radio -> node 1 -> relay `/ws`
-> a subscriber reading B's mailbox as the app does."""

import asyncio
import base64
import random
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.appmesh.events import OfferUplink
from pigeon.appmesh.router import AppRouter
from pigeon.crypto.signing import SigningKey
from pigeon.daemon.app_uplink import (
    MAX_AGE_S,
    MAX_PENDING,
    PER_SENDER_SHARE,
    AppUplink,
    AppUplinkPolicy,
)
from pigeon.daemon.appmesh_driver import AppMeshDriver
from pigeon.relay.app_protocol import AppEnvelope
from pigeon.sim.app_phone import APP_SERVICE, PHONE_VALUE_LENGTH, AppPhone
from pigeon.transport.app_relay_client import (
    AppRelayBroken,
    AppRelayBusy,
    AppRelayPublisher,
    AppRelayRefused,
    parse_reply,
    publish_frame,
)
from pigeon.transport.sim import RadioParams, SimMedium
from tests.relay.appclient import AppClient
from tests.relay.process import launch_relay

from .conftest import wait_until

ALICE = bytes([0xA1]) * 32
BOB = bytes([0xB2]) * 32


def _offer(number: int, sender: bytes = ALICE, recipient: bytes = BOB) -> OfferUplink:
    envelope = bytes((1, 2)) + sender + recipient + b"olm"
    return OfferUplink(sender, recipient, bytes((1, 8)) + number.to_bytes(16, "big") + envelope)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_sender_gets_a_tenth_of_the_hourly_budget() -> None:
    clock = _Clock()
    uplink = AppUplink(
        AppUplinkPolicy(relays=("wss://relay.example.org/ws",), per_hour=600), clock=clock
    )
    burst = int(600 * PER_SENDER_SHARE / 6)  # 10: a sixth of the sender's hourly share
    for number in range(burst + 5):
        uplink.offer(_offer(number))
    assert uplink.pending == burst
    assert uplink.counters["over_budget"] == 5
    uplink.offer(_offer(100, sender=bytes([0xC3]) * 32))  # another phone is not held back
    assert uplink.pending == burst + 1
    clock.now += 3600 / 60  # a minute: one more token for alice (60 an hour)
    uplink.offer(_offer(101))
    assert uplink.pending == burst + 2


def test_the_queue_is_bounded_oldest_dropped_first() -> None:
    clock = _Clock()
    uplink = AppUplink(
        AppUplinkPolicy(relays=("wss://relay.example.org/ws",), per_hour=100_000), clock=clock
    )
    senders = [i.to_bytes(32, "big") for i in range(MAX_PENDING + 3)]
    for number, sender in enumerate(senders):
        uplink.offer(_offer(number, sender=sender))
    assert uplink.pending == MAX_PENDING
    assert uplink.counters["dropped"] == 3


def test_relays_on_private_addresses_are_skipped_unless_allowed() -> None:
    urls = ("ws://127.0.0.1:9/ws", "ws://192.168.1.2/ws", "wss://relay.example.org/ws")
    assert AppUplink(AppUplinkPolicy(relays=urls)).relays == ("wss://relay.example.org/ws",)
    assert AppUplink(AppUplinkPolicy(relays=urls, private_addresses=True)).relays == urls


async def test_a_failing_relay_backs_off_and_the_packet_goes_once_it_answers() -> None:
    answers = ["relay busy", None]  # None: store it
    received: list[str] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            received.append(message.data)
            error = answers.pop(0) if answers else None
            if error is None:
                await ws.send_str('{"type":"published","id":"1"}')
            else:
                await ws.send_str(f'{{"type":"error","message":"{error}"}}')
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    clock = _Clock()
    uplink = AppUplink(
        AppUplinkPolicy(relays=(f"ws://127.0.0.1:{port}/ws",), private_addresses=True),
        clock=clock,
        rng=random.Random(1),
    )
    task = asyncio.create_task(uplink.run())
    try:
        uplink.offer(_offer(1))
        await wait_until(lambda: uplink.counters["publish_failed"] == 1, 5.0)
        await asyncio.sleep(0.3)
        assert len(received) == 1  # waiting out its backoff, not hammering the relay
        clock.now += 3.0  # past the first backoff (2 s, jittered by at most 20 %)
        await wait_until(lambda: uplink.counters["bridged"] == 1, 5.0)
        assert uplink.pending == 0
        assert len(received) == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()


async def test_a_packet_not_published_in_time_is_given_up() -> None:
    clock = _Clock()
    uplink = AppUplink(
        AppUplinkPolicy(relays=("ws://127.0.0.1:9/ws",), private_addresses=True), clock=clock
    )
    uplink.offer(_offer(1))
    clock.now += MAX_AGE_S
    task = asyncio.create_task(uplink.run())
    try:
        await wait_until(lambda: uplink.counters["expired"] == 1, 5.0)
        assert uplink.pending == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_phone_reaches_a_contact_across_town_through_node_and_relay(
    tmp_path: Path,
) -> None:
    relay = await launch_relay(tmp_path / "relay", tmp_path / "relay.log")
    ws_url = relay.url.removesuffix("/v1") + "/ws"
    alice_key, bob_key = SigningKey.generate(), SigningKey.generate()
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(3))
    uplink = AppUplink(AppUplinkPolicy(relays=(ws_url,), private_addresses=True))
    driver = AppMeshDriver(AppRouter(), uplink=uplink.offer, tick_s=0.05)
    alice = AppPhone(alice_key.public_key, random.Random(4))
    tasks = [
        asyncio.create_task(driver.run(medium.transport("node-1", 40.0, 0.0, service=APP_SERVICE))),
        asyncio.create_task(uplink.run()),
    ]
    reader = await AppClient.connect(relay.url)
    try:
        await alice.start(
            medium.transport("alice", 0.0, 0.0, service=APP_SERVICE, frame_limit=PHONE_VALUE_LENGTH)
        )
        await wait_until(lambda: driver.links == ["alice@pigeon-app"], 5.0)
        sent = await alice.send(bob_key.public_key, b"olm ciphertext for bob" * 20)
        await wait_until(lambda: uplink.counters["bridged"] == 1, 10.0)
        _, answer = await reader.subscribe_and_auth(bob_key)  # bob's phone, elsewhere, online
        assert '"authenticated"' in answer
        envelope = await reader.receive()
        assert isinstance(envelope, AppEnvelope)
        assert base64.b64decode(envelope.ciphertext) == sent  # the whole packet, as alice sent it
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await reader.close()
        await alice.aclose()
        relay.process.terminate()
        await relay.process.wait()


async def test_the_publisher_reports_an_unreachable_relay_as_broken() -> None:
    async with aiohttp.ClientSession() as session:
        publisher = AppRelayPublisher("ws://127.0.0.1:9/ws", session)  # nothing listens there
        with pytest.raises(AppRelayBroken):
            await publisher.publish(BOB, b"x")
        await publisher.aclose()


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ('{"type":"published","id":"7"}', "7"),
        ('{"type":"error","message":"rate limited"}', AppRelayBusy),
        ('{"type":"error","message":"relay at capacity"}', AppRelayBusy),
        ('{"type":"error","message":"invalid recipient"}', AppRelayRefused),
        ('{"type":"error","message":"invalid ciphertext"}', AppRelayRefused),
        ('{"type":"challenge","nonce":"AA=="}', AppRelayBroken),
        ("[1]", AppRelayBroken),
        ("not json", AppRelayBroken),
        ("[" * 100_000, AppRelayBroken),  # nested past Python's recursion limit
    ],
)
def test_replies_map_to_stored_later_never_or_broken(reply: str, outcome: object) -> None:
    if isinstance(outcome, str):
        assert parse_reply(reply) == outcome
    else:
        with pytest.raises(outcome):  # type: ignore[call-overload]
            parse_reply(reply)


def test_the_publish_frame_is_the_apps() -> None:
    assert publish_frame(BOB, b"\x01\x08") == (
        '{"type":"publish","recipient":"' + BOB.hex() + '","ciphertext":"AQg="}'
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.floats(0.0, 120.0, allow_nan=False)),
        max_size=300,
    ),
    st.integers(60, 6000),
)
def test_no_sender_and_no_node_publishes_past_its_budget(
    offers: list[tuple[int, float]], per_hour: int
) -> None:
    clock = _Clock()
    start = clock.now
    uplink = AppUplink(
        AppUplinkPolicy(relays=("wss://relay.example.org/ws",), per_hour=per_hour), clock=clock
    )
    accepted: dict[int, int] = {}
    for number, (sender, step_s) in enumerate(offers):
        clock.now += step_s
        before = uplink.pending + uplink.counters["dropped"]
        uplink.offer(_offer(number, sender=sender.to_bytes(32, "big")))
        if uplink.pending + uplink.counters["dropped"] > before:
            accepted[sender] = accepted.get(sender, 0) + 1
    elapsed_h = (clock.now - start) / 3600
    share = per_hour * PER_SENDER_SHARE
    for count in accepted.values():
        assert count <= max(1.0, share / 6) + share * elapsed_h + 1e-9
    assert sum(accepted.values()) <= max(1.0, per_hour / 6) + per_hour * elapsed_h + 1e-9
    assert uplink.pending <= MAX_PENDING
    assert uplink.counters["offered"] == len(offers)
