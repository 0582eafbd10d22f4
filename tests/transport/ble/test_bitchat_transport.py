"""BitchatBleTransport's D-Bus side against a private dbus-daemon and a fake bluetoothd.

The fake plays bitchat phones: it writes packets to bitchat's characteristic without response
the way bluetoothd calls WriteValue (with the `device` and `mtu` options) and taps the
notifications of the same characteristic. Links the node dials need a radio: the VM tier
(tests/bluez/guest_bitchat.py) covers them.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from dbus_fast import Message, MessageType

from pigeon.transport.base import Broken, Closed, PeerId
from pigeon.transport.ble.app import AppBleTransport, app_peer_id
from pigeon.transport.ble.appgatt import APP_SERVICE_UUID
from pigeon.transport.ble.appperipheral import APP_ADVERT_PATH, APP_RX_PATH
from pigeon.transport.ble.bitchat import BITCHAT_PROFILE, BitchatBleTransport, bitchat_peer_id
from pigeon.transport.ble.bitchatgatt import BITCHAT_CHARACTERISTIC_UUID, BITCHAT_SERVICE_UUID
from pigeon.transport.ble.bitchatperipheral import (
    BITCHAT_ADVERT_PATH,
    BITCHAT_CHAR_PATH,
    BITCHAT_SERVICE_PATH,
)
from pigeon.transport.ble.errors import MalformedLinkFrame
from pigeon.transport.ble.eviction import EvictionParams
from pigeon.transport.ble.gatt import SERVICE_UUID, Intro, LinkKind, encode_link_frame
from pigeon.transport.ble.gattobjects import REFUSED_ERROR
from pigeon.transport.ble.peripheral import ADVERT_PATH, APP_PATH, RX_PATH
from pigeon.transport.ble.transport import BleConfig, BleTransport, ble_transports, peer_id
from pigeon.transport.conformance import RecordingSink
from tests.transport.ble.fake_bluez import FakeBlueZ, NotifyTap, eventually

PHONE1, PHONE2, PHONE3, PHONE4 = (
    "00:BC:01:05:00:05",
    "00:BC:01:06:00:06",
    "00:BC:01:07:00:07",
    "00:BC:01:08:00:08",
)
# A signed public message as bitchat-cli writes it (v1, type 0x02, TTL 7, broadcast): the
# transport carries it as it is; the bytes inside are the bitchat router's business.
PACKET = bytes.fromhex("010207") + bytes(8) + b"\x03\x00\x05" + bytes(8) + b"hello" + bytes(64)


@dataclass
class Node:
    ble: BleTransport
    app: AppBleTransport
    bitchat: BitchatBleTransport
    ble_sink: RecordingSink
    app_sink: RecordingSink
    sink: RecordingSink
    tap: NotifyTap
    owner: str


@pytest.fixture(autouse=True)
def _bleak_on_the_private_bus(bus_address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_address)


async def _start(
    bluez: FakeBlueZ, max_links: int = 4, clock: Callable[[], float] = time.monotonic
) -> Node:
    config = BleConfig(adapter="hci0", max_links=max_links, bus_address=bluez.address)
    services = ble_transports(config, rng=random.Random(5), clock=clock)
    assert services.app is not None
    assert services.bitchat is not None
    sink, app_sink, ble_sink = RecordingSink(), RecordingSink(), RecordingSink()
    await services.bitchat.start(sink)
    await services.app.start(app_sink)
    await services.mesh.start(ble_sink)
    owner = services.mesh.adapter.bus.unique_name
    assert bluez.bus is not None
    tap = await NotifyTap.attach(bluez.bus, owner, BITCHAT_CHAR_PATH)
    return Node(services.mesh, services.app, services.bitchat, ble_sink, app_sink, sink, tap, owner)


@pytest.fixture
async def node(bluez: FakeBlueZ) -> AsyncIterator[Node]:
    started = await _start(bluez)
    yield started
    await started.ble.aclose()


async def _write(
    bluez: FakeBlueZ, node: Node, device: str, value: bytes, mtu: int = 513
) -> str | None:
    # bitchat's phones write without response: BlueZ drops an error answer, the fake shows it.
    return await bluez.write_request(node.owner, BITCHAT_CHAR_PATH, device, value, mtu, "command")


async def test_one_application_holds_three_services_and_three_adverts(
    bluez: FakeBlueZ, node: Node
) -> None:
    (register_app,) = bluez.calls_to("RegisterApplication")
    assert register_app.body == [APP_PATH, {}]
    objects = bluez.applications[APP_PATH].objects
    services = {
        ifaces["org.bluez.GattService1"]["UUID"].value
        for ifaces in objects.values()
        if "org.bluez.GattService1" in ifaces
    }
    assert services == {SERVICE_UUID, APP_SERVICE_UUID, BITCHAT_SERVICE_UUID}
    char = objects[BITCHAT_CHAR_PATH]["org.bluez.GattCharacteristic1"]
    assert char["UUID"].value == BITCHAT_CHARACTERISTIC_UUID
    # as bitchat's own peripheral declares it: .notify, .write, .writeWithoutResponse, .read
    assert sorted(char["Flags"].value) == ["notify", "read", "write", "write-without-response"]
    assert char["Service"].value == BITCHAT_SERVICE_PATH
    assert set(bluez.advertisements) == {ADVERT_PATH, APP_ADVERT_PATH, BITCHAT_ADVERT_PATH}
    advert = bluez.advertisements[BITCHAT_ADVERT_PATH].objects
    assert advert["ServiceUUIDs"].value == [BITCHAT_SERVICE_UUID]
    assert "LocalName" not in advert  # bitchat's phones advertise no name, nor does the node
    assert advert["Type"].value == "peripheral"
    # what is registered is the plan: one instance per service, ours first
    registered = [c.body[0] for c in bluez.calls_to("RegisterAdvertisement")]
    assert registered == [ADVERT_PATH, APP_ADVERT_PATH, BITCHAT_ADVERT_PATH]
    assert [spec.service_uuid for spec in node.ble.adverts] == [
        SERVICE_UUID,
        APP_SERVICE_UUID,
        BITCHAT_SERVICE_UUID,
    ]
    # the shared scanner looks for every service
    await eventually(lambda: bluez.adapters["hci0"].discovering)
    filter_uuids = bluez.adapters["hci0"].discovery_filter["UUIDs"].value
    assert set(filter_uuids) == {SERVICE_UUID, APP_SERVICE_UUID, BITCHAT_SERVICE_UUID}


async def test_a_phone_links_at_its_first_write_and_packets_flow_both_ways(
    bluez: FakeBlueZ, node: Node
) -> None:
    device = bluez.add_device("hci0", PHONE1)
    assert await _write(bluez, node, device, PACKET, mtu=517) is None
    peer = bitchat_peer_id(PHONE1)
    # MTU 517 allows 514, which BlueZ 5.66 would lose: the link offers 510
    assert await node.sink.wait_for("link_up", peer, 1, "link up") == [510]
    assert await node.sink.wait_for("frame", peer, 1, "frame") == [PACKET]
    assert node.bitchat.links() == {peer: "peripheral"}
    await node.bitchat.send(peer, PACKET[::-1])
    assert await node.tap.wait(1) == [PACKET[::-1]]
    await node.bitchat.send(peer, bytes(510))  # a whole 510-byte packet in one notification
    assert (await node.tap.wait(2))[1] == bytes(510)
    with pytest.raises(ValueError, match=r"outside 1\.\.510"):
        await node.bitchat.send(peer, bytes(511))
    assert node.ble_sink.calls == []  # nothing of bitchat's reaches our mesh's transport
    assert node.app_sink.calls == []  # nor the app's


async def test_the_frame_limit_is_the_value_length_a_notification_carries(
    bluez: FakeBlueZ, node: Node
) -> None:
    device = bluez.add_device("hci0", PHONE1)
    # iOS's usual MTU: it writes 182 bytes, and BlueZ notifies a BlueZ central 180
    await _write(bluez, node, device, PACKET, mtu=185)
    assert await node.sink.wait_for("link_up", bitchat_peer_id(PHONE1), 1, "up") == [180]


async def test_a_link_under_106_bytes_is_refused_and_disconnected(
    bluez: FakeBlueZ, node: Node
) -> None:
    device = bluez.add_device("hci0", PHONE1)
    # notifications of 105 bytes: bitchat's smallest fragment (64 + 42) would not fit
    assert await _write(bluez, node, device, PACKET, mtu=110) == REFUSED_ERROR
    await eventually(lambda: bluez.devices[device].disconnects == 1)
    assert node.sink.calls == []
    other = bluez.add_device("hci0", PHONE2)
    assert await _write(bluez, node, other, PACKET, mtu=111) is None
    assert await node.sink.wait_for("link_up", bitchat_peer_id(PHONE2), 1, "up") == [106]


async def test_empty_and_oversized_writes_are_refused_with_a_typed_error(
    bluez: FakeBlueZ, node: Node
) -> None:
    device = bluez.add_device("hci0", PHONE1)
    assert await _write(bluez, node, device, b"") == REFUSED_ERROR
    assert await _write(bluez, node, device, bytes(511)) == REFUSED_ERROR
    assert node.sink.calls == []
    assert bluez.devices[device].disconnects == 0  # a bad write is no reason to cut the phone
    with pytest.raises(MalformedLinkFrame, match="bitchat frame of 511 bytes"):
        BITCHAT_PROFILE.check_frame(bytes(511))
    # a malformed write from a linked phone is dropped; the link and what follows stay
    await _write(bluez, node, device, PACKET)
    peer = bitchat_peer_id(PHONE1)
    await node.sink.wait_for("frame", peer, 1, "frame")
    assert await _write(bluez, node, device, bytes(600)) == REFUSED_ERROR
    await _write(bluez, node, device, PACKET[::-1])
    assert await node.sink.wait_for("frame", peer, 2, "frames") == [PACKET, PACKET[::-1]]
    assert node.sink.of("link_down", peer) == []


async def test_subscribers_share_one_notification_and_the_smallest_limit(
    bluez: FakeBlueZ, node: Node
) -> None:
    first, second = bluez.add_device("hci0", PHONE1), bluez.add_device("hci0", PHONE2)
    p1, p2 = bitchat_peer_id(PHONE1), bitchat_peer_id(PHONE2)
    await _write(bluez, node, first, PACKET, mtu=513)
    await node.sink.wait_for("link_up", p1, 1, "link up")
    await _write(bluez, node, second, PACKET, mtu=247)
    # every subscriber hears every notification: the smaller link sets the size for both
    assert await node.sink.wait_for("link_up", p1, 2, "p1 again") == [508, 242]
    assert node.sink.of("link_down", p1) == ["frame limit changed"]
    frames = [bytes([n]) * 242 for n in range(3)]
    for peer in (p1, p2):  # as the bitchat router floods one packet to two links
        for frame in frames:
            await node.bitchat.send(peer, frame)
    assert await node.tap.wait(3) == frames


async def test_a_disconnected_phone_is_link_down(bluez: FakeBlueZ, node: Node) -> None:
    device = bluez.add_device("hci0", PHONE1)
    await _write(bluez, node, device, PACKET)
    peer = bitchat_peer_id(PHONE1)
    await node.sink.wait_for("link_up", peer, 1, "link up")
    bluez.devices[device].set_connected(False)
    assert await node.sink.wait_for("link_down", peer, 1, "down") == ["disconnected"]
    with pytest.raises(Broken):
        await node.bitchat.send(peer, b"x")


async def test_reading_the_characteristic_says_nothing(bluez: FakeBlueZ, node: Node) -> None:
    assert bluez.bus is not None
    reply = await bluez.bus.call(
        Message(
            destination=node.owner,
            path=BITCHAT_CHAR_PATH,
            interface="org.bluez.GattCharacteristic1",
            member="ReadValue",
            signature="a{sv}",
            body=[{}],
        )
    )
    assert reply is not None
    assert reply.message_type == MessageType.METHOD_RETURN
    assert reply.body == [b""]


async def test_bitchat_app_and_node_links_share_the_slots_and_none_preempts(
    bluez: FakeBlueZ,
) -> None:
    node = await _start(bluez, max_links=3)  # one slot reserved for each service
    try:
        phones = [bluez.add_device("hci0", a) for a in (PHONE1, PHONE2)]
        assert await _write(bluez, node, phones[0], PACKET) is None
        await node.sink.wait_for("link_up", bitchat_peer_id(PHONE1), 1, "bitchat link")
        # the other two slots are the app's and our mesh's reserves: a second phone is refused
        assert await _write(bluez, node, phones[1], PACKET) == REFUSED_ERROR
        await eventually(lambda: bluez.devices[phones[1]].disconnects == 1)
        # an app phone still links in its reserve
        app_phone = bluez.add_device("hci0", PHONE3)
        assert await bluez.write_request(node.owner, APP_RX_PATH, app_phone, b"a", 517) is None
        await node.app_sink.wait_for("link_up", app_peer_id(PHONE3), 1, "app link")
        # and a node in ours; the bitchat link was never taken down for them
        central = bluez.add_device("hci0", PHONE4)
        hello = encode_link_frame(Intro(LinkKind.HELLO, b"\x01\x02\x03", b"\x00\x00\x00\x01", 244))
        await bluez.write(node.owner, RX_PATH, central, hello, 517)
        await node.ble_sink.wait_for("link_up", peer_id(b"\x00\x00\x00\x01"), 1, "node link")
        assert node.sink.of("link_down", bitchat_peer_id(PHONE1)) == []
        assert bluez.devices[phones[0]].disconnects == 0
    finally:
        await node.ble.aclose()


async def test_closing_ends_the_bitchat_links_without_upcalls(bluez: FakeBlueZ) -> None:
    node = await _start(bluez)
    device = bluez.add_device("hci0", PHONE1)
    await _write(bluez, node, device, PACKET)
    peer = bitchat_peer_id(PHONE1)
    await node.sink.wait_for("link_up", peer, 1, "link up")
    heard = len(node.sink.calls)
    await node.ble.aclose()
    await node.bitchat.aclose()
    assert len(node.sink.calls) == heard
    assert bluez.devices[device].disconnects == 1
    with pytest.raises(Closed):
        await node.bitchat.send(peer, b"x")
    assert [c.body for c in bluez.calls_to("UnregisterApplication")] == [[APP_PATH]]
    assert sorted(c.body[0] for c in bluez.calls_to("UnregisterAdvertisement")) == sorted(
        [ADVERT_PATH, APP_ADVERT_PATH, BITCHAT_ADVERT_PATH]
    )


async def test_with_the_app_off_bitchat_runs_beside_ours_alone(bluez: FakeBlueZ) -> None:
    config = BleConfig(adapter="hci0", bus_address=bluez.address)
    services = ble_transports(config, rng=random.Random(5), app=False)
    assert services.app is None
    assert services.bitchat is not None
    await services.bitchat.start(RecordingSink())
    await services.mesh.start(RecordingSink())
    try:
        assert set(bluez.advertisements) == {ADVERT_PATH, BITCHAT_ADVERT_PATH}
    finally:
        await services.mesh.aclose()


async def test_the_bitchat_transport_needs_its_radio() -> None:
    with pytest.raises(RuntimeError, match="bind the bitchat transport"):
        await BitchatBleTransport("hci0").start(RecordingSink())


def test_peer_ids_do_not_collide_with_the_apps_or_our_nodes() -> None:
    assert bitchat_peer_id(PHONE1) == PeerId("bitchat:" + PHONE1)
    assert bitchat_peer_id(PHONE1) != app_peer_id(PHONE1)
    assert bitchat_peer_id(PHONE1) != peer_id(bytes(4))


async def test_a_junk_writing_phone_is_cut_and_backed_off(bluez: FakeBlueZ, node: Node) -> None:
    device = bluez.add_device("hci0", PHONE1)
    peer = bitchat_peer_id(PHONE1)
    await _write(bluez, node, device, PACKET)
    await node.sink.wait_for("link_up", peer, 1, "link up")
    strikes = EvictionParams().strikes
    for _ in range(strikes):
        assert await _write(bluez, node, device, bytes(600)) == REFUSED_ERROR
    assert await node.sink.wait_for("link_down", peer, 1, "cut") == ["evicted: abuse"]
    await eventually(lambda: bluez.devices[device].disconnects == 1)
    # back at once: its next packet, however proper, is refused and the phone cut again
    bluez.devices[device].set_connected(True)
    assert await _write(bluez, node, device, PACKET) == REFUSED_ERROR
    await eventually(lambda: bluez.devices[device].disconnects == 2)
    assert node.sink.of("link_up", peer) == [508]
    assert node.sink.of("frame", peer) == [PACKET]


async def test_quiet_phones_give_a_slot_to_a_new_one(bluez: FakeBlueZ) -> None:
    now = [1000.0]
    node = await _start(bluez, clock=lambda: now[0])
    try:
        # bitchat alone may hold two of four slots (one each is kept for nodes and app phones)
        first, second = bluez.add_device("hci0", PHONE1), bluez.add_device("hci0", PHONE2)
        await _write(bluez, node, first, PACKET)
        await _write(bluez, node, second, PACKET)
        third = bluez.add_device("hci0", PHONE3)
        assert await _write(bluez, node, third, PACKET) == REFUSED_ERROR  # no slot free
        await eventually(lambda: bluez.devices[third].disconnects == 1)
        # Each relayed a packet: they keep their slots while quiet for relayer_idle_s.
        now[0] += EvictionParams().relayer_idle_s - 1
        await _write(bluez, node, second, PACKET[::-1])
        now[0] += 1
        bluez.devices[third].set_connected(True)
        assert await _write(bluez, node, third, PACKET) is None
        p1, p2, p3 = (bitchat_peer_id(p) for p in (PHONE1, PHONE2, PHONE3))
        await node.sink.wait_for("frame", p3, 1, "the newcomer's packet")
        assert node.sink.of("link_down", p1) == ["evicted: room"]
        assert node.sink.of("link_down", p2) == []
        await eventually(lambda: bluez.devices[first].disconnects == 1)
    finally:
        await node.ble.aclose()
