"""Link slots under abuse, end to end on the fake BlueZ: idle centrals give their slots to a
neighbour, a junk-writing central is cut and backed off, a silent link goes by itself.

The transport's clock is a stand-in advanced by hand (the policy's idle and backoff times are
minutes); the D-Bus side is the fake bluetoothd of the other BLE tests.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import pytest

from pigeon.transport.base import FrameVerdict, PeerId
from pigeon.transport.ble import transport as ble_transport
from pigeon.transport.ble.eviction import EvictionParams
from pigeon.transport.ble.gatt import Bye, ByeReason, Data, Intro, LinkKind, encode_link_frame
from pigeon.transport.ble.peripheral import RX_PATH, TX_PATH
from pigeon.transport.ble.transport import HANG_UP_WAIT_S, BleConfig, BleTransport, peer_id
from pigeon.transport.conformance import RecordingSink
from tests.transport.ble.fake_bluez import FakeBlueZ, NotifyTap, eventually

PARAMS = EvictionParams()
JUNK = b"\xee" * 20  # link frame version 14: malformed
IDLE_1 = bytes.fromhex("00000001")
IDLE_2 = bytes.fromhex("00000002")
NEIGHBOUR = bytes.fromhex("00000003")


class JudgingSink(RecordingSink):
    """A RecordingSink whose verdict on each frame is set by the test (default: useful)."""

    def __init__(self) -> None:
        super().__init__()
        self.verdict = FrameVerdict.USEFUL

    def frame_received(self, peer: PeerId, frame: bytes) -> FrameVerdict:  # type: ignore[override]
        super().frame_received(peer, frame)
        return self.verdict


@dataclass
class Node:
    transport: BleTransport
    sink: JudgingSink
    tap: NotifyTap
    owner: str
    now: list[float]


@pytest.fixture(autouse=True)
def _bleak_on_the_private_bus(bus_address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_address)


async def _start(bluez: FakeBlueZ, max_links: int) -> Node:
    now = [1000.0]
    transport = BleTransport(
        BleConfig(adapter="hci0", max_links=max_links, bus_address=bluez.address),
        rng=random.Random(5),
        clock=lambda: now[0],
    )
    sink = JudgingSink()
    await transport.start(sink)
    owner = transport.adapter.bus.unique_name
    assert bluez.bus is not None
    tap = await NotifyTap.attach(bluez.bus, owner, TX_PATH)
    return Node(transport, sink, tap, owner, now)


async def _hello(
    bluez: FakeBlueZ, node: Node, device: str, tag: bytes, ident: bytes, limit: int = 244
) -> None:
    hello = encode_link_frame(Intro(LinkKind.HELLO, tag, ident, limit))
    await bluez.write(node.owner, RX_PATH, device, hello, 517)


async def _data(bluez: FakeBlueZ, node: Node, device: str, tag: bytes, frame: bytes) -> None:
    await bluez.write(node.owner, RX_PATH, device, encode_link_frame(Data(tag, frame)), 517)


async def _byes(node: Node, tag: bytes, count: int = 1) -> None:
    from pigeon.transport.ble.gatt import decode_link_frame

    def heard() -> bool:
        byes = [decode_link_frame(v) for v in node.tap.values]
        return byes.count(Bye(tag, ByeReason.NO_ROOM)) >= count

    await eventually(heard)


async def test_idle_centrals_give_their_slots_to_a_neighbour(bluez: FakeBlueZ) -> None:
    node = await _start(bluez, max_links=2)
    try:
        idle1 = bluez.add_device("hci0", "00:AA:01:01:00:01")
        idle2 = bluez.add_device("hci0", "00:AA:01:02:00:02")
        await _hello(bluez, node, idle1, b"\x01\x01\x01", IDLE_1)
        await _hello(bluez, node, idle2, b"\x02\x02\x02", IDLE_2)
        await node.sink.wait_for("link_up", peer_id(IDLE_2), 1, "slots full")
        neighbour = bluez.add_device("hci0", "00:AA:01:03:00:03")
        # Both squatters are fresh: a central that dials us waits for one to go idle.
        await _hello(bluez, node, neighbour, b"\x03\x03\x03", NEIGHBOUR)
        await _byes(node, b"\x03\x03\x03")
        assert node.sink.of("link_up", peer_id(NEIGHBOUR)) == []
        # The second squatter says one thing; the first says nothing for the idle period.
        node.now[0] += PARAMS.idle_s / 2
        await _data(bluez, node, idle2, b"\x02\x02\x02", b"once")
        await node.sink.wait_for("frame", peer_id(IDLE_2), 1, "a useful frame")
        node.now[0] += PARAMS.idle_s / 2 + 1
        await _hello(bluez, node, neighbour, b"\x03\x03\x03", NEIGHBOUR)
        await node.sink.wait_for("link_up", peer_id(NEIGHBOUR), 1, "the neighbour links")
        assert node.sink.of("link_down", peer_id(IDLE_1)) == ["evicted: room"]
        assert node.sink.of("link_down", peer_id(IDLE_2)) == []
        assert len(node.transport.links()) == 2
        await _byes(node, b"\x01\x01\x01")  # the evicted one hears why, then is cut
        await eventually(lambda: bluez.devices[idle1].disconnects == 1, HANG_UP_WAIT_S + 3)
        for n in range(3):
            await _data(bluez, node, neighbour, b"\x03\x03\x03", bytes([n]) * 100)
        frames = await node.sink.wait_for("frame", peer_id(NEIGHBOUR), 3, "frames")
        assert frames == [bytes([n]) * 100 for n in range(3)]
    finally:
        await node.transport.aclose()


async def test_a_junk_writing_central_is_cut_and_backed_off(bluez: FakeBlueZ) -> None:
    node = await _start(bluez, max_links=2)
    try:
        junk = bluez.add_device("hci0", "00:AA:01:04:00:04")
        await _hello(bluez, node, junk, b"\x04\x04\x04", IDLE_1, limit=100)
        peer = peer_id(IDLE_1)
        await node.sink.wait_for("link_up", peer, 1, "link up")
        for _ in range(PARAMS.strikes - 1):
            await bluez.write(node.owner, RX_PATH, junk, JUNK, 517)
        assert node.sink.of("link_down", peer) == []
        # a frame over the link's limit breaks the rules too
        await _data(bluez, node, junk, b"\x04\x04\x04", bytes(100 + 1))
        assert await node.sink.wait_for("link_down", peer, 1, "cut") == ["evicted: abuse"]
        await eventually(lambda: bluez.devices[junk].disconnects == 1, HANG_UP_WAIT_S + 3)
        assert node.sink.of("frame", peer) == []
        # Back again at once (a fresh connection): no link, and cut again.
        bluez.devices[junk].set_connected(True)
        cuts = bluez.devices[junk].disconnects
        await _hello(bluez, node, junk, b"\x05\x05\x05", IDLE_1)
        await _byes(node, b"\x05\x05\x05")
        await eventually(lambda: bluez.devices[junk].disconnects > cuts)
        assert node.sink.of("link_up", peer) == [100]
        # After the backoff it is a stranger again.
        node.now[0] += PARAMS.backoff_s
        bluez.devices[junk].set_connected(True)
        await _hello(bluez, node, junk, b"\x06\x06\x06", IDLE_1)
        await node.sink.wait_for("link_up", peer, 2, "linked after the backoff")
    finally:
        await node.transport.aclose()


async def test_junk_without_a_link_is_cut_too(bluez: FakeBlueZ) -> None:
    node = await _start(bluez, max_links=1)
    try:
        junk = bluez.add_device("hci0", "00:AA:01:04:00:04")
        for _ in range(PARAMS.strikes):
            await bluez.write(node.owner, RX_PATH, junk, JUNK, 517)
        await eventually(lambda: bluez.devices[junk].disconnects == 1)
    finally:
        await node.transport.aclose()


async def test_frames_the_upper_layer_refuses_count_against_the_link(bluez: FakeBlueZ) -> None:
    node = await _start(bluez, max_links=1)
    try:
        device = bluez.add_device("hci0", "00:AA:01:05:00:05")
        await _hello(bluez, node, device, b"\x07\x07\x07", IDLE_1)
        peer = peer_id(IDLE_1)
        await node.sink.wait_for("link_up", peer, 1, "link up")
        node.sink.verdict = FrameVerdict.IGNORED  # duplicates: harmless, but not useful
        await _data(bluez, node, device, b"\x07\x07\x07", b"dup")
        node.sink.verdict = FrameVerdict.REFUSED
        for n in range(PARAMS.strikes):
            await _data(bluez, node, device, b"\x07\x07\x07", bytes([n + 1]))
        assert await node.sink.wait_for("link_down", peer, 1, "cut") == ["evicted: abuse"]
    finally:
        await node.transport.aclose()


async def test_a_link_silent_past_the_hard_limit_is_cut(
    bluez: FakeBlueZ, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ble_transport, "SWEEP_S", 0.05)
    node = await _start(bluez, max_links=2)
    try:
        device = bluez.add_device("hci0", "00:AA:01:05:00:05")
        await _hello(bluez, node, device, b"\x08\x08\x08", IDLE_1)
        peer = peer_id(IDLE_1)
        await node.sink.wait_for("link_up", peer, 1, "link up")
        node.now[0] += PARAMS.hard_idle_s - 1
        await _data(bluez, node, device, b"\x08\x08\x08", b"alive")
        await node.sink.wait_for("frame", peer, 1, "a useful frame")
        node.now[0] += PARAMS.hard_idle_s - 1
        await asyncio.sleep(0.3)  # sweeps run
        # still within the limit, counted from the last useful frame
        assert node.sink.of("link_down", peer) == []
        node.now[0] += 1
        assert await node.sink.wait_for("link_down", peer, 1, "cut") == ["evicted: hard_idle"]
    finally:
        await node.transport.aclose()


class DialedLink:
    """Stands in for a `CentralLink` whose dial and handshake succeeded (a radio's job)."""

    def __init__(self, address: str, identifier: bytes) -> None:
        self.address = address
        self.peer_identifier = identifier
        self.frame_limit = 244
        self.up = True
        self.channel = None  # over GATT
        self.closed: list[tuple[bool, bool, ByeReason]] = []

    async def close(self, say_bye: bool, disconnect: bool, bye_reason: ByeReason) -> None:
        self.closed.append((say_bye, disconnect, bye_reason))


async def test_a_neighbour_we_dial_takes_a_silent_centrals_slot_at_once(bluez: FakeBlueZ) -> None:
    node = await _start(bluez, max_links=1)
    try:
        squatter = bluez.add_device("hci0", "00:AA:01:01:00:01")
        await _hello(bluez, node, squatter, b"\x01\x01\x01", IDLE_1)
        await node.sink.wait_for("link_up", peer_id(IDLE_1), 1, "the slot is taken")
        # A node we saw advertising may be dialed although the squatter is fresh...
        assert node.transport.wants("00:AA:01:03:00:03", b"\xff\xff\xff\xff", waited_s=0.0)
        dialed = DialedLink("00:AA:01:03:00:03", NEIGHBOUR)
        central = node.transport._central
        assert central is not None
        central._links[dialed.address] = dialed  # type: ignore[assignment]
        node.transport.central_link_up(dialed)  # type: ignore[arg-type]
        # ... and its link takes the squatter's slot when it comes up.
        assert node.sink.of("link_down", peer_id(IDLE_1)) == ["evicted: room"]
        assert node.sink.of("link_up", peer_id(NEIGHBOUR)) == [244]
        node.transport.central_frame(dialed, b"relayed")  # type: ignore[arg-type]
        # A neighbour that relays is never pre-empted: the next dialed link finds no room.
        assert not node.transport.wants("00:AA:01:04:00:04", b"\xff\xff\xff\xfe", waited_s=0.0)
        late = DialedLink("00:AA:01:04:00:04", bytes.fromhex("00000004"))
        central._links[late.address] = late  # type: ignore[assignment]
        node.transport.central_link_up(late)  # type: ignore[arg-type]
        await eventually(lambda: late.closed == [(True, True, ByeReason.NO_ROOM)])
        assert node.sink.of("link_up", peer_id(late.peer_identifier)) == []
        assert node.sink.of("link_down", peer_id(NEIGHBOUR)) == []
    finally:
        await node.transport.aclose()
