"""Links neighbours dial on an L2CAP channel, against the fake bluetoothd: the channel is the far
end of a real SEQPACKET socket pair handed to `accept_channel` as the listener would (this
machine has no Bluetooth sockets; the VM tier runs real LE channels)."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator

import pytest

from pigeon.transport.base import Broken, Busy, PeerId
from pigeon.transport.ble import transport as transport_module
from pigeon.transport.ble.central import CentralLink
from pigeon.transport.ble.gatt import (
    CHANNEL_FRAME_LIMIT,
    MAX_FRAME_LIMIT,
    Bye,
    ByeReason,
    Data,
    Intro,
    LinkFrame,
    LinkKind,
    decode_link_frame,
    encode_link_frame,
)
from pigeon.transport.ble.peripheral import RX_PATH, TX_PATH
from pigeon.transport.ble.transport import BleConfig, BleTransport, peer_id
from pigeon.transport.conformance import RecordingSink
from tests.transport.ble.fake_bluez import FakeBlueZ, NotifyTap

ADDRESS = "00:AA:01:05:00:05"
TAG = b"\x01\x02\x03"
CENTRAL_ID = bytes.fromhex("00000001")
PEER = peer_id(CENTRAL_ID)


@pytest.fixture(autouse=True)
def _bleak_on_the_private_bus(bus_address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_address)


class Node:
    def __init__(self, transport: BleTransport, sink: RecordingSink, tap: NotifyTap) -> None:
        self.transport = transport
        self.sink = sink
        self.tap = tap
        self.owner = transport.adapter.bus.unique_name


async def start(bluez: FakeBlueZ, max_links: int = 4) -> Node:
    transport = BleTransport(
        BleConfig(adapter="hci0", max_links=max_links, bus_address=bluez.address),
        rng=random.Random(5),
    )
    sink = RecordingSink()
    await transport.start(sink)
    assert bluez.bus is not None
    tap = await NotifyTap.attach(bluez.bus, transport.adapter.bus.unique_name, TX_PATH)
    return Node(transport, sink, tap)


@pytest.fixture
async def node(bluez: FakeBlueZ) -> AsyncIterator[Node]:
    started = await start(bluez)
    yield started
    await started.transport.aclose()


class Central:
    """The dialer's end of a channel: link frames out and in, as SDUs."""

    def __init__(self, node: Node, address: str = ADDRESS) -> None:
        theirs, self.sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.setblocking(False)
        node.transport.accept_channel(theirs, address)

    async def send(self, frame: LinkFrame | bytes) -> None:
        value = frame if isinstance(frame, bytes) else encode_link_frame(frame)
        await asyncio.get_running_loop().sock_sendall(self.sock, value)

    async def receive(self) -> bytes:
        """The next SDU, b"" when the node closed the channel."""
        return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 600), 5)

    async def hello(self, tag: bytes = TAG, ident: bytes = CENTRAL_ID) -> LinkFrame:
        await self.send(Intro(LinkKind.HELLO, tag, ident, CHANNEL_FRAME_LIMIT))
        return decode_link_frame(await self.receive())


async def test_a_link_runs_on_the_channel_and_nothing_goes_as_notifications(
    bluez: FakeBlueZ, node: Node
) -> None:
    bluez.add_device("hci0", ADDRESS)
    central = Central(node)
    welcome = await central.hello()
    limit = CHANNEL_FRAME_LIMIT  # not bound by an ATT MTU
    assert welcome == Intro(LinkKind.WELCOME, TAG, node.transport.identifier(), limit)
    assert await node.sink.wait_for("link_up", PEER, 1, "link up") == [limit]
    (state,) = node.transport.links()
    assert (state.role, state.carrier, state.address) == ("peripheral", "l2cap", ADDRESS)

    for frame in (b"x", bytes(limit)):
        await central.send(Data(TAG, frame))
    assert await node.sink.wait_for("frame", PEER, 2, "frames") == [b"x", bytes(limit)]
    await node.transport.send(PEER, b"to the central")
    assert decode_link_frame(await central.receive()) == Data(TAG, b"to the central")
    assert node.tap.values == []  # one link's frames on its own channel only

    central.sock.close()
    assert await node.sink.wait_for("link_down", PEER, 1, "link down") == [
        "the peer closed the channel"
    ]


async def test_gatt_writes_with_a_channel_links_tag_are_dropped(
    bluez: FakeBlueZ, node: Node
) -> None:
    device = bluez.add_device("hci0", ADDRESS)
    central = Central(node)
    await central.hello()
    await node.sink.wait_for("link_up", PEER, 1, "link up")
    await bluez.write(node.owner, RX_PATH, device, encode_link_frame(Data(TAG, b"gatt")), 517)
    await central.send(Data(b"\x09\x09\x09", b"other tag"))
    await central.send(Data(TAG, b"channel"))
    assert await node.sink.wait_for("frame", PEER, 1, "frames") == [b"channel"]
    await asyncio.sleep(0.1)
    assert len(node.sink.of("frame", PEER)) == 1


async def test_a_slow_reader_gets_busy_then_everything_in_order(
    bluez: FakeBlueZ, node: Node
) -> None:
    bluez.add_device("hci0", ADDRESS)
    central = Central(node)
    await central.hello()
    await node.sink.wait_for("link_up", PEER, 1, "link up")
    accepted = []
    for n in range(5000):
        frame = n.to_bytes(4, "big") + bytes(200)
        try:
            await node.transport.send(PEER, frame)
        except Busy:
            break
        accepted.append(frame)
        await asyncio.sleep(0)
    assert len(accepted) < 5000, "the link took 5000 frames without a reader"
    got = [decode_link_frame(await central.receive()) for _ in accepted]
    assert got == [Data(TAG, frame) for frame in accepted]


async def test_no_room_is_said_on_the_channel_then_it_closes(bluez: FakeBlueZ) -> None:
    node = await start(bluez, max_links=1)
    try:
        bluez.add_device("hci0", ADDRESS)
        bluez.add_device("hci0", "00:AA:01:06:00:06")
        first = Central(node)
        await first.hello()
        second = Central(node, "00:AA:01:06:00:06")
        refusal = await second.hello(b"\x04\x05\x06", b"\x00\x00\x00\x02")
        assert refusal == Bye(b"\x04\x05\x06", ByeReason.NO_ROOM)
        assert await second.receive() == b""
        assert node.sink.of("link_up", peer_id(b"\x00\x00\x00\x02")) == []
    finally:
        await node.transport.aclose()


async def test_a_channel_that_says_nothing_is_closed(
    bluez: FakeBlueZ, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport_module, "CHANNEL_HELLO_WAIT_S", 0.1)
    node = await start(bluez)
    try:
        bluez.add_device("hci0", ADDRESS)
        silent = Central(node)
        assert await silent.receive() == b""
    finally:
        await node.transport.aclose()


async def test_aclose_says_bye_on_the_channel(bluez: FakeBlueZ) -> None:
    node = await start(bluez)
    bluez.add_device("hci0", ADDRESS)
    central = Central(node)
    await central.hello()
    await node.sink.wait_for("link_up", PEER, 1, "link up")
    await node.transport.aclose()
    assert decode_link_frame(await central.receive()) == Bye(TAG, ByeReason.CLOSING)
    assert await central.receive() == b""


async def test_a_disconnect_ends_the_link_and_its_channel(bluez: FakeBlueZ, node: Node) -> None:
    device = bluez.add_device("hci0", ADDRESS)
    central = Central(node)
    await central.hello()
    await node.sink.wait_for("link_up", PEER, 1, "link up")
    bluez.devices[device].set_connected(False)
    assert await node.sink.wait_for("link_down", PEER, 1, "link down") == ["disconnected"]
    assert await central.receive() == b""
    assert PeerId(PEER) not in {state.peer for state in node.transport.links()}


class Client:
    """A connected BleakClient stand-in for a link we dialed: its channel carries the frames,
    so only a hang-up may reach it."""

    def __init__(self) -> None:
        self.address = "00:AA:01:01:00:01"
        self.is_connected = True
        self.calls: list[str] = []

    async def write_gatt_char(self, char: object, value: bytes, response: bool) -> None:
        raise AssertionError("a link on a channel wrote over GATT")

    async def disconnect(self) -> None:
        self.calls.append("disconnect")


def dialed_link(client: Client, sock: socket.socket) -> CentralLink:
    """A link we dialed whose frames ride `sock` (a channel: no pacer)."""
    return CentralLink(
        client,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        TAG,
        MAX_FRAME_LIMIT,
        None,
        lambda: 0.0,
        sock,
    )


async def test_a_link_we_dial_runs_its_handshake_and_frames_on_the_channel() -> None:
    ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    client = Client()
    link = dialed_link(client, ours)
    assert link.channel is not None
    handshake = asyncio.create_task(link.handshake(CENTRAL_ID))
    hello = decode_link_frame(await loop.sock_recv(peer, 600))
    assert hello == Intro(LinkKind.HELLO, TAG, CENTRAL_ID, MAX_FRAME_LIMIT)
    await loop.sock_sendall(
        peer, encode_link_frame(Intro(LinkKind.WELCOME, TAG, b"\x00\x00\x00\x09", 200))
    )
    await asyncio.wait_for(handshake, 5)
    assert (link.peer_identifier, link.frame_limit) == (b"\x00\x00\x00\x09", 200)

    frames: list[bytes] = []
    byes: list[str] = []
    link.run(frames.append, byes.append)
    await loop.sock_sendall(peer, encode_link_frame(Data(TAG, b"in")))
    for n in range(3):
        link.offer(bytes([n]) * 200)
    got = [decode_link_frame(await loop.sock_recv(peer, 600)) for _ in range(3)]
    assert got == [Data(TAG, bytes([n]) * 200) for n in range(3)]
    assert frames == [b"in"]

    await link.close(say_bye=True)
    assert decode_link_frame(await loop.sock_recv(peer, 600)) == Bye(TAG, ByeReason.CLOSING)
    assert await loop.sock_recv(peer, 600) == b""
    assert client.calls == ["disconnect"]
    peer.close()


async def test_a_channel_that_ends_during_the_handshake_fails_it() -> None:
    ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    link = dialed_link(Client(), ours)
    handshake = asyncio.create_task(link.handshake(CENTRAL_ID))
    await asyncio.sleep(0.05)
    peer.close()
    with pytest.raises(Broken, match="channel"):
        await asyncio.wait_for(handshake, 5)


async def test_channels_beyond_twice_the_link_limit_are_closed_at_once(bluez: FakeBlueZ) -> None:
    node = await start(bluez, max_links=1)
    try:
        held = [Central(node, f"00:AA:01:05:00:0{n}") for n in range(2)]
        extra = Central(node, "00:AA:01:05:00:09")
        assert await extra.receive() == b""  # closed unheard
        for central in held:  # the first two still wait for their HELLO
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(central.receive(), 0.2)
    finally:
        await node.transport.aclose()


async def test_channels_of_links_that_ended_do_not_count_against_the_limit(
    bluez: FakeBlueZ,
) -> None:
    node = await start(bluez, max_links=1)  # at most 2 channels at once
    try:
        bluez.add_device("hci0", ADDRESS)
        for n in range(4):
            central = Central(node)
            tag = bytes([0, 0, n + 1])
            assert isinstance(await central.hello(tag), Intro), f"link {n} refused"
            await central.send(Bye(tag, ByeReason.CLOSING))
            assert await central.receive() == b""  # the node ended the link and its channel
            central.sock.close()
    finally:
        await node.transport.aclose()
