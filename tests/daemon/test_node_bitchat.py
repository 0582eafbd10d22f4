"""A node with `[bitchat]`: two scripted bitchat phones out of each other's range chat in public
through the node's bitchat service, their signatures valid over the forwarded bytes; the node
announces its own bitchat identity (kept in the spool across restarts); the figures show on the
status board and /metrics; `enabled = false` leaves bitchat's phones alone."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from pigeon.bitchat import packet as wire
from pigeon.bitchat.courier_agent import COURIER_ACK_CAPABILITY, read_payload
from pigeon.bitchat.courier_wire import (
    CourierEnvelope,
    decode_envelope,
    encode_envelope,
    epoch_day,
    recipient_tag,
)
from pigeon.bitchat.identity import peer_id_for
from pigeon.config import (
    BitchatSection,
    ButtonsSection,
    DisplaySection,
    NodeConfig,
    NodeSection,
    RadioSection,
)
from pigeon.daemon import hardware
from pigeon.daemon.node import Node, NodeEnvironment
from pigeon.daemon.sdnotify import Notifier
from pigeon.sim.bitchat_phone import BITCHAT_SERVICE, PHONE_FRAME_LIMIT, BitchatPhone
from pigeon.transport.ble.app import AppBleTransport
from pigeon.transport.ble.bitchat import BitchatBleTransport
from pigeon.transport.ble.transport import BleTransport
from pigeon.transport.sim import RadioParams, SimMedium
from pigeon.ui.oled import CourierLine
from pigeon.ui.web.metrics import render_metrics

from .conftest import wait_until

NODE_POSITION = (40.0, 0.0)  # range 50 m: both phones reach the node, not each other


def _node(data_dir: Path, medium: SimMedium, section: BitchatSection) -> Node:
    config = NodeConfig(
        node=NodeSection(name="pigeon-bitchat-test", data_dir=str(data_dir)),
        radio=RadioSection(kind="sim"),
        display=DisplaySection(kind="png"),
        buttons=ButtonsSection(kind="none"),
        bitchat=section,
    )
    return Node(
        config, NodeEnvironment(medium, NODE_POSITION, Notifier({}), selftest=False, web=False)
    )


async def _run(
    node: Node, medium: SimMedium, phones: list[BitchatPhone], body: Callable[[], Awaitable[None]]
) -> None:
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        run = group.create_task(node.run(stop))
        await wait_until(node.ready.is_set)
        for x, phone in zip((0.0, 80.0), phones, strict=False):
            transport = medium.transport(
                phone.nickname, x, 0.0, service=BITCHAT_SERVICE, frame_limit=PHONE_FRAME_LIMIT
            )
            await phone.start(transport)
        try:
            await body()
        finally:
            for phone in phones:
                await phone.aclose()
            stop.set()
    assert run.result() == 0


async def test_two_phones_chat_through_the_node_and_it_announces_itself(tmp_path: Path) -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(5))
    node = _node(tmp_path / "node", medium, BitchatSection())
    anna, ben = BitchatPhone("anna", random.Random(1)), BitchatPhone("ben", random.Random(2))

    async def body() -> None:
        await wait_until(lambda: node.board.status().bitchat.peers == 2, 10.0)
        for phone in (anna, ben):  # phones announce again from time to time: now both hear it
            await phone.announce()
        await wait_until(lambda: ben.chat.nickname_of(anna.identity.peer_id) == "anna", 10.0)
        await wait_until(lambda: anna.chat.nickname_of(ben.identity.peer_id) == "ben", 10.0)
        sent = await anna.say("hello from the park")
        (heard,) = await ben.wait_for_heard(1, 10.0)
        assert (heard.nickname, heard.text, heard.sender) == (
            "anna",
            "hello from the park",
            anna.identity.peer_id,
        )
        forwarded = next(p for p in ben.received if wire.parse(p).type == wire.MESSAGE)
        assert forwarded[:2] + forwarded[3:] == sent[:2] + sent[3:]  # only the TTL changed
        await ben.say("hi anna")
        assert [m.text for m in await anna.wait_for_heard(1, 10.0)] == ["hi anna"]
        node_id = node.bitchat_driver.identity.peer_id if node.bitchat_driver else b""
        assert node_id == peer_id_for(node.bitchat_driver.identity.noise_public)  # type: ignore[union-attr]
        assert anna.chat.nickname_of(node_id) == "pigeon-bitchat-test"  # its signed announce
        status = node.board.status().bitchat
        assert status.relayed >= 2
        assert status.public_heard == 2
        metrics = render_metrics(node.board.status())
        assert "pigeon_node_bitchat_peers 2\n" in metrics
        assert "bitchat phones" in node.board.summary()

    await _run(node, medium, [anna, ben], body)
    first = node.bitchat_driver.identity if node.bitchat_driver else None
    medium = SimMedium(RadioParams(), random.Random(6))
    again = _node(tmp_path / "node", medium, BitchatSection())

    async def same_identity() -> None:
        assert again.bitchat_driver is not None
        assert again.bitchat_driver.identity == first  # kept in the spool

    await _run(again, medium, [], same_identity)


async def test_with_bitchat_off_no_phone_links(tmp_path: Path) -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(5))
    node = _node(tmp_path / "node", medium, BitchatSection(enabled=False))
    phone = BitchatPhone("anna", random.Random(1))

    async def body() -> None:
        await asyncio.sleep(0.5)
        assert phone.links == []
        assert "bitchat" not in [part.name for part in node.parts()]
        assert node.board.status().bitchat.enabled is False
        assert "bitchat" not in node.board.summary()

    await _run(node, medium, [phone], body)


def test_on_ble_bitchats_links_ride_the_radio_part_on_one_adapter(tmp_path: Path) -> None:
    config = NodeConfig(
        node=NodeSection(name="pigeon-bitchat-test", data_dir=str(tmp_path / "node")),
        radio=RadioSection(kind="ble"),
        display=DisplaySection(kind="png"),
        buttons=ButtonsSection(kind="none"),
        bitchat=BitchatSection(),
    )
    node = Node(config, NodeEnvironment(None, NODE_POSITION, Notifier({}), selftest=False))
    node._build()  # what `run` does first; the radio itself needs BlueZ (the VM tier runs it)
    try:
        names = [part.name for part in node.parts()]
    finally:
        node._flush()
    assert "radio" in names
    assert "bitchat" not in names  # the radio part runs it: neither outlives the other
    assert "app-mesh" not in names
    assert "bitchat radio" not in node.board.missing
    assert node.bitchat_driver is not None

    radio = hardware.ble_radio_factory(RadioSection(kind="ble"), app=True, bitchat=True)()
    assert isinstance(radio.mesh, BleTransport)
    assert isinstance(radio.bitchat, BitchatBleTransport)
    assert isinstance(radio.app, AppBleTransport)
    assert radio.bitchat.service_uuid == "f47b5e2d-4a9e-4c5a-9b3f-8e1d2c3a4b5c"
    alone = hardware.ble_radio_factory(RadioSection(kind="ble"), app=False, bitchat=True)()
    assert alone.app is None
    assert isinstance(alone.bitchat, BitchatBleTransport)


def _sealed_for(recipient: BitchatPhone, now: float) -> bytes:
    """An envelope for `recipient` whose bytes stand in for a Noise X seal (opaque to couriers)."""
    tag = recipient_tag(recipient.identity.noise_public, epoch_day(now))
    return encode_envelope(CourierEnvelope(tag, int((now + 3600) * 1000), b"\x8c\x17" * 90))


def _courier_packets(phone: BitchatPhone, kind: int) -> list[bytes]:
    return [p for p in phone.received if wire.parse(p).type == kind]


async def test_the_node_carries_a_deposit_across_a_restart_to_its_recipient(
    tmp_path: Path,
) -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(5))
    node = _node(tmp_path / "node", medium, BitchatSection())
    anna = BitchatPhone("anna", random.Random(1), capabilities=COURIER_ACK_CAPABILITY)
    ben = BitchatPhone("ben", random.Random(2))
    envelope = _sealed_for(ben, time.time())

    async def deposit() -> None:
        assert node.bitchat_driver is not None
        node_id = node.bitchat_driver.identity.peer_id
        await wait_until(lambda: anna.chat.nickname_of(node_id) is not None, 10.0)
        await anna.announce()  # the node learns anna's keys before her deposit
        await wait_until(lambda: node.board.status().bitchat.peers == 1, 10.0)
        await anna.deposit(node_id, envelope)
        await wait_until(lambda: _courier_packets(anna, wire.COURIER_SPRAY_ACK) != [], 10.0)
        courier = node.board.status().bitchat.courier
        assert courier is not None
        assert (courier.held, courier.accepted) == (1, 1)
        assert "pigeon_node_bitchat_courier_held 1\n" in render_metrics(node.board.status())
        view = node.board.view_state(time.monotonic())
        assert view.bitchat_courier == CourierLine(held=1)

    await _run(node, medium, [anna], deposit)  # anna leaves; the node stops
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(6))
    node = _node(tmp_path / "node", medium, BitchatSection())

    async def hand_over() -> None:
        await wait_until(lambda: _courier_packets(ben, wire.COURIER_ENVELOPE) != [], 10.0)
        [packet] = _courier_packets(ben, wire.COURIER_ENVELOPE)
        view = wire.parse(packet)
        assert view.recipient == ben.identity.peer_id
        assert encode_envelope(decode_envelope(read_payload(packet, view))) == envelope
        await wait_until(lambda: node.board.status().bitchat.courier.held == 0, 10.0)  # type: ignore[union-attr]
        view = node.board.view_state(time.monotonic())
        assert view.bitchat_courier == CourierLine(held=0, handed_over=1)

    await _run(node, medium, [ben], hand_over)


async def test_with_the_courier_off_deposits_are_not_taken(tmp_path: Path) -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(5))
    node = _node(tmp_path / "node", medium, BitchatSection(courier=False))
    anna = BitchatPhone("anna", random.Random(1), capabilities=COURIER_ACK_CAPABILITY)
    ben = BitchatPhone("ben", random.Random(2))

    async def body() -> None:
        assert node.bitchat_driver is not None
        assert node.board.status().bitchat.courier is None
        node_id = node.bitchat_driver.identity.peer_id
        await wait_until(lambda: node.board.status().bitchat.peers == 1, 10.0)
        await anna.deposit(node_id, _sealed_for(ben, time.time()))
        await asyncio.sleep(0.5)
        assert _courier_packets(anna, wire.COURIER_SPRAY_ACK) == []
        assert "pigeon_node_bitchat_courier_enabled 0\n" in render_metrics(node.board.status())

    await _run(node, medium, [anna], body)
