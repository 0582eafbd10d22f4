"""BleTransport's D-Bus side against a private dbus-daemon and a fake bluetoothd.

The fake plays the radio: it calls our RX characteristic's WriteValue the way bluetoothd does
for a central's write (with the `device` and `mtu` options) and taps the PropertiesChanged
signals our TX characteristic emits. bleak's scanner runs against the same fake and finds
nothing. The links neighbours dial are exercised end to end; links we dial need a radio and
are covered by the VM tier (tests/bluez).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from pigeon.transport.base import Broken, Closed, PeerId
from pigeon.transport.ble.errors import AdapterNotFound
from pigeon.transport.ble.gatt import (
    MANUFACTURER_ID,
    RX_UUID,
    SERVICE_UUID,
    TX_UUID,
    Bye,
    ByeReason,
    Data,
    Intro,
    LinkKind,
    decode_link_frame,
    encode_link_frame,
)
from pigeon.transport.ble.peripheral import ADVERT_PATH, APP_PATH, RX_PATH, TX_PATH
from pigeon.transport.ble.policy import patience_s
from pigeon.transport.ble.transport import (
    DIAL_PATIENCE_S,
    DIAL_PATIENCE_SPREAD_S,
    BleConfig,
    BleTransport,
    peer_id,
)
from pigeon.transport.conformance import RecordingSink
from tests.transport.ble.fake_bluez import FakeAdapter, FakeBlueZ, NotifyTap, eventually

CENTRAL_ID = bytes.fromhex("00000001")  # below any node identifier these seeds draw


@dataclass
class Node:
    transport: BleTransport
    sink: RecordingSink
    tap: NotifyTap
    owner: str


@pytest.fixture(autouse=True)
def _bleak_on_the_private_bus(bus_address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_address)


async def _start(bluez: FakeBlueZ, max_links: int = 4) -> Node:
    transport = BleTransport(
        BleConfig(adapter="hci0", max_links=max_links, bus_address=bluez.address),
        rng=random.Random(5),
    )
    sink = RecordingSink()
    await transport.start(sink)
    owner = transport.adapter.bus.unique_name
    assert bluez.bus is not None
    tap = await NotifyTap.attach(bluez.bus, owner, TX_PATH)
    return Node(transport, sink, tap, owner)


@pytest.fixture
async def node(bluez: FakeBlueZ) -> AsyncIterator[Node]:
    started = await _start(bluez)
    yield started
    await started.transport.aclose()


async def _hello(
    bluez: FakeBlueZ,
    node: Node,
    device: str,
    tag: bytes,
    ident: bytes = CENTRAL_ID,
    mtu: int = 517,
    limit: int = 244,
) -> None:
    hello = encode_link_frame(Intro(LinkKind.HELLO, tag, ident, limit))
    await bluez.write(node.owner, RX_PATH, device, hello, mtu)


async def test_registers_gatt_application_and_advertisement(bluez: FakeBlueZ, node: Node) -> None:
    (register_app,) = bluez.calls_to("RegisterApplication")
    assert (register_app.path, register_app.interface) == (
        "/org/bluez/hci0",
        "org.bluez.GattManager1",
    )
    assert register_app.signature == "oa{sv}"
    assert register_app.body == [APP_PATH, {}]
    objects = bluez.applications[APP_PATH].objects
    service = objects[APP_PATH + "/service0"]["org.bluez.GattService1"]
    assert service["UUID"].value == SERVICE_UUID
    assert service["Primary"].value is True
    chars = {
        path: ifaces["org.bluez.GattCharacteristic1"]
        for path, ifaces in objects.items()
        if "org.bluez.GattCharacteristic1" in ifaces
    }
    by_uuid = {c["UUID"].value: c for c in chars.values()}
    assert by_uuid[RX_UUID]["Flags"].value == ["write-without-response"]
    assert by_uuid[TX_UUID]["Flags"].value == ["notify"]
    assert {c["Service"].value for c in chars.values()} == {APP_PATH + "/service0"}

    (register_ad,) = bluez.calls_to("RegisterAdvertisement")
    assert register_ad.interface == "org.bluez.LEAdvertisingManager1"
    assert register_ad.signature == "oa{sv}"
    advert = bluez.advertisements[ADVERT_PATH].objects
    assert advert["Type"].value == "peripheral"
    assert advert["ServiceUUIDs"].value == [SERVICE_UUID]
    assert advert["ManufacturerData"].signature == "a{qv}"
    identifier = advert["ManufacturerData"].value[MANUFACTURER_ID].value
    assert identifier == node.transport.identifier()
    await eventually(lambda: bluez.adapters["hci0"].discovering)  # the central scans, via bleak


async def test_a_central_links_up_and_frames_flow_both_ways(bluez: FakeBlueZ, node: Node) -> None:
    device = bluez.add_device("hci0", "00:AA:01:05:00:05")
    await _hello(bluez, node, device, b"\x01\x02\x03", mtu=185)
    peer = peer_id(CENTRAL_ID)
    (limit,) = await node.sink.wait_for("link_up", peer, 1, "link up")
    assert limit == 176  # MTU 185: 180-byte notifications, minus the 4-byte link header
    (welcome,) = await node.tap.wait(1)
    assert decode_link_frame(welcome) == Intro(
        LinkKind.WELCOME, b"\x01\x02\x03", node.transport.identifier(), 176
    )
    assert node.transport.frame_limit(peer) == 176
    (state,) = node.transport.links()
    assert (state.role, state.address, state.rssi) == ("peripheral", "00:AA:01:05:00:05", -60)

    for frame in (b"x", bytes(176)):
        await bluez.write(
            node.owner, RX_PATH, device, encode_link_frame(Data(b"\x01\x02\x03", frame)), 185
        )
    assert await node.sink.wait_for("frame", peer, 2, "frames") == [b"x", bytes(176)]

    await node.transport.send(peer, b"to the central")
    values = await node.tap.wait(2)
    assert decode_link_frame(values[1]) == Data(b"\x01\x02\x03", b"to the central")
    with pytest.raises(ValueError, match=r"outside 1\.\.176"):
        await node.transport.send(peer, bytes(177))


async def test_writes_outside_a_link_are_dropped(bluez: FakeBlueZ, node: Node) -> None:
    device = bluez.add_device("hci0", "00:AA:01:05:00:05")
    stranger = bluez.add_device("hci0", "00:AA:01:06:00:06")
    await _hello(bluez, node, device, b"\x01\x02\x03")
    peer = peer_id(CENTRAL_ID)
    await node.sink.wait_for("link_up", peer, 1, "link up")
    await bluez.write(
        node.owner, RX_PATH, stranger, encode_link_frame(Data(b"\x01\x02\x03", b"a")), 517
    )
    await bluez.write(
        node.owner, RX_PATH, device, encode_link_frame(Data(b"\x09\x09\x09", b"b")), 517
    )
    await bluez.write(node.owner, RX_PATH, device, b"\x20garbage", 517)
    await bluez.write(
        node.owner, RX_PATH, device, encode_link_frame(Data(b"\x01\x02\x03", b"c")), 517
    )
    assert await node.sink.wait_for("frame", peer, 1, "frames") == [b"c"]
    assert len(node.sink.of("frame", peer)) == 1


async def test_disconnect_is_link_down_then_send_raises_broken(
    bluez: FakeBlueZ, node: Node
) -> None:
    device = bluez.add_device("hci0", "00:AA:01:05:00:05")
    await _hello(bluez, node, device, b"\x01\x02\x03")
    peer = peer_id(CENTRAL_ID)
    await node.sink.wait_for("link_up", peer, 1, "link up")
    bluez.devices[device].set_connected(False)
    assert await node.sink.wait_for("link_down", peer, 1, "link down") == ["disconnected"]
    with pytest.raises(Broken):
        await node.transport.send(peer, b"x")
    with pytest.raises(Broken):
        node.transport.frame_limit(peer)


async def test_bye_from_the_central_is_link_down(bluez: FakeBlueZ, node: Node) -> None:
    device = bluez.add_device("hci0", "00:AA:01:05:00:05")
    await _hello(bluez, node, device, b"\x01\x02\x03")
    peer = peer_id(CENTRAL_ID)
    await node.sink.wait_for("link_up", peer, 1, "link up")
    bye = encode_link_frame(Bye(b"\x01\x02\x03", ByeReason.CLOSING))
    await bluez.write(node.owner, RX_PATH, device, bye, 517)
    assert await node.sink.wait_for("link_down", peer, 1, "link down") == ["peer said bye"]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("tag in use", ByeReason.TAG_IN_USE),
        ("tiny mtu", ByeReason.TOO_SMALL),
        ("same node twice", ByeReason.DUPLICATE),
    ],
)
async def test_refusals_say_why(bluez: FakeBlueZ, node: Node, case: str, reason: ByeReason) -> None:
    first = bluez.add_device("hci0", "00:AA:01:05:00:05")
    second = bluez.add_device("hci0", "00:AA:01:06:00:06")
    await _hello(bluez, node, first, b"\x01\x02\x03")
    await node.sink.wait_for("link_up", peer_id(CENTRAL_ID), 1, "link up")
    if case == "tag in use":
        await _hello(bluez, node, second, b"\x01\x02\x03", ident=b"\x00\x00\x00\x02")
    elif case == "tiny mtu":
        await _hello(bluez, node, second, b"\x04\x05\x06", ident=b"\x00\x00\x00\x02", mtu=23)
    else:
        await _hello(bluez, node, second, b"\x04\x05\x06")
    values = await node.tap.wait(2)
    tag = b"\x01\x02\x03" if case == "tag in use" else b"\x04\x05\x06"
    assert decode_link_frame(values[1]) == Bye(tag, reason)
    assert node.sink.of("link_up", peer_id(b"\x00\x00\x00\x02")) == []
    assert len(node.transport.links()) == 1


async def test_link_limit(bluez: FakeBlueZ) -> None:
    node = await _start(bluez, max_links=1)
    try:
        first = bluez.add_device("hci0", "00:AA:01:05:00:05")
        second = bluez.add_device("hci0", "00:AA:01:06:00:06")
        await _hello(bluez, node, first, b"\x01\x02\x03")
        await _hello(bluez, node, second, b"\x04\x05\x06", ident=b"\x00\x00\x00\x02")
        values = await node.tap.wait(2)
        assert decode_link_frame(values[1]) == Bye(b"\x04\x05\x06", ByeReason.NO_ROOM)
    finally:
        await node.transport.aclose()


async def test_bluetoothd_restart_drops_links_and_registers_again(
    bluez: FakeBlueZ, node: Node
) -> None:
    device = bluez.add_device("hci0", "00:AA:01:05:00:05")
    await _hello(bluez, node, device, b"\x01\x02\x03")
    peer = peer_id(CENTRAL_ID)
    await node.sink.wait_for("link_up", peer, 1, "link up")
    bluez.stop()
    assert await node.sink.wait_for("link_down", peer, 1, "link down") == ["bluetoothd stopped"]
    again = FakeBlueZ(bluez.address)
    await again.start({"hci0": FakeAdapter("00:AA:01:00:00:00")})
    try:
        await eventually(
            lambda: ADVERT_PATH in again.advertisements and APP_PATH in again.applications
        )
        assert again.adapters["hci0"].powered
    finally:
        await node.transport.aclose()
        again.stop()


async def test_aclose_says_bye_disconnects_and_unregisters(bluez: FakeBlueZ) -> None:
    node = await _start(bluez)
    device = bluez.add_device("hci0", "00:AA:01:05:00:05")
    await _hello(bluez, node, device, b"\x01\x02\x03")
    peer = peer_id(CENTRAL_ID)
    await node.sink.wait_for("link_up", peer, 1, "link up")
    heard = len(node.sink.calls)
    await node.transport.aclose()
    await node.transport.aclose()
    assert len(node.sink.calls) == heard  # no upcalls from aclose
    assert bluez.devices[device].disconnects == 1
    values = await node.tap.wait(2)
    assert decode_link_frame(values[-1]) == Bye(b"\x01\x02\x03", ByeReason.CLOSING)
    assert [c.body for c in bluez.calls_to("UnregisterAdvertisement")] == [[ADVERT_PATH]]
    assert [c.body for c in bluez.calls_to("UnregisterApplication")] == [[APP_PATH]]
    with pytest.raises(Closed):
        await node.transport.send(peer, b"x")


async def test_aclose_leaves_the_hanging_up_to_a_central_that_heard_bye(
    bluez: FakeBlueZ,
) -> None:
    # The dialer releases its notifications before it disconnects (hangup.py); cutting the
    # connection from here instead is what crashed BlueZ 5.66's GATT client.
    node = await _start(bluez)
    device = bluez.add_device("hci0", "00:AA:01:05:00:05")
    await _hello(bluez, node, device, b"\x01\x02\x03")
    await node.sink.wait_for("link_up", peer_id(CENTRAL_ID), 1, "link up")
    welcomed = len(await node.tap.wait(1))

    async def central_hangs_up_on_bye() -> None:
        values = await node.tap.wait(welcomed + 1)
        assert decode_link_frame(values[-1]) == Bye(b"\x01\x02\x03", ByeReason.CLOSING)
        bluez.devices[device].set_connected(False)

    hanging_up = asyncio.create_task(central_hangs_up_on_bye())
    await node.transport.aclose()
    await hanging_up
    assert bluez.devices[device].disconnects == 0
    assert bluez.db_changes[-1] == ("UnregisterApplication", [])


async def test_registers_only_after_connections_left_over_are_gone(bluez: FakeBlueZ) -> None:
    # A connection a previous run of the node left behind, slow to go after Disconnect.
    stray = bluez.add_device("hci0", "00:AA:01:07:00:07", disconnect_s=0.3)
    node = await _start(bluez)
    try:
        assert bluez.devices[stray].disconnects == 1
        assert bluez.db_changes == [("RegisterApplication", [])]
    finally:
        await node.transport.aclose()


async def test_after_a_bluetoothd_restart_registers_once_survivors_are_gone(
    bluez: FakeBlueZ, node: Node
) -> None:
    bluez.stop()
    again = FakeBlueZ(bluez.address)
    await again.start({"hci0": FakeAdapter("00:AA:01:00:00:00", powered=True)})
    # The kernel kept this LE connection through the restart; the new bluetoothd reports it.
    survivor = again.add_device("hci0", "00:AA:01:05:00:05", disconnect_s=0.3)
    try:
        await eventually(lambda: APP_PATH in again.applications, within_s=10)
        assert again.devices[survivor].disconnects == 1
        assert again.db_changes == [("RegisterApplication", [])]
        # The controller starts over too (kernel discovery and connections the dead daemon
        # left): powered off, then on, before anything is registered.
        members = [(c.member, c.body[1:]) for c in again.calls if c.member == "Set"]
        powered = [body[1].value for member, body in members if body[0] == "Powered"]
        assert powered == [False, True]
        sets = [i for i, c in enumerate(again.calls) if c.member == "Set"]
        (register,) = [i for i, c in enumerate(again.calls) if c.member == "RegisterApplication"]
        assert max(sets) < register
    finally:
        await node.transport.aclose()
        again.stop()


async def test_aclose_unregisters_only_once_nothing_is_connected(bluez: FakeBlueZ) -> None:
    node = await _start(bluez)
    linked = bluez.add_device("hci0", "00:AA:01:05:00:05", disconnect_s=0.2)
    await _hello(bluez, node, linked, b"\x01\x02\x03")
    await node.sink.wait_for("link_up", peer_id(CENTRAL_ID), 1, "link up")
    # A central that connected but has not introduced itself yet: no link, still connected.
    silent = bluez.add_device("hci0", "00:AA:01:06:00:06", disconnect_s=0.2)
    await node.transport.aclose()
    assert bluez.devices[silent].disconnects == 1
    assert bluez.db_changes[-1] == ("UnregisterApplication", [])
    members = [(c.path, c.member) for c in bluez.calls]
    withdrawn = members.index(("/org/bluez/hci0", "UnregisterAdvertisement"))
    assert withdrawn < members.index((linked, "Disconnect"))
    assert withdrawn < members.index((silent, "Disconnect"))


async def test_a_scan_cancelled_while_it_starts_is_still_stopped(bluez: FakeBlueZ) -> None:
    bluez.start_discovery_s = 0.5
    node = await _start(bluez)
    await eventually(lambda: bool(bluez.calls_to("StartDiscovery")))  # under way, unanswered
    await node.transport.aclose()
    # Otherwise bleak's bus keeps a session it cannot stop, and every later StartDiscovery on
    # the adapter from this process is answered InProgress.
    assert bluez.discovery_sessions["/org/bluez/hci0"] == set()


async def test_a_discovery_bluetoothd_kept_with_no_session_is_cleared(
    bluez: FakeBlueZ, node: Node
) -> None:
    await eventually(lambda: bluez.adapters["hci0"].discovering)
    before = len(_powered_sets(bluez))
    # bluetoothd 5.66 can keep reporting discovery with no session left (BlueZ issue 807).
    bluez.discovery_sessions["/org/bluez/hci0"].clear()
    await node.transport.clear_stale_discovery()
    assert not bluez.adapters["hci0"].discovering
    assert len(_powered_sets(bluez)) == before  # no power cycle: it made bluetoothd abort


async def test_a_discovery_that_ended_is_left_alone(bluez: FakeBlueZ, node: Node) -> None:
    await eventually(lambda: bluez.adapters["hci0"].discovering)
    bluez.adapters["hci0"].set_discovering(False)
    starts = len(bluez.calls_to("StartDiscovery"))
    await node.transport.clear_stale_discovery()
    assert len(bluez.calls_to("StartDiscovery")) == starts


def _powered_sets(bluez: FakeBlueZ) -> list[bool]:
    calls = [c for c in bluez.calls if c.member == "Set" and c.body[1] == "Powered"]
    return [bool(c.body[2].value) for c in calls]


async def test_after_an_adapter_power_cycle_it_advertises_and_scans_again(
    bluez: FakeBlueZ, node: Node
) -> None:
    await eventually(lambda: bluez.adapters["hci0"].discovering)
    bluez.power_off("hci0")  # bluetoothd keeps our application and advertisement meanwhile
    await eventually(lambda: bluez.adapters["hci0"].powered)  # the node powers it on again
    await eventually(lambda: bluez.adapters["hci0"].discovering)
    assert APP_PATH in bluez.applications
    assert ADVERT_PATH in bluez.advertisements
    advert = bluez.advertisements[ADVERT_PATH].objects
    assert advert["ManufacturerData"].value[MANUFACTURER_ID].value == node.transport.identifier()


async def test_start_fails_with_a_typed_error(bluez: FakeBlueZ) -> None:
    transport = BleTransport(BleConfig(adapter="hci9", bus_address=bluez.address))
    with pytest.raises(AdapterNotFound):
        await transport.start(RecordingSink())


async def test_unknown_peer_is_broken(node: Node) -> None:
    with pytest.raises(Broken):
        node.transport.frame_limit(PeerId("ble:ffffffff"))


async def test_whom_the_central_dials(bluez: FakeBlueZ) -> None:
    node = await _start(bluez, max_links=2)
    try:
        transport, own = node.transport, node.transport.identifier()
        higher = (int.from_bytes(own) + 1).to_bytes(4)
        lower = (int.from_bytes(own) - 1).to_bytes(4)
        assert transport.wants("00:AA:01:07:00:07", higher, waited_s=0.0)
        assert not transport.wants("00:AA:01:07:00:07", lower, waited_s=0.0)
        assert not transport.wants("00:AA:01:07:00:07", lower, waited_s=DIAL_PATIENCE_S - 0.1)
        waited = patience_s(own, lower, DIAL_PATIENCE_S, DIAL_PATIENCE_SPREAD_S)
        assert transport.wants("00:AA:01:07:00:07", lower, waited_s=waited)
        assert not transport.wants("00:AA:01:07:00:07", own, waited_s=99.0)
        # Connected to us at the LE level, its HELLO not here yet: no second connection.
        bluez.add_device("hci0", "00:AA:01:08:00:08")
        await eventually(lambda: any(n.connected for n in transport.adapter.neighbours().values()))
        assert not transport.wants("00:AA:01:08:00:08", higher, waited_s=0.0)
        device = bluez.add_device("hci0", "00:AA:01:05:00:05")
        await _hello(bluez, node, device, b"\x01\x02\x03")
        await node.sink.wait_for("link_up", peer_id(CENTRAL_ID), 1, "link up")
        assert transport.shares_connection("00:AA:01:05:00:05")
        assert not transport.shares_connection("00:AA:01:07:00:07")
        assert not transport.wants("00:AA:01:05:00:05", higher, waited_s=0.0)  # linked already
        assert not transport.wants("00:AA:01:07:00:07", CENTRAL_ID, waited_s=99.0)
        other = bluez.add_device("hci0", "00:AA:01:06:00:06")
        await _hello(bluez, node, other, b"\x04\x05\x06", ident=b"\x00\x00\x00\x02")
        await node.sink.wait_for("link_up", peer_id(b"\x00\x00\x00\x02"), 1, "link up")
        # Both links are silent yet: a node we dial may take a slot from either.
        assert transport.wants("00:AA:01:07:00:07", higher, waited_s=0.0)
        for tag, dev, ident in (
            (b"\x01\x02\x03", device, CENTRAL_ID),
            (b"\x04\x05\x06", other, b"\x00\x00\x00\x02"),
        ):
            await bluez.write(node.owner, RX_PATH, dev, encode_link_frame(Data(tag, b"hi")), 517)
            await node.sink.wait_for("frame", peer_id(ident), 1, "frame")
        assert not transport.wants("00:AA:01:07:00:07", higher, waited_s=0.0)  # no room
    finally:
        await node.transport.aclose()
