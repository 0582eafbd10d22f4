"""The identity reset in a running node: the buttons' request, its lapse and cancel, the reset.

Nodes run in-process on the simulated radio. The two-button hold itself is decoded by
`pigeon.ui.oled` (tested there with synthetic timestamps); here the daemon gets its
`RequestReset` as the OLED loop hands it over, so no test waits 10 s.
"""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from pigeon.config import load_config
from pigeon.daemon.demo import ScriptedPeer
from pigeon.daemon.identity_reset import RESET_PARTS
from pigeon.daemon.node import Node, NodeEnvironment
from pigeon.daemon.sdnotify import Notifier
from pigeon.daemon.supervisor import PartState, RestartPolicy
from pigeon.mesh.packet import Packet, encode_packet
from pigeon.messenger.api import UnknownContact
from pigeon.store.keeper import open_spool
from pigeon.store.spool_db import SpooledEnvelope, StoreEnvelope
from pigeon.transport.sim import RadioParams, SimMedium
from pigeon.ui.oled import CancelReset, RequestReset
from pigeon.ui.oled.buttons import LONG_PRESS_S
from pigeon.ui.oled.views import ErrorView, ResetView, StatusView
from pigeon.ui.web.errors import ResetFailed, ResetNotPending
from pigeon.ui.web.ports import RelayState
from pigeon.ui.web.security import COOKIE_NAME
from tests.messenger.helpers import Endpoint

from ..relay.process import launch_relay
from .conftest import wait_until, write_node_config
from .test_neighbourhood import sim_node_config
from .test_relay_bridge import node as relay_node
from .test_relay_bridge import relay_metric
from .test_spool_sync import envelope


def quiet_env(**changes: object) -> NodeEnvironment:
    fields: dict[str, object] = {"notifier": Notifier({}), "selftest": False, "web": False}
    fields.update(changes)
    return NodeEnvironment(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    """A node with a PNG panel and virtual buttons whose reset request lapses after 0.5 s."""
    config = load_config(write_node_config(tmp_path))
    running = Node(config, quiet_env(reset_pending_s=0.5, restart=RestartPolicy(base_s=0.05)))
    stop = asyncio.Event()
    task = asyncio.create_task(running.run(stop))
    await asyncio.wait_for(running.ready.wait(), 10)
    await wait_until(lambda: not running.messenger.is_locked)
    await wait_until(lambda: isinstance(running.oled.view, StatusView))
    yield running
    stop.set()
    assert await task == 0


def request_reset(node: Node) -> None:
    """What the OLED loop hands the daemon after both buttons were held for 10 s."""
    node._on_ui_request(RequestReset(), time.monotonic())


def held(packet: Packet, now: float) -> SpooledEnvelope:
    return SpooledEnvelope(
        packet.packet_id,
        packet.recipient_tag,
        "owner",
        1,
        packet.expires_at_s,
        None,
        encode_packet(packet),
        now,
        held_for_owner=True,
    )


def carried(packet: Packet, now: float) -> SpooledEnvelope:
    return SpooledEnvelope(
        packet.packet_id, packet.recipient_tag, "n", 1, packet.expires_at_s, None, b"x", now
    )


async def test_the_reset_pauses_parts_the_node_runs(node: Node) -> None:
    assert set(RESET_PARTS) <= {part.name for part in node.parts()}


async def test_a_request_shows_on_the_panel_then_lapses_unconfirmed(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pigeon.daemon.identity_reset")
    handle = node.messenger.own_handle()
    request_reset(node)
    assert node.identity_reset.pending()
    assert node.board.owner.reset_pending
    await wait_until(lambda: isinstance(node.oled.view, ResetView))
    await wait_until(lambda: isinstance(node.oled.view, StatusView), timeout_s=5)
    assert not node.board.owner.reset_pending
    assert not node.identity_reset.pending()
    with pytest.raises(ResetNotPending):
        await node.identity_reset.confirm()
    assert node.messenger.own_handle() == handle
    messages = [record.getMessage() for record in caplog.records]
    assert any("requested on the buttons" in text for text in messages)
    assert any("lapsed" in text for text in messages)
    assert not any(handle in text for text in messages)


async def test_back_on_the_panel_withdraws_the_request(node: Node) -> None:
    request_reset(node)
    await wait_until(lambda: isinstance(node.oled.view, ResetView))
    node.panel.press("b")  # hold B for 1 s: back
    await asyncio.sleep(LONG_PRESS_S + 0.1)
    node.panel.release("b")
    await wait_until(lambda: not node.board.owner.reset_pending)
    assert not node.identity_reset.pending()
    assert isinstance(node.oled.view, StatusView)
    with pytest.raises(ResetNotPending):
        await node.identity_reset.confirm()
    request_reset(node)  # the daemon's own CancelReset handling, as the OLED hands it over
    node._on_ui_request(CancelReset(), time.monotonic())
    assert not node.identity_reset.pending()


async def test_a_confirmed_reset_erases_the_identity_and_keeps_the_relay_side(
    node: Node, tmp_path: Path
) -> None:
    data = node.data_dir
    now = time.time()
    old_card, old_handle = node.messenger.own_card_text(), node.messenger.own_handle()
    old_header = data.vault_header.read_bytes()
    old_auto = (data.root / "vault.autounlock").read_bytes()
    device_key = data.device_key.read_bytes()
    certificate = sorted((p.name, p.read_bytes()) for p in node.cert_dir.iterdir())
    peer = Endpoint(tmp_path / "peer", 5)
    peer.start(now)
    friend = node.messenger.add_contact(peer.messenger.own_card_text(), "Friend", now)
    node.messenger.send_text(friend.id, "before the reset", now)
    token = node.pairing.submit(node.pairing.start(now), now, "test browser")
    assert node.board.owner.owner_paired
    spool = open_spool(data)  # a second connection, as another process would have
    for_others, for_old_owner = envelope(b"C", now), envelope(b"H", now)
    spool.apply(
        [
            StoreEnvelope(carried(for_others, now)),
            StoreEnvelope(held(for_old_owner, now)),
        ]
    )

    old_ops = node.messenger._sessions
    assert old_ops is not None
    assert old_ops._account is not None  # the first text to the peer used the Olm account
    assert old_ops._cache

    request_reset(node)
    await node.identity_reset.confirm()

    # No parsed Olm account or session of the old identity stays in memory.
    assert old_ops._account is None
    assert not old_ops._cache
    # A new identity, at once usable; nothing of the old one's contacts or messages.
    assert not node.messenger.is_locked
    assert node.messenger.own_handle() != old_handle
    assert node.messenger.own_card_text() != old_card
    assert node.messenger.contacts() == []
    with pytest.raises(UnknownContact):
        node.messenger.conversation(friend.id)
    # The vault and its passphrase were replaced; the old wrapped key is nowhere in the files.
    assert data.vault_header.read_bytes() != old_header
    assert (data.root / "vault.autounlock").read_bytes() != old_auto
    for path in data.root.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert old_header not in content, path
            assert old_header[-48:] not in content, path  # the wrapped key and its tag
    # Every paired browser is gone, on disk and in memory.
    assert node.pairing.authenticate(token, time.time()) is None
    assert not node.pairing.is_paired()
    assert not (data.root / "browsers.json").exists()
    assert not node.board.owner.owner_paired
    # The relay side stays: device key, spool (but for mail held for the old identity), cert.
    assert data.device_key.read_bytes() == device_key
    assert spool.envelope(for_others.packet_id) is not None
    assert spool.envelope(for_old_owner.packet_id) is None
    spool.close()
    assert sorted((p.name, p.read_bytes()) for p in node.cert_dir.iterdir()) == certificate
    # The parts run on: the radio never stopped, the paused ones started again.
    status = node.supervisor.status()
    assert status["radio"].state is PartState.RUNNING
    assert status["radio"].failures == 0
    await wait_until(
        lambda: all(status_of(node, name) is PartState.RUNNING for name in RESET_PARTS)
    )
    # The OLED is back to the first-boot status, with the hint to pair.
    await wait_until(lambda: isinstance(node.oled.view, StatusView))
    view = node.oled.view
    assert isinstance(view, StatusView)
    assert view.show_pair_hint
    assert not node.identity_reset.pending()
    with pytest.raises(ResetNotPending):
        await node.identity_reset.confirm()


def status_of(node: Node, name: str) -> PartState:
    return node.supervisor.status()[name].state


async def test_a_forgotten_passphrase_is_no_obstacle(node: Node) -> None:
    old_handle = node.messenger.own_handle()
    node.messenger.change_passphrase("", "a passphrase now forgotten")  # owner-bound
    node.messenger.lock(time.time())
    await wait_until(lambda: node.board.owner.vault_locked)
    request_reset(node)
    await node.identity_reset.confirm()
    assert not node.messenger.is_locked
    assert node.messenger.own_handle() != old_handle
    assert (node.data_dir.root / "vault.autounlock").is_file()  # device-bound again


async def test_a_failed_step_is_named_everywhere_and_a_retry_finishes_the_reset(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    old_handle = node.messenger.own_handle()
    auto = node.data_dir.root / "vault.autounlock"
    auto.unlink()
    auto.mkdir()  # a file that cannot be erased: a directory in its place
    request_reset(node)
    with pytest.raises(ResetFailed) as failed:
        await node.identity_reset.confirm()
    assert failed.value.step == "erasing the passphrase"
    error = node.board.owner.error
    assert error is not None
    assert "erasing the passphrase" in error
    assert "retry" in error
    await wait_until(lambda: isinstance(node.oled.view, ErrorView))
    assert any(
        record.levelno == logging.ERROR and "identity reset failed" in record.getMessage()
        for record in caplog.records
    )
    assert not node.identity_reset.pending()
    assert not node.data_dir.vault_header.exists()  # the steps before it were done

    shutil.rmtree(auto)
    request_reset(node)  # the owner holds the buttons again
    await node.identity_reset.confirm()
    assert node.board.owner.error is None
    await wait_until(lambda: not node.messenger.is_locked)
    assert node.messenger.own_handle() != old_handle
    assert auto.is_file()


async def test_after_a_reset_the_node_relays_for_others_and_its_new_identity_chats(
    tmp_path: Path,
) -> None:
    # You at 0 m and Robin at 80 m hear each other only through Carol at 40 m, who resets.
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(7))
    nodes = [
        Node(
            sim_node_config(tmp_path / name, f"pigeon-{name}"),
            quiet_env(medium=medium, sim_position=(x, 0.0)),
        )
        for name, x in (("you", 0.0), ("carol", 40.0), ("robin", 80.0))
    ]
    you, carol, robin = nodes
    peer = ScriptedPeer(robin, carol)  # the demo's Robin: answers all, follows Carol's resets
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        runs = [group.create_task(n.run(stop)) for n in nodes]
        answering = group.create_task(peer.run())
        await wait_until(lambda: all(n.ready.is_set() and not n.messenger.is_locked for n in nodes))
        await wait_until(lambda: len(robin.messenger.contacts()) == 1)  # Robin added Carol
        old_handle = carol.messenger.own_handle()
        request_reset(carol)
        await carol.identity_reset.confirm()
        new_handle = carol.messenger.own_handle()
        assert new_handle != old_handle
        await wait_until(lambda: new_handle in {c.id for c in robin.messenger.contacts()})

        def answered(owner: Node, contact_id: str, text: str) -> bool:
            return any(
                m.direction == "in" and m.text == f"Robin got: {text}"
                for m in owner.messenger.conversation(contact_id)
            )

        robin_card = robin.messenger.own_card_text()
        robin.messenger.add_contact(you.messenger.own_card_text(), "You", time.time())
        at_you = you.messenger.add_contact(robin_card, "Robin", time.time()).id
        at_carol = carol.messenger.add_contact(robin_card, "Robin", time.time()).id
        you.messenger.send_text(at_you, "across Carol", time.time())
        carol.messenger.send_text(at_carol, "from a new identity", time.time())
        await wait_until(lambda: answered(you, at_you, "across Carol"))
        await wait_until(lambda: answered(carol, at_carol, "from a new identity"))
        stop.set()
        answering.cancel()
    assert [task.result() for task in runs] == [0, 0, 0]


async def test_after_a_reset_the_relay_bridge_reads_the_new_identitys_mailbox(
    tmp_path: Path,
) -> None:
    relay = await launch_relay(tmp_path / "relay-data", tmp_path / "relay.log")
    a, b = relay_node(tmp_path, "pigeon-a", relay.url), relay_node(tmp_path, "pigeon-b", relay.url)
    stop = asyncio.Event()
    try:
        async with asyncio.TaskGroup() as group:
            runs = [group.create_task(n.run(stop)) for n in (a, b)]
            await wait_until(
                lambda: all(n.ready.is_set() and not n.messenger.is_locked for n in (a, b))
            )
            await wait_until(
                lambda: (
                    bool(b.board.relays)
                    and all(r.state is RelayState.CONNECTED for r in b.board.relays)
                )
            )
            request_reset(b)
            await b.identity_reset.confirm()
            # A writes to the new identity's mailbox: only a bridge that reads with the new
            # identity's key takes it from the relay (and acknowledges it, which deletes it).
            b.messenger.set_profile("B", (relay.url,))
            contact = a.messenger.add_contact(b.messenger.own_card_text(), "B", time.time())
            a.messenger.mark_verified(
                contact.id, a.messenger.safety_number(contact.id), time.time()
            )
            a.messenger.send_text(contact.id, "hello, new B", time.time())
            await wait_until(lambda: a.bridge.counters["deposited"] >= 1)
            await wait_until(lambda: relay_metric(relay, "envelopes_deleted_total") >= 1)
            assert relay_metric(relay, "stored_envelopes") == 0
            stop.set()
        assert [task.result() for task in runs] == [0, 0]
    finally:
        relay.process.terminate()
        await relay.process.wait()


async def test_the_nodes_own_page_confirms_the_reset(tmp_path: Path) -> None:
    config = load_config(write_node_config(tmp_path))
    node = Node(config, quiet_env(web=True))
    stop = asyncio.Event()
    task = asyncio.create_task(node.run(stop))
    await asyncio.wait_for(node.ready.wait(), 10)
    await wait_until(lambda: not node.messenger.is_locked)
    old_handle = node.messenger.own_handle()
    token = node.pairing.submit(node.pairing.start(time.time()), time.time(), "test browser")
    assert node.web_ports is not None
    base = f"https://127.0.0.1:{node.web_ports[0]}"
    headers = {"Cookie": f"{COOKIE_NAME}={token}", "Origin": base}
    form = {"confirm": node.name}
    async with aiohttp.ClientSession() as http:

        async def post() -> aiohttp.ClientResponse:
            return await http.post(
                f"{base}/reset", data=form, headers=headers, ssl=False, allow_redirects=False
            )

        assert (await post()).status == 409  # the buttons were not held
        request_reset(node)
        settings = await http.get(f"{base}/settings", headers=headers, ssl=False)
        assert 'id="reset-notice"' in await settings.text()
        done = await post()
        assert done.status == 303
        assert done.headers["Location"] == "/pair?flash=reset"
        assert (await post()).status == 401  # this browser was revoked with all others
    assert node.messenger.own_handle() != old_handle
    stop.set()
    assert await task == 0
