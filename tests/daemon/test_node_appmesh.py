"""A node with `[appmesh]`: a simulated app phone links to its app service beside ours, its
packet for a contact out of range goes to a real `pigeon relay` over `/ws`, and the figures
show on the status board and /metrics; `enabled = false` leaves the app's phones alone."""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pigeon.config import (
    AppMeshSection,
    ButtonsSection,
    DisplaySection,
    NodeConfig,
    NodeSection,
    RadioSection,
)
from pigeon.crypto.signing import SigningKey
from pigeon.daemon import hardware
from pigeon.daemon.node import Node, NodeEnvironment
from pigeon.daemon.sdnotify import Notifier
from pigeon.relay.app_protocol import AppEnvelope
from pigeon.sim.app_phone import APP_SERVICE, PHONE_VALUE_LENGTH, AppPhone
from pigeon.transport.sim import RadioParams, SimMedium
from pigeon.ui.web.metrics import render_metrics
from tests.relay.appclient import AppClient
from tests.relay.process import RelayProcess, launch_relay

from .conftest import wait_until

NODE_POSITION = (40.0, 0.0)


def _config(data_dir: Path, appmesh: AppMeshSection) -> NodeConfig:
    return NodeConfig(
        node=NodeSection(name="pigeon-app-test", data_dir=str(data_dir)),
        radio=RadioSection(kind="sim"),
        display=DisplaySection(kind="png"),
        buttons=ButtonsSection(kind="none"),
        appmesh=appmesh,
    )


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[RelayProcess]:
    process = await launch_relay(tmp_path / "relay", tmp_path / "relay.log")
    yield process
    process.process.terminate()
    await process.process.wait()


async def _run_node(node: Node, medium: SimMedium, phone: AppPhone, body: object) -> None:
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        run = group.create_task(node.run(stop))
        await wait_until(node.ready.is_set)
        await phone.start(
            medium.transport("alice", 0.0, 0.0, service=APP_SERVICE, frame_limit=PHONE_VALUE_LENGTH)
        )
        try:
            await body()  # type: ignore[operator]
        finally:
            await phone.aclose()
            stop.set()
    assert run.result() == 0


async def test_a_phone_on_the_nodes_radio_reaches_a_contact_through_the_apps_relay(
    tmp_path: Path, relay: RelayProcess
) -> None:
    ws_url = relay.url.removesuffix("/v1") + "/ws"
    section = AppMeshSection(relays=(ws_url,), relay_private_addresses=True)
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(5))
    node = Node(
        _config(tmp_path / "node", section),
        NodeEnvironment(medium, NODE_POSITION, Notifier({}), selftest=False, web=False),
    )
    alice, bob = SigningKey.generate(), SigningKey.generate()
    phone = AppPhone(alice.public_key, random.Random(6))

    async def body() -> None:
        await wait_until(lambda: node.board.status().appmesh.peers == 1, 10.0)
        sent = await phone.send(bob.public_key, b"ciphertext for bob")
        await wait_until(lambda: node.board.status().appmesh.bridged == 1, 10.0)
        reader = await AppClient.connect(relay.url)
        try:
            await reader.subscribe_and_auth(bob)
            envelope = await reader.receive()
        finally:
            await reader.close()
        assert isinstance(envelope, AppEnvelope)
        assert base64.b64decode(envelope.ciphertext) == sent
        status = node.board.status()
        assert status.appmesh.relays == (ws_url,)
        metrics = render_metrics(status)
        assert "pigeon_node_appmesh_peers 1\n" in metrics
        assert "pigeon_node_appmesh_bridged_total 1\n" in metrics
        assert node.board.view_state(0.0).app_mesh is not None
        assert "1 app phones, 0 app packets relayed, 1 bridged" in node.board.summary()

    await _run_node(node, medium, phone, body)


async def test_with_the_app_mesh_off_no_phone_links(tmp_path: Path) -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(5))
    node = Node(
        _config(tmp_path / "node", AppMeshSection(enabled=False)),
        NodeEnvironment(medium, NODE_POSITION, Notifier({}), selftest=False, web=False),
    )
    phone = AppPhone(bytes(32), random.Random(6))

    async def body() -> None:
        await asyncio.sleep(0.5)
        assert phone.links == []
        assert "app-mesh" not in [part.name for part in node.parts()]
        assert node.board.status().appmesh.enabled is False
        assert node.board.view_state(0.0).app_mesh is None
        assert "app" not in node.board.summary()

    await _run_node(node, medium, phone, body)


def test_without_a_ble_transport_for_the_apps_service_the_seam_says_so() -> None:
    with pytest.raises(hardware.HardwareUnavailable, match="app's service"):
        hardware.ble_app_transport_factory(RadioSection())
