"""An app user both in radio range and on a relay sends the same packet both ways, as the app
does with everything but texts (`SessionManager+Messaging.swift`: "Every other envelope ...
floods both links"): the owner's node takes it once, whichever copy comes first. A second
copy would fail Olm's decryption (its message key is spent) and make the node start a new
session or ask the app to, for every ack."""

from __future__ import annotations

import random
import time
from pathlib import Path

from pigeon.config import AppMeshSection
from pigeon.sim.app_phone import APP_SERVICE, PHONE_VALUE_LENGTH, AppPhone
from pigeon.transport.sim import RadioParams, SimMedium
from tests.daemon.app_nodes import app_link, app_user, node_config, on_medium, opened, running
from tests.daemon.conftest import wait_until
from tests.messenger.app_peer import MESSAGE, X3DH_INIT
from tests.relay.appclient import AppClient
from tests.relay.process import launch_relay


async def test_a_packet_that_comes_by_radio_and_by_relay_is_taken_once(tmp_path: Path) -> None:
    relay = await launch_relay(tmp_path / "relay", tmp_path / "relay.log")
    ws_url = relay.url.removesuffix("/v1") + "/ws"
    appmesh = AppMeshSection(relays=(ws_url,), relay_private_addresses=True)
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(5))
    node = on_medium(node_config(tmp_path, "pigeon-two-paths", appmesh), medium, (40.0, 0.0))
    try:
        async with running(node):
            messenger = node.messenger
            relays = node.app_contact_relays
            assert relays is not None
            peer, signing = app_user(node)
            phone = AppPhone(peer.peer.identity_key, random.Random(6))
            await phone.start(
                medium.transport(
                    "ada", 0.0, 0.0, service=APP_SERVICE, frame_limit=PHONE_VALUE_LENGTH
                )
            )
            mailbox = await AppClient.connect(relay.url)
            try:
                await mailbox.subscribe_and_auth(signing)
                await wait_until(lambda: node.board.status().appmesh.peers == 1, 10.0)
                contact_id = messenger.add_contact(app_link(peer, [ws_url]), "", time.time()).id
                sent = messenger.send_text(contact_id, "hello both ways", time.time())
                inbox = await phone.wait_for_inbox(2, 10.0)
                assert [opened(peer, packet) for packet in inbox] == [X3DH_INIT, MESSAGE]

                # The ack by radio first, then the same packet from the owner's mailbox.
                packet = await phone.send_envelope(peer.ack(str(peer.received[0]["id"])))
                await wait_until(lambda: messenger.message(sent.id).state == "delivered", 10.0)
                await mailbox.publish(peer.owner, packet)
                await wait_until(lambda: relays.counters["read"] >= 1, 10.0)

                # A reply from the mailbox first, then the same packet by radio.
                reply, _ = peer.text("and back both ways")
                packet = _packet(reply)
                await mailbox.publish(peer.owner, packet)
                await wait_until(lambda: relays.counters["read"] >= 2, 10.0)
                await phone.send_packet(packet)
                await wait_until(
                    lambda: (
                        node.app_driver is not None
                        and node.app_driver.router.counters["delivered_local"] >= 2
                    ),
                    10.0,
                )
                texts = [m.text for m in messenger.conversation(contact_id)]
                assert texts == ["hello both ways", "and back both ways"]
                assert messenger.stats["app_undecryptable"] == 0
                assert messenger.stats["app_sent_x3dh_init"] == 1  # no new session
                assert messenger.stats["app_sent_rehandshake_request"] == 0
                assert messenger.stats["app_duplicate_packet"] == 2
            finally:
                await mailbox.close()
                await phone.aclose()
    finally:
        relay.process.terminate()
        await relay.process.wait()


def _packet(envelope: bytes) -> bytes:
    """A whole app mesh packet as the app makes it: version 1, TTL 8, a random id."""
    return bytes((1, 8)) + random.Random(9).randbytes(16) + envelope
