"""A gateway node in its own process, for test_gateway_kill.py to SIGKILL and start again.

Run as `python gateway_child.py DATA_DIR RELAY_URL [--deposit] [--carl]`: a node (courier and
gateway over the spool in DATA_DIR, its bitchat identity from a fixed seed) on a simulated radio
of its own, with the phones ann and bob (fixed seeds) in range, and carl with `--carl`. With
`--deposit`, ann hands the node an envelope for carl once the node heard her announce. Every
0.1 s it prints one JSON line: the gateway's counters, the envelopes the courier holds (`held`)
and the courier envelopes each phone received from the node (`bob`, `carl`).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from pathlib import Path

from pigeon.bitchat import packet as wire
from pigeon.bitchat.courier_agent import read_payload
from pigeon.bitchat.courier_wire import CourierEnvelope, encode_envelope, epoch_day, recipient_tag
from pigeon.bitchat.identity import BitchatIdentity
from pigeon.bitchat.router import BitchatRouter
from pigeon.daemon.bitchat_courier import CourierService
from pigeon.daemon.bitchat_driver import BitchatDriver
from pigeon.daemon.bitchat_gateway import GatewayService
from pigeon.sim.bitchat_phone import BITCHAT_SERVICE, BitchatPhone
from pigeon.store.keeper import DataDir, open_spool
from pigeon.transport.sim import RadioParams, SimMedium

NODE_SEED = 40
ANN_SEED = 41
BOB_SEED = 42
CARL_SEED = 43


def phone(name: str, seed: int) -> BitchatPhone:
    """The phone `name` with the identity every run of the test gives it."""
    return BitchatPhone(name, random.Random(seed))


def envelope_for_carl(now: float) -> CourierEnvelope:
    """The envelope ann deposits: for carl, an hour to live."""
    tag = recipient_tag(phone("carl", CARL_SEED).identity.noise_public, epoch_day(now))
    return CourierEnvelope(tag, int((now + 3600) * 1000), b"sealed for carl" * 8)


async def main(data: Path, relay: str, deposit: bool) -> None:
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(1))
    identity = BitchatIdentity.generate(random.Random(NODE_SEED).randbytes)
    router = BitchatRouter(identity.peer_id, random.Random())
    driver = BitchatDriver(router, identity, "node", tick_s=0.05)
    spool = open_spool(DataDir(data))
    driver.courier = CourierService(identity, router, driver.chat, spool.courier_shelf())
    gateway = GatewayService(
        driver, [relay], spool.drop_ledger(), park_after_s=0.0, pump_s=0.1, backoff_min_s=0.1
    )
    driver.gateway = gateway
    transport = medium.transport("node", 0.0, 0.0, service=BITCHAT_SERVICE, frame_limit=512)
    tasks = [asyncio.create_task(driver.run(transport)), asyncio.create_task(gateway.run())]
    ann, bob, carl = phone("ann", ANN_SEED), phone("bob", BOB_SEED), phone("carl", CARL_SEED)
    phones = [(ann, 10.0), (bob, 20.0)] + ([(carl, 30.0)] if "--carl" in sys.argv else [])
    for who, x in phones:
        link = medium.transport(who.nickname, x, 0.0, service=BITCHAT_SERVICE, frame_limit=512)
        await who.start(link)
    deposited = not deposit
    while all(not task.done() for task in tasks):
        if not deposited and driver.chat.announced(ann.identity.peer_id) is not None:
            await ann.deposit(identity.peer_id, encode_envelope(envelope_for_carl(time.time())))
            deposited = True
        counters = dict(gateway.counters)
        counters["connected"] = int(gateway.pool.connected)
        counters["held"] = len(driver.courier.policy)
        for who in (bob, carl):
            counters[who.nickname] = sum(1 for f in who.received if _courier_from(f, identity))
        print(json.dumps(counters), flush=True)
        await asyncio.sleep(0.1)
    for task in tasks:
        task.result()  # a part that stopped by itself: say why


def _courier_from(frame: bytes, node: BitchatIdentity) -> bool:
    view = wire.parse(frame)
    if view.type != wire.COURIER_ENVELOPE or view.sender != node.peer_id:
        return False
    read_payload(frame, view)
    return True


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], "--deposit" in sys.argv[3:]))
