"""AppBleTransport's D-Bus side against a private dbus-daemon and a fake bluetoothd.

The fake plays the phones: it writes to the app's inbound characteristic with response the way
bluetoothd calls WriteValue (with the `device` and `mtu` options) and taps the notifications of
the app's outbound characteristic. Links we dial to phones need a radio: the VM tier
(tests/bluez) covers them.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from pigeon.transport.base import Broken, Closed, PeerId
from pigeon.transport.ble.app import AppBleTransport, app_peer_id
from pigeon.transport.ble.appgatt import (
    APP_LOCAL_NAME,
    APP_RX_UUID,
    APP_SERVICE_UUID,
    APP_TX_UUID,
)
from pigeon.transport.ble.appperipheral import (
    APP_ADVERT_PATH,
    APP_RX_PATH,
    APP_SERVICE_PATH,
    APP_TX_PATH,
)
from pigeon.transport.ble.gatt import SERVICE_UUID, Intro, LinkKind, encode_link_frame
from pigeon.transport.ble.gattobjects import REFUSED_ERROR
from pigeon.transport.ble.peripheral import ADVERT_PATH, APP_PATH, RX_PATH
from pigeon.transport.ble.transport import BleConfig, BleTransport, ble_transports, peer_id
from pigeon.transport.conformance import RecordingSink
from tests.transport.ble.fake_bluez import FakeBlueZ, NotifyTap, eventually

PHONE1, PHONE2, PHONE3 = "00:AA:01:05:00:05", "00:AA:01:06:00:06", "00:AA:01:07:00:07"


@dataclass
class Node:
    ble: BleTransport
    app: AppBleTransport
    ble_sink: RecordingSink
    sink: RecordingSink
    tap: NotifyTap
    owner: str


@pytest.fixture(autouse=True)
def _bleak_on_the_private_bus(bus_address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_address)


async def _start(bluez: FakeBlueZ, max_links: int = 4) -> Node:
    config = BleConfig(adapter="hci0", max_links=max_links, bus_address=bluez.address)
    services = ble_transports(config, rng=random.Random(5), bitchat=False)
    ble, app = services.mesh, services.app
    assert app is not None
    sink, ble_sink = RecordingSink(), RecordingSink()
    await app.start(sink)
    await ble.start(ble_sink)
    owner = ble.adapter.bus.unique_name
    assert bluez.bus is not None
    tap = await NotifyTap.attach(bluez.bus, owner, APP_TX_PATH)
    return Node(ble, app, ble_sink, sink, tap, owner)


@pytest.fixture
async def node(bluez: FakeBlueZ) -> AsyncIterator[Node]:
    started = await _start(bluez)
    yield started
    await started.ble.aclose()


async def _write(
    bluez: FakeBlueZ, node: Node, device: str, value: bytes, mtu: int = 517
) -> str | None:
    return await bluez.write_request(node.owner, APP_RX_PATH, device, value, mtu)


async def test_one_application_holds_both_services_and_two_adverts(
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
    assert services == {SERVICE_UUID, APP_SERVICE_UUID}
    chars = {
        ifaces["org.bluez.GattCharacteristic1"]["UUID"].value: ifaces[
            "org.bluez.GattCharacteristic1"
        ]
        for ifaces in objects.values()
        if "org.bluez.GattCharacteristic1" in ifaces
    }
    assert chars[APP_RX_UUID]["Flags"].value == ["write"]  # with response, as the app writes
    assert chars[APP_TX_UUID]["Flags"].value == ["notify"]
    assert chars[APP_RX_UUID]["Service"].value == APP_SERVICE_PATH
    assert set(bluez.advertisements) == {ADVERT_PATH, APP_ADVERT_PATH}
    advert = bluez.advertisements[APP_ADVERT_PATH].objects
    assert advert["ServiceUUIDs"].value == [APP_SERVICE_UUID]
    assert advert["LocalName"].value == APP_LOCAL_NAME
    assert advert["Type"].value == "peripheral"
    # the shared scanner looks for both services
    await eventually(lambda: bluez.adapters["hci0"].discovering)
    (filter_uuids,) = [bluez.adapters["hci0"].discovery_filter["UUIDs"].value]
    assert set(filter_uuids) == {SERVICE_UUID, APP_SERVICE_UUID}


async def test_a_phone_links_at_its_first_write_and_frames_flow_both_ways(
    bluez: FakeBlueZ, node: Node
) -> None:
    device = bluez.add_device("hci0", PHONE1)
    fragment = b"\x01\x00\x07\x00\x00\x00\x01" + bytes(503)  # 510 bytes: the app's largest
    assert await _write(bluez, node, device, fragment) is None
    peer = app_peer_id(PHONE1)
    assert await node.sink.wait_for("link_up", peer, 1, "link up") == [510]  # 514 capped
    assert await node.sink.wait_for("frame", peer, 1, "frame") == [fragment]
    assert node.app.links() == {peer: "peripheral"}
    await node.app.send(peer, b"\x01\x00\x09\x00\x00\x00\x01hello")
    assert await node.tap.wait(1) == [b"\x01\x00\x09\x00\x00\x00\x01hello"]
    with pytest.raises(ValueError, match=r"outside 1\.\.510"):
        await node.app.send(peer, bytes(511))
    assert node.ble_sink.calls == []  # nothing of the app reaches our mesh's transport


async def test_a_link_under_157_bytes_is_refused_and_disconnected(
    bluez: FakeBlueZ, node: Node
) -> None:
    device = bluez.add_device("hci0", PHONE1)
    # MTU 161: the node's notifications carry 156 bytes (MTU - 5, gatt.peripheral_value_length)
    assert await _write(bluez, node, device, bytes(100), mtu=161) == REFUSED_ERROR
    await eventually(lambda: bluez.devices[device].disconnects == 1)
    assert node.sink.calls == []
    other = bluez.add_device("hci0", PHONE2)
    assert await _write(bluez, node, other, bytes(100), mtu=162) is None  # 157 bytes
    assert await node.sink.wait_for("link_up", app_peer_id(PHONE2), 1, "link up") == [157]


async def test_empty_and_oversized_writes_are_refused(bluez: FakeBlueZ, node: Node) -> None:
    device = bluez.add_device("hci0", PHONE1)
    assert await _write(bluez, node, device, b"") == REFUSED_ERROR
    assert await _write(bluez, node, device, bytes(511)) == REFUSED_ERROR
    assert node.sink.calls == []
    assert bluez.devices[device].disconnects == 0  # a bad write is no reason to cut the phone


async def test_subscribers_share_one_notification_and_the_smallest_limit(
    bluez: FakeBlueZ, node: Node
) -> None:
    first, second = bluez.add_device("hci0", PHONE1), bluez.add_device("hci0", PHONE2)
    p1, p2 = app_peer_id(PHONE1), app_peer_id(PHONE2)
    await _write(bluez, node, first, b"a", mtu=517)
    await node.sink.wait_for("link_up", p1, 1, "link up")
    await _write(bluez, node, second, b"b", mtu=185)
    # every subscriber hears every notification: the smaller link sets the size for both
    assert await node.sink.wait_for("link_up", p1, 2, "p1 again") == [510, 180]
    assert node.sink.of("link_down", p1) == ["frame limit changed"]
    assert node.sink.of("link_up", p2) == [180]
    frames = [bytes([n]) * 180 for n in range(3)]
    for peer in (p1, p2):  # as the router floods one packet to two links
        for frame in frames:
            await node.app.send(peer, frame)
    await node.app.send(p2, frames[0])  # a deliberate resend goes out again
    assert await node.tap.wait(4) == [*frames, frames[0]]


async def test_a_disconnected_phone_is_link_down(bluez: FakeBlueZ, node: Node) -> None:
    device = bluez.add_device("hci0", PHONE1)
    await _write(bluez, node, device, b"a")
    peer = app_peer_id(PHONE1)
    await node.sink.wait_for("link_up", peer, 1, "link up")
    bluez.devices[device].set_connected(False)
    assert await node.sink.wait_for("link_down", peer, 1, "down") == ["disconnected"]
    with pytest.raises(Broken):
        await node.app.send(peer, b"x")


async def test_app_links_and_ours_share_the_slots(bluez: FakeBlueZ) -> None:
    node = await _start(bluez, max_links=2)  # one slot reserved for each service
    try:
        phones = [bluez.add_device("hci0", a) for a in (PHONE1, PHONE2)]
        assert await _write(bluez, node, phones[0], b"a") is None
        # the second slot is our mesh's reserve: a second phone is refused
        assert await _write(bluez, node, phones[1], b"b") == REFUSED_ERROR
        await eventually(lambda: bluez.devices[phones[1]].disconnects == 1)
        # and a node still links in it
        central = bluez.add_device("hci0", PHONE3)
        hello = encode_link_frame(Intro(LinkKind.HELLO, b"\x01\x02\x03", b"\x00\x00\x00\x01", 244))
        await bluez.write(node.owner, RX_PATH, central, hello, 517)
        await node.ble_sink.wait_for("link_up", peer_id(b"\x00\x00\x00\x01"), 1, "node link")
    finally:
        await node.ble.aclose()


async def test_closing_ends_the_app_links_without_upcalls(bluez: FakeBlueZ) -> None:
    node = await _start(bluez)
    device = bluez.add_device("hci0", PHONE1)
    await _write(bluez, node, device, b"a")
    peer = app_peer_id(PHONE1)
    await node.sink.wait_for("link_up", peer, 1, "link up")
    heard = len(node.sink.calls)
    await node.ble.aclose()
    await node.app.aclose()
    assert len(node.sink.calls) == heard
    assert bluez.devices[device].disconnects == 1
    with pytest.raises(Closed):
        await node.app.send(peer, b"x")
    assert [c.body for c in bluez.calls_to("UnregisterApplication")] == [[APP_PATH]]
    assert sorted(c.body[0] for c in bluez.calls_to("UnregisterAdvertisement")) == [
        ADVERT_PATH,
        APP_ADVERT_PATH,
    ]


async def test_the_app_transport_needs_its_radio() -> None:
    with pytest.raises(RuntimeError, match="bind"):
        await AppBleTransport("hci0").start(RecordingSink())


def test_peer_ids_do_not_collide_with_our_nodes() -> None:
    assert app_peer_id(PHONE1) != peer_id(bytes(4))
    assert app_peer_id(PHONE1) == PeerId("app:" + PHONE1)
