"""Two owners' nodes four hops apart on one simulated radio: a message and the scripted answer."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pigeon.config import (
    ButtonsSection,
    DisplaySection,
    NodeConfig,
    NodeSection,
    RadioSection,
)
from pigeon.daemon.demo import RELAY_POSITIONS, ROBIN_POSITION, ScriptedPeer, run_relay_node
from pigeon.daemon.node import Node, NodeEnvironment
from pigeon.daemon.sdnotify import Notifier
from pigeon.transport.sim import RadioParams, SimMedium

from .conftest import wait_until


def sim_node_config(data_dir: Path, name: str) -> NodeConfig:
    return NodeConfig(
        node=NodeSection(name=name, data_dir=str(data_dir)),
        radio=RadioSection(kind="sim"),
        display=DisplaySection(kind="png"),
        buttons=ButtonsSection(kind="virtual"),
    )


@dataclass
class Neighbourhood:
    you: Node
    robin: Node
    peer: ScriptedPeer


@pytest.fixture
async def neighbourhood(tmp_path: Path) -> AsyncIterator[Neighbourhood]:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(7))
    quiet = Notifier({})
    you = Node(
        sim_node_config(tmp_path / "you", "pigeon-you"),
        NodeEnvironment(medium, (0.0, 0.0), quiet, selftest=False, web=False),
    )
    robin = Node(
        sim_node_config(tmp_path / "robin", "pigeon-robin"),
        NodeEnvironment(medium, ROBIN_POSITION, quiet, selftest=False, web=False),
    )
    peer = ScriptedPeer(robin, you)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        runs = [group.create_task(node.run(stop)) for node in (you, robin)]
        extras = [
            group.create_task(run_relay_node(medium, f"relay-{i}", position))
            for i, position in enumerate(RELAY_POSITIONS)
        ]
        extras.append(group.create_task(peer.run()))
        await wait_until(lambda: you.ready.is_set() and robin.ready.is_set())
        await wait_until(lambda: not you.messenger.is_locked and not robin.messenger.is_locked)
        yield Neighbourhood(you, robin, peer)
        stop.set()
        for task in extras:
            task.cancel()
    assert [task.result() for task in runs] == [0, 0]


async def test_a_message_crosses_four_hops_and_the_answer_comes_back(
    neighbourhood: Neighbourhood,
) -> None:
    you, robin = neighbourhood.you, neighbourhood.robin
    await wait_until(lambda: len(robin.messenger.contacts()) == 1)  # Robin added you
    contact = you.messenger.add_contact(robin.messenger.own_card_text(), "Robin", time.time())
    sent = you.messenger.send_text(contact.id, "hello over the mesh", time.time())

    await wait_until(
        lambda: any(
            m.direction == "in" and m.text == "Robin got: hello over the mesh"
            for m in you.messenger.conversation(contact.id)
        )
    )
    await wait_until(lambda: you.messenger.message(sent.id).state == "delivered")
    assert neighbourhood.peer.answered == 1
    # The OLED's owner view follows: one unread message from Robin, newest first.
    await wait_until(lambda: you.board.owner.unread == 1)
    assert you.board.owner.messages[0].text == "Robin got: hello over the mesh"
    assert you.board.owner.messages[0].sender == "Robin"
