"""The node's app-mesh driver on the simulated radio: app packets cross it both ways unchanged
but for the TTL, in frames sized as the app sizes them; custody hands over to a late phone."""

import asyncio
import random
from pathlib import Path

from pigeon.appmesh.fragment import HEADER_SIZE, MIN_PAYLOAD, decode_fragment, split
from pigeon.appmesh.packet import with_ttl
from pigeon.appmesh.router import AppRouter, AppRouterConfig
from pigeon.daemon.appmesh_driver import MAX_QUEUED_FRAMES, AppMeshDriver
from pigeon.daemon.demo import RANGE_M, owner_config, run_app_phones
from pigeon.sim.app_phone import APP_SERVICE, PHONE_VALUE_LENGTH, AppPhone
from pigeon.transport.base import PeerId
from pigeon.transport.sim import RadioParams, SimMedium

from .conftest import wait_until

ALICE = bytes([0xA1]) * 32
BOB = bytes([0xB2]) * 32
NODE_VALUE_LENGTH = 509  # a Pi's BlueZ offers an ATT MTU of 512
WAIT_S = 5.0


def _phone(medium: SimMedium, name: str, key: bytes, x: float) -> tuple[AppPhone, object]:
    phone = AppPhone(key, random.Random(name), relays=True)
    transport = medium.transport(name, x, 0.0, service=APP_SERVICE, frame_limit=PHONE_VALUE_LENGTH)
    return phone, transport


async def test_app_packets_cross_the_node_both_ways_unchanged_but_for_the_ttl() -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(1))
    driver = AppMeshDriver(AppRouter(), tick_s=0.05)
    node = medium.transport("node", 40.0, 0.0, service=APP_SERVICE, frame_limit=NODE_VALUE_LENGTH)
    ours = medium.transport("node", 40.0, 0.0)  # our dialect at the same place: never linked
    alice, alice_radio = _phone(medium, "alice", ALICE, 0.0)
    bob, bob_radio = _phone(medium, "bob", BOB, 80.0)  # 80 m from alice: only via the node
    run = asyncio.create_task(driver.run(node))
    await ours.start(_Silent())
    await alice.start(alice_radio)  # type: ignore[arg-type]
    await bob.start(bob_radio)  # type: ignore[arg-type]
    try:
        await wait_until(lambda: len(driver.links) == 2 and alice.links and bob.links)
        assert alice.links == ["node@pigeon-app"]
        assert bob.links == ["node@pigeon-app"]
        to_bob = await alice.send(BOB, bytes(range(256)) * 3)  # 800+ bytes: several fragments
        to_alice = await bob.send(ALICE, b"ack")
        assert await bob.wait_for_inbox(1, WAIT_S) == [with_ttl(to_bob, 7)]
        assert await alice.wait_for_inbox(1, WAIT_S) == [with_ttl(to_alice, 7)]
        assert (to_bob[1], bob.inbox[0][1]) == (8, 7)
        assert driver.router.counters["relayed"] == 2
        # Bob had not spoken yet when alice's packet came, so it was offered; alice had.
        assert driver.router.counters["offered_uplink"] == 1
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await alice.aclose()
        await bob.aclose()
        await ours.aclose()
    # The phone's sizing, and the node's into the phone: 182 - 7 = 175 bytes a fragment.
    assert len(alice.frames_sent) > 1
    assert len(bob.frames_received) > 1
    for frame in alice.frames_sent + bob.frames_received:
        fragment = decode_fragment(frame)
        last = fragment.index == fragment.count - 1
        assert len(frame) <= PHONE_VALUE_LENGTH
        assert last or len(fragment.payload) == PHONE_VALUE_LENGTH - HEADER_SIZE >= MIN_PAYLOAD


async def test_the_node_offers_a_packet_for_a_recipient_not_in_range_and_hands_it_over() -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(2))
    offered: list[bytes] = []
    driver = AppMeshDriver(AppRouter(), uplink=lambda offer: offered.append(offer.packet))
    driver.tick_s = 0.05
    node = medium.transport("node", 40.0, 0.0, service=APP_SERVICE, frame_limit=NODE_VALUE_LENGTH)
    alice, alice_radio = _phone(medium, "alice", ALICE, 0.0)
    run = asyncio.create_task(driver.run(node))
    await alice.start(alice_radio)  # type: ignore[arg-type]
    bob, bob_radio = _phone(medium, "bob", BOB, 500.0)  # far away for now
    await bob.start(bob_radio)  # type: ignore[arg-type]
    try:
        await wait_until(lambda: driver.links == ["alice@pigeon-app"])
        sent = await alice.send(BOB, b"hello bob")
        await wait_until(lambda: offered)
        assert offered == [sent]  # the bytes as they arrived, TTL 8: what alice would publish
        medium.radio.move_node(bob_radio.node_id, 80.0, 0.0)  # type: ignore[attr-defined]
        medium.wake()
        assert await bob.wait_for_inbox(1, WAIT_S) == [with_ttl(sent, 7)]
        assert driver.router.counters["custody_handed_over"] == 1
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await alice.aclose()
        await bob.aclose()


class _Silent:
    def link_up(self, peer: str, frame_limit: int) -> None:
        raise AssertionError("our service never links with the app's")

    def link_down(self, peer: str, reason: str) -> None:
        pass

    def frame_received(self, peer: str, frame: bytes) -> None:
        pass


class _Stalled:
    """A transport whose sends never finish: frames pile up in the driver's queue."""

    def __init__(self) -> None:
        self.sink: object = None

    async def start(self, sink: object) -> None:
        self.sink = sink

    def frame_limit(self, peer: str) -> int:
        return NODE_VALUE_LENGTH

    async def send(self, peer: str, frame: bytes) -> None:
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        pass


async def test_a_full_link_queue_drops_whole_packets_never_part_of_one() -> None:
    config = AppRouterConfig(
        in_packets_per_s=1e6, in_burst=1e6, out_packets_per_s=1e6, out_burst=1e6
    )
    driver = AppMeshDriver(AppRouter(config), tick_s=3600.0)
    transport = _Stalled()
    run = asyncio.create_task(driver.run(transport))  # type: ignore[arg-type]
    await wait_until(lambda: transport.sink is not None, 5.0)
    driver.link_up(PeerId("a"), NODE_VALUE_LENGTH)
    driver.link_up(PeerId("b"), NODE_VALUE_LENGTH)
    body = bytes(1425)  # a 1,509-byte packet: 4 fragments of at most 502 bytes out to "b"
    per_packet = len(split(_packet(0, body), 0, NODE_VALUE_LENGTH - HEADER_SIZE))
    try:
        for frame in split(_packet(MAX_QUEUED_FRAMES, b"short"), 0, 503):  # one frame first
            driver.frame_received(PeerId("a"), frame)
        for number in range(MAX_QUEUED_FRAMES):
            for frame in split(_packet(number, body), number + 1, 503):
                driver.frame_received(PeerId("a"), frame)
        await asyncio.sleep(0)
        taken = driver._senders.queued()["b"] + 1  # the sender holds one, stuck in `send`
        assert per_packet == 4
        whole = (MAX_QUEUED_FRAMES - 1) // per_packet  # after the short one: 511 fit whole
        assert taken == 1 + whole * per_packet  # never the first frames of a 512th
        assert driver.counters["send_queue_full"] == MAX_QUEUED_FRAMES - whole
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


def _packet(number: int, body: bytes) -> bytes:
    envelope = bytes((1, 2)) + ALICE + BOB + body
    return bytes((1, 8)) + number.to_bytes(16, "big") + envelope


async def test_a_link_under_157_bytes_gets_no_sender() -> None:
    driver = AppMeshDriver(AppRouter(), tick_s=3600.0)
    transport = _Stalled()
    run = asyncio.create_task(driver.run(transport))  # type: ignore[arg-type]
    await wait_until(lambda: transport.sink is not None, 5.0)
    try:
        driver.link_up(PeerId("small"), 156)
        assert driver.links == []
        assert driver._senders.queued() == {}
        assert driver.router.counters["link_too_small"] == 1
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


async def test_the_demos_app_phones_chat_through_the_node_only() -> None:
    medium = SimMedium(RadioParams(range_m=RANGE_M), random.Random(8))
    driver = AppMeshDriver(AppRouter(), tick_s=0.05)
    node = medium.transport("you", 0.0, 0.0, service=APP_SERVICE, frame_limit=NODE_VALUE_LENGTH)
    tasks = [
        asyncio.create_task(driver.run(node)),
        asyncio.create_task(run_app_phones(medium, chat_s=0.05)),
    ]
    try:
        await wait_until(lambda: driver.router.counters["relayed"] >= 4, 10.0)
        assert sorted(driver.links) == ["app-phone-0@pigeon-app", "app-phone-1@pigeon-app"]
        assert medium.radio.peers(PeerId("app-phone-0@pigeon-app")) == [PeerId("you@pigeon-app")]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_the_demo_bridges_to_its_own_relay_never_the_internet(tmp_path: Path) -> None:
    config = owner_config(tmp_path, "pigeon-demo", "ws://127.0.0.1:8765/v1", (1, 2), screens=False)
    assert config.appmesh.relays == ("ws://127.0.0.1:8765/ws",)
    assert config.appmesh.relay_private_addresses
