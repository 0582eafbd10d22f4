"""Whole nodes (`pigeon.daemon.node.Node`) on the simulated radio for the tests that drive
them with a scripted Pigeon-app user: configs, running them, the user and its link."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import nacl.signing

from pigeon.config import (
    AppMeshSection,
    BitchatSection,
    ButtonsSection,
    DisplaySection,
    NodeConfig,
    NodeSection,
    RadioSection,
    WebSection,
)
from pigeon.crypto.signing import SigningKey
from pigeon.daemon.node import Node, NodeEnvironment
from pigeon.daemon.sdnotify import Notifier
from pigeon.transport.sim import SimMedium
from tests.crypto.plain_app_peer import card_text
from tests.daemon.conftest import wait_until
from tests.messenger.app_peer import ScriptedAppPeer

START_TIMEOUT_S = 20.0
PACKET_HEADER = 18  # the app's mesh packet: version, TTL, 16-byte id, then the envelope
SEEDS = range(1, 1 << 16)


def node_config(root: Path, name: str, appmesh: AppMeshSection) -> NodeConfig:
    """A node on the simulated radio with its page on loopback; bitchat off (not under test)."""
    return NodeConfig(
        node=NodeSection(name=name, data_dir=str(root / name)),
        radio=RadioSection(kind="sim"),
        display=DisplaySection(kind="none"),
        buttons=ButtonsSection(kind="none"),
        web=WebSection(host="127.0.0.1", https_port=0, http_port=0),
        appmesh=appmesh,
        bitchat=BitchatSection(enabled=False),
    )


def on_medium(
    config: NodeConfig, medium: SimMedium, position: tuple[float, float], *, web: bool = True
) -> Node:
    env = NodeEnvironment(medium, position, Notifier({}), selftest=False, web=web)
    return Node(config, env)


@asynccontextmanager
async def running(*nodes: Node) -> AsyncIterator[None]:
    """Run the nodes until the block ends; each is ready and its vault open inside it."""
    stop = asyncio.Event()
    tasks = [asyncio.create_task(node.run(stop)) for node in nodes]
    try:
        await wait_until(
            lambda: (
                all(
                    n.ready.is_set()
                    and n.endpoint.vault_opened.is_set()
                    and not n.messenger.is_locked
                    for n in nodes
                )
                or any(t.done() for t in tasks)
            ),
            START_TIMEOUT_S,
        )
        assert not any(t.done() for t in tasks), [n.stop_reason for n in nodes]
        yield
    finally:
        stop.set()
        codes = await asyncio.gather(*tasks)
    assert codes == [0] * len(nodes), [n.stop_reason for n in nodes]


def app_link(peer: ScriptedAppPeer, relay_urls: list[str]) -> str:
    """The peer's `pigeon://contact?card=` link: its card v3 in unpadded base64url."""
    text = card_text(peer.peer, "Ada", relay_urls)
    return "pigeon://contact?card=" + text.replace("+", "-").replace("/", "_").rstrip("=")


def app_user(node: Node, *, owner_lower: bool = True) -> tuple[ScriptedAppPeer, SigningKey]:
    """An app user and its signing key; by the app's lower-key-initiates rule the owner opens
    the session if `owner_lower`, else the app user does (the owner asks it to). The owner's
    key is random: enough seeds are tried that one falls on either side but once in 65,535."""
    owner = node.messenger.own_identity_key()
    for n in SEEDS:
        seed = n.to_bytes(32, "big")
        if (owner < bytes(nacl.signing.SigningKey(seed).verify_key)) == owner_lower:
            return ScriptedAppPeer(seed, node.messenger.own_app_card_link()), SigningKey(seed)
    raise AssertionError("no seed with that key order")


def opened(peer: ScriptedAppPeer, packet: bytes) -> int:
    """The scripted peer reads one app mesh packet from the owner; returns the envelope type."""
    assert packet[0] == 1  # the app's packet version
    return peer.receive(packet[PACKET_HEADER:])
