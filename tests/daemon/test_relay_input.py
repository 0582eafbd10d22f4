"""Envelopes read from the owner's relay mailbox: paced per relay, and the loop stays free.

Anyone may deposit in the owner's mailbox (depositing needs no login), and a relay hands over
the whole mailbox at once: reading is paced by the budgets a radio neighbour gets, and the
event loop (page, radio, other relays) runs between two envelopes.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from pigeon.daemon.endpoint import EndpointDriver
from pigeon.daemon.mesh_driver import MeshDriver
from pigeon.daemon.node_messenger import NodeMessenger
from pigeon.daemon.relay_bridge import RelayPace
from pigeon.daemon.status import OwnerView
from pigeon.mesh.packet import encode_packet
from pigeon.mesh.ratelimit import LimiterPolicy
from pigeon.mesh.router import Router, RouterConfig
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import Argon2Params
from tests.messenger.junk import forged_prekey, intro_tag_at, prekey_contact_card

from .conftest import wait_until

URL = "ws://relay.example/v1"


async def test_a_relay_is_paced_like_a_radio_neighbour() -> None:
    now = [0.0]
    policy = LimiterPolicy(packets_per_s=10.0, packets_burst=3.0)
    pace = RelayPace(policy, lambda: now[0])
    for _ in range(3):
        await asyncio.wait_for(pace.spend(600), 1.0)  # the burst goes at once
    waiting = asyncio.create_task(pace.spend(600))
    await asyncio.sleep(0.3)
    assert not waiting.done()  # over budget: reading waits, the mailbox keeps the rest
    now[0] = 1.0
    await asyncio.wait_for(waiting, 1.0)


async def test_the_loop_runs_between_envelopes_read_from_a_relay(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "node")
    keeper = VaultKeeper(data, argon2=Argon2Params(opslimit=1, memlimit_bytes=8192))
    spool = open_spool(data)
    messenger = NodeMessenger(keeper, spool)
    mesh = MeshDriver(Router(RouterConfig(), random.Random(1)))
    endpoint = EndpointDriver(messenger, mesh, OwnerView(), data)
    running = asyncio.create_task(endpoint.run())
    beats = [0]

    async def heartbeat() -> None:
        while True:
            beats[0] += 1
            await asyncio.sleep(0)

    beating = asyncio.create_task(heartbeat())
    try:
        await wait_until(lambda: not messenger.is_locked)
        card = messenger.own_card_text()
        tag = intro_tag_at(card, time.time())
        contact_card, contact = prekey_contact_card(3, time.time())
        messenger.add_contact(contact_card, "named by the junk", time.time())
        before = beats[0]
        for index in range(20):
            packet = forged_prekey(contact, card, tag, time.time())
            await endpoint.store_from_relay(URL, bytes(16), encode_packet(packet))
            assert beats[0] > before + index  # the heartbeat ran since the last envelope
        assert messenger.stats["first_contact_over_budget"] > 0  # budgeted as that relay's
    finally:
        beating.cancel()
        running.cancel()
        await asyncio.gather(running, beating, return_exceptions=True)
        keeper.lock()
        spool.close()
