"""The relay bridge against a real `pigeon relay` process on loopback.

Two owners' nodes on separate simulated radios (never in range): A's first text for B (an Olm
pre-key message) is deposited in B's mailbox at the relay; B's bridge reads it, B's messenger
stores it, and only then is it acknowledged (the relay holds nothing afterwards). With both
owners verified and both cards carrying relay hints, the whole conversation follows over the
relay: every envelope and notice names its contact (`Messenger.recipient_of`).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pigeon.config import (
    ButtonsSection,
    DisplaySection,
    MessengerSection,
    NodeConfig,
    NodeSection,
    RadioSection,
    RelaysSection,
)
from pigeon.crypto.signing import SigningKey
from pigeon.daemon.node import Node, NodeEnvironment
from pigeon.daemon.relay_bridge import DepositTarget, MailboxOwner, RelayBridge
from pigeon.daemon.sdnotify import Notifier
from pigeon.mesh.packet import make_notice
from pigeon.relay.config import RelayConfig
from pigeon.relay.server import start_relay
from pigeon.transport.relay_client import RelayClient
from pigeon.transport.sim import RadioParams, SimMedium
from pigeon.ui.web.ports import RelayState

from ..relay.process import RelayProcess, launch_relay
from .conftest import free_port, wait_until


def relay_metric(relay: RelayProcess, name: str) -> int:
    with urllib.request.urlopen(f"{relay.http}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(rf"^\S*{name}\S* (\d+)", text, re.MULTILINE)
    assert match, text
    return int(match.group(1))


def node_config(tmp_path: Path, name: str, relays: RelaysSection, **messenger: bool) -> NodeConfig:
    return NodeConfig(
        node=NodeSection(name=name, data_dir=str(tmp_path / name)),
        radio=RadioSection(kind="sim"),
        display=DisplaySection(kind="none"),
        buttons=ButtonsSection(kind="none"),
        relays=relays,
        messenger=MessengerSection(**messenger),
    )


def on_radio(config: NodeConfig, medium: SimMedium) -> Node:
    env = NodeEnvironment(medium, (0.0, 0.0), Notifier({}), selftest=False, web=False)
    return Node(config, env)


def node(tmp_path: Path, name: str, relay_url: str) -> Node:
    config = node_config(tmp_path, name, RelaysSection(urls=(relay_url,)))
    return on_radio(config, SimMedium(RadioParams(), random.Random(1)))  # alone on its radio


def last(owner: Node, contact_id: str) -> tuple[str | None, str]:
    views = owner.messenger.conversation(contact_id)
    return (views[-1].text, views[-1].state) if views else (None, "")


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[RelayProcess]:
    running = await launch_relay(tmp_path / "relay-data", tmp_path / "relay.log")
    yield running
    running.process.terminate()
    await running.process.wait()


async def test_a_first_message_goes_through_the_relay(tmp_path: Path, relay: RelayProcess) -> None:
    a, b = node(tmp_path, "pigeon-a", relay.url), node(tmp_path, "pigeon-b", relay.url)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        runs = [group.create_task(n.run(stop)) for n in (a, b)]
        await wait_until(lambda: a.ready.is_set() and b.ready.is_set())
        await wait_until(lambda: not a.messenger.is_locked and not b.messenger.is_locked)
        await wait_until(
            lambda: (
                all(r.state is RelayState.CONNECTED for n in (a, b) for r in n.board.relays)
                and bool(a.board.relays and b.board.relays)
            )
        )
        b.messenger.set_profile("B", (relay.url,))  # B's card carries its signed relay hint
        contact = a.messenger.add_contact(b.messenger.own_card_text(), "B", time.time())
        a.messenger.mark_verified(contact.id, a.messenger.safety_number(contact.id), time.time())
        a.messenger.send_text(contact.id, "hello by relay", time.time())
        await wait_until(lambda: a.bridge.counters["deposited"] >= 1)
        # B read its mailbox, stored the envelope, then acknowledged it: the relay holds none.
        await wait_until(lambda: relay_metric(relay, "envelopes_deleted_total") >= 1)
        assert relay_metric(relay, "stored_envelopes") == 0
        # B's messenger read it: B has not added A, so it names no contact and is dropped
        # before any public-key work (a stranger's first message opens nothing).
        await wait_until(lambda: b.messenger.stats["unknown_sender"] >= 1)
        assert a.board.uplink().value == "up"
        stop.set()
    assert [task.result() for task in runs] == [0, 0]


async def test_two_owners_out_of_range_converse_through_the_relay_alone(
    tmp_path: Path, relay: RelayProcess
) -> None:
    a, b = node(tmp_path, "pigeon-a", relay.url), node(tmp_path, "pigeon-b", relay.url)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        runs = [group.create_task(n.run(stop)) for n in (a, b)]
        await wait_until(lambda: a.ready.is_set() and b.ready.is_set())
        await wait_until(lambda: not a.messenger.is_locked and not b.messenger.is_locked)
        a.messenger.set_profile("A", (relay.url,))
        b.messenger.set_profile("B", (relay.url,))
        b_at_a = a.messenger.add_contact(b.messenger.own_card_text(), "B", time.time()).id
        a_at_b = b.messenger.add_contact(a.messenger.own_card_text(), "A", time.time()).id
        for owner, contact_id in ((a, b_at_a), (b, a_at_b)):
            number = owner.messenger.safety_number(contact_id)
            owner.messenger.mark_verified(contact_id, number, time.time())

        a.messenger.send_text(b_at_a, "hello by relay", time.time())
        await wait_until(lambda: last(b, a_at_b) == ("hello by relay", "received"))
        await wait_until(lambda: last(a, b_at_a) == ("hello by relay", "delivered"))
        b.messenger.send_text(a_at_b, "and back", time.time())
        await wait_until(lambda: last(a, b_at_a) == ("and back", "received"))
        await wait_until(lambda: last(b, a_at_b) == ("and back", "delivered"))
        # Nothing went by radio: each node is alone on its own simulated medium.
        assert a.driver.router.neighbours() == []
        assert b.driver.router.neighbours() == []
        # At least each side's text and its notice of the other's (no handshake any more).
        assert a.bridge.counters["deposited"] >= 2
        assert b.bridge.counters["deposited"] >= 2
        await wait_until(lambda: relay_metric(relay, "stored_envelopes") == 0)
        stop.set()
    assert [task.result() for task in runs] == [0, 0]


async def test_a_phone_without_uplink_reaches_a_far_contact_through_a_neighbour(
    tmp_path: Path, relay: RelayProcess
) -> None:
    """The phone attaches the contact's signed mailbox hint; the neighbourhood node carries it.

    The phone and its contact met in radio range first (a session and a message over the mesh);
    then the contact went home, out of range, where only its relay mailbox reaches it. The phone
    has no relay of its own, and has not verified the contact, so its own bridge deposits nothing.
    """
    near = SimMedium(RadioParams(), random.Random(2))
    phone = on_radio(
        node_config(tmp_path, "pigeon-phone", RelaysSection(), attach_mailbox_hints=True), near
    )
    neighbour = on_radio(
        node_config(tmp_path, "pigeon-near", RelaysSection(carry_to_private_addresses=True)), near
    )
    far_config = node_config(tmp_path, "pigeon-far", RelaysSection(urls=(relay.url,)))
    stop, far_stop = asyncio.Event(), asyncio.Event()
    async with asyncio.TaskGroup() as group:
        runs = [group.create_task(n.run(stop)) for n in (phone, neighbour)]
        far = on_radio(far_config, near)  # first in range of the phone
        far_run = group.create_task(far.run(far_stop))
        await wait_until(lambda: all(n.ready.is_set() for n in (phone, neighbour, far)))
        await wait_until(lambda: not phone.messenger.is_locked and not far.messenger.is_locked)
        far.messenger.set_profile("Far", (relay.url,))
        far_at_phone = phone.messenger.add_contact(far.messenger.own_card_text(), "Far", 0).id
        phone_at_far = far.messenger.add_contact(phone.messenger.own_card_text(), "Phone", 0).id
        phone.messenger.send_text(far_at_phone, "met in range", time.time())
        await wait_until(lambda: last(phone, far_at_phone) == ("met in range", "delivered"))
        far_stop.set()
        assert await far_run == 0

        far = on_radio(far_config, SimMedium(RadioParams(), random.Random(3)))  # far away
        runs.append(group.create_task(far.run(stop)))
        await wait_until(lambda: far.ready.is_set() and not far.messenger.is_locked)
        phone.messenger.send_text(far_at_phone, "from afar", time.time())
        await wait_until(lambda: last(far, phone_at_far) == ("from afar", "received"))
        assert far.driver.router.neighbours() == []  # it came by the relay alone
        assert neighbour.carrier.counters["carried"] >= 1
        assert neighbour.board.status().carried_to_relays == neighbour.carrier.counters["carried"]
        assert "deposited for neighbours" in neighbour.board.summary()
        assert neighbour.carrier.counters["refused_hint"] == 0
        assert phone.bridge.counters["deposited"] == 0
        stop.set()
    assert [task.result() for task in runs] == [0, 0, 0]


async def test_a_failed_deposit_is_tried_again_when_the_messenger_retries(tmp_path: Path) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/v1"
    key = SigningKey.generate()
    relayed: list[list[bytes]] = []
    bridge = RelayBridge(
        (),
        owner=lambda: None,
        store=lambda url, envelope_id, data: asyncio.sleep(0),
        targets=lambda packet: DepositTarget(key.public_key, (url,)),
        on_relayed=relayed.append,
        on_status=lambda relays: None,
        client_factory=lambda url: RelayClient(url, connect_attempts=1),
    )
    packet = make_notice(bytes(range(32)), bytes(16), 2**32 - 1)
    bridge.offer(packet)
    await wait_until(lambda: bridge.counters["deposit_failed"] == 1)
    bridge.offer(packet)  # no relay listens yet: the retry is attempted, not skipped
    await wait_until(lambda: bridge.counters["deposit_failed"] == 2)
    config = RelayConfig(listen=f"127.0.0.1:{port}", data_dir=str(tmp_path / "relay"))
    running = await start_relay(config)
    try:
        bridge.offer(packet)
        await wait_until(lambda: relayed == [[packet.packet_id]])
        bridge.offer(packet)  # stored once: never deposited again
        await asyncio.sleep(0.1)
        assert bridge.counters["deposited"] == 1
    finally:
        await bridge.aclose()
        await running.aclose()


async def test_status_says_reading_until_the_stored_backlog_is_handled(tmp_path: Path) -> None:
    running = await start_relay(RelayConfig(listen="127.0.0.1:0", data_dir=str(tmp_path / "r")))
    key = SigningKey.generate()
    depositor = RelayClient(running.url)
    await depositor.deposit(key.public_key, b"stored before the node reads")
    release = asyncio.Event()

    async def store(url: str, envelope_id: bytes, data: bytes) -> None:
        await release.wait()  # the vault is slow: the backlog is not handled yet

    bridge = RelayBridge(
        (running.url,),
        owner=lambda: MailboxOwner(key.public_key, key.sign),
        store=store,
        targets=lambda packet: None,
        on_relayed=lambda ids: None,
        on_status=lambda relays: None,
    )
    task = asyncio.create_task(bridge.run())
    try:
        await wait_until(lambda: bridge.status((running.url,))[0].state is RelayState.CONNECTED)
        assert bridge.status((running.url,))[0].detail == "reading stored envelopes"
        release.set()
        await wait_until(lambda: bridge.status((running.url,))[0].detail == "")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await depositor.aclose()
        await running.aclose()
