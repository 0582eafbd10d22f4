"""The relay bridge against a real `pigeon relay` process on loopback.

Two owners' nodes on separate simulated radios (never in range): A's handshake start for B is
deposited in B's mailbox at the relay; B's bridge reads it, B's messenger stores it, and only
then is it acknowledged (the relay holds nothing afterwards). With both owners verified and
both cards carrying relay hints, the whole conversation follows over the relay: message 2 goes
to the contact named by the Hello's sealed reply-to hint, and every later envelope and receipt
names its contact (`Messenger.recipient_of`).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pigeon.config import (
    ButtonsSection,
    DisplaySection,
    NodeConfig,
    NodeSection,
    RadioSection,
    RelaysSection,
)
from pigeon.daemon.node import Node, NodeEnvironment
from pigeon.daemon.sdnotify import Notifier
from pigeon.transport.sim import RadioParams, SimMedium
from pigeon.ui.web.ports import RelayState

from ..relay.process import RelayProcess, launch_relay

TIMEOUT_S = 30.0


async def wait_until(predicate: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def relay_metric(relay: RelayProcess, name: str) -> int:
    with urllib.request.urlopen(f"{relay.http}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(rf"^\S*{name}\S* (\d+)", text, re.MULTILINE)
    assert match, text
    return int(match.group(1))


def node(tmp_path: Path, name: str, relay_url: str) -> Node:
    config = NodeConfig(
        node=NodeSection(name=name, data_dir=str(tmp_path / name)),
        radio=RadioSection(kind="sim"),
        display=DisplaySection(kind="none"),
        buttons=ButtonsSection(kind="none"),
        relays=RelaysSection(urls=(relay_url,)),
    )
    medium = SimMedium(RadioParams(), random.Random(1))  # each node alone on its own radio
    env = NodeEnvironment(medium, (0.0, 0.0), Notifier({}), selftest=False, web=False)
    return Node(config, env)


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[RelayProcess]:
    running = await launch_relay(tmp_path / "relay-data", tmp_path / "relay.log")
    yield running
    running.process.terminate()
    await running.process.wait()


async def test_a_handshake_start_goes_through_the_relay(
    tmp_path: Path, relay: RelayProcess
) -> None:
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
        # B's messenger answered the handshake start: its reply is carried by B's router.
        await wait_until(lambda: len(b.driver.router.carried_packets()) >= 1)
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

        def last(owner: Node, contact_id: str) -> tuple[str | None, str]:
            views = owner.messenger.conversation(contact_id)
            return (views[-1].text, views[-1].state) if views else (None, "")

        a.messenger.send_text(b_at_a, "hello by relay", time.time())
        await wait_until(lambda: last(b, a_at_b) == ("hello by relay", "received"))
        await wait_until(lambda: last(a, b_at_a) == ("hello by relay", "delivered"))
        b.messenger.send_text(a_at_b, "and back", time.time())
        await wait_until(lambda: last(a, b_at_a) == ("and back", "received"))
        await wait_until(lambda: last(b, a_at_b) == ("and back", "delivered"))
        # Nothing went by radio: each node is alone on its own simulated medium.
        assert a.driver.router.neighbours() == []
        assert b.driver.router.neighbours() == []
        assert a.bridge.counters["deposited"] >= 4
        assert b.bridge.counters["deposited"] >= 4
        await wait_until(lambda: relay_metric(relay, "stored_envelopes") == 0)
        stop.set()
    assert [task.result() for task in runs] == [0, 0]
