"""Messenger endpoints on routers on the simulated radio: a line of relays between owners.

The glue a daemon provides, kept minimal: radio upcalls feed the router, the router's Deliver
actions are batched (one vault transaction per flush, as a daemon would group commits), the
messenger's packets go back in as LocalSend, and a periodic tick drives both.
"""

from __future__ import annotations

import random
from pathlib import Path

from pigeon.mesh.events import (
    Deliver,
    Event,
    LocalSend,
    SendFrame,
    ServeTags,
    Tick,
)
from pigeon.mesh.packet import Packet
from pigeon.mesh.router import Router, RouterConfig
from pigeon.sim.engine import RouterUpcalls
from pigeon.transport.base import Broken, Busy, PeerId
from pigeon.transport.sim import RadioParams, SimRadio
from tests.messenger.helpers import T0, Endpoint

TICK_S = 5.0
FLUSH_S = 1.0


class MeshNode(RouterUpcalls):
    """A router on the radio, optionally with an owner's messenger behind it."""

    def __init__(self, net: MeshNet, name: str, endpoint: Endpoint | None) -> None:
        self.net = net
        self.name = PeerId(name)
        self.endpoint = endpoint
        self.router = Router(RouterConfig(), random.Random(name))
        self.delivered: list[Packet] = []
        self.served: tuple[bytes, ...] = ()
        self.sent_ids: set[bytes] = set()

    def feed(self, event: Event) -> None:
        """Give the router an event and carry out its actions."""
        for action in self.router.handle(event, self.net.unix_now()):
            if type(action) is SendFrame:
                try:
                    self.net.radio.send(self.name, PeerId(action.peer), action.frame)
                except (Broken, Busy):
                    self.net.send_failures += 1
            elif type(action) is Deliver:
                if not self.delivered:
                    self.net.radio.call_at(self.net.radio.now + FLUSH_S, self.flush)
                self.delivered.append(action.packet)

    def send_local(self, packets: list[Packet]) -> None:
        """Hand our endpoint's packets to the router."""
        for packet in packets:
            self.feed(LocalSend(packet))

    def flush(self) -> None:
        """Give the messenger what the router delivered since the last flush."""
        packets, self.delivered = self.delivered, []
        if self.endpoint is not None and packets:
            self.net.deliveries += len(packets)
            self.send_local(self.endpoint.messenger.handle_packets(packets, self.net.unix_now()))

    def tick(self) -> None:
        """Periodic work of router and messenger; reschedules itself."""
        self.feed(Tick())
        if self.endpoint is not None and not self.endpoint.messenger.is_locked:
            self.pump()
        self.net.radio.call_at(self.net.radio.now + TICK_S, self.tick)

    def pump(self) -> None:
        """Messenger retries and new packets, served tags, and which envelopes left us."""
        assert self.endpoint is not None
        messenger, now = self.endpoint.messenger, self.net.unix_now()
        self.send_local(messenger.tick(now))
        self.send_local(messenger.take_outgoing())
        served = messenger.served_tags(now)
        announced = messenger.announced_tags(now)
        if served != self.served:
            self.served = served
            self.feed(ServeTags(announced, tuple(t for t in served if t not in announced)))
        carried = {c.packet.packet_id: c for c in self.router.carried_packets()}
        left = [
            i
            for i in messenger.outstanding_envelopes()
            if i not in self.sent_ids and i in carried and carried[i].holders
        ]
        self.sent_ids.update(left)
        messenger.note_sent(left, now)

    def restart(self) -> None:
        """Power cycle: the process dies (router state lost), stores reopen, vault unlocks."""
        assert self.endpoint is not None
        radio = self.net.radio
        radio.set_power(self.name, False)
        self.endpoint.close()
        self.endpoint.open()
        self.router = Router(RouterConfig(), random.Random(self.name + "-again"))
        self.delivered, self.served = [], ()
        radio.set_power(self.name, True)
        self.send_local(self.endpoint.start(self.net.unix_now()))
        self.pump()


class MeshNet:
    """Owners A and B at the ends of a line of `relays` relay nodes, 40 m apart."""

    def __init__(self, root: Path, relays: int, *, loss: float = 0.0, seed: int = 7) -> None:
        params = RadioParams(range_m=50.0, loss=loss, bandwidth_bytes_s=50_000.0)
        self.radio = SimRadio(params, random.Random(seed))
        self.send_failures = 0
        self.deliveries = 0
        self.a = MeshNode(self, "A", Endpoint(root / "a", seed))
        self.b = MeshNode(self, "B", Endpoint(root / "b", seed + 1000))
        line = [self.a] + [MeshNode(self, f"R{i}", None) for i in range(relays)] + [self.b]
        for index, node in enumerate(line):
            self.radio.add_node(node.name, index * 40.0, 0.0, node)
            self.radio.call_at(index * 0.37, node.tick)
        self.nodes = line

    def unix_now(self) -> float:
        """Unix time of the simulated clock."""
        return T0 + self.radio.now

    def start(self) -> None:
        """Create both vaults and let links come up."""
        for node in (self.a, self.b):
            assert node.endpoint is not None
            node.send_local(node.endpoint.start(self.unix_now()))
        self.run(1.0)
        for node in (self.a, self.b):
            node.pump()

    def run(self, seconds: float) -> None:
        """Advance the simulated clock."""
        self.radio.run_until(self.radio.now + seconds)

    def run_until(self, done: object, limit_s: float, step_s: float = 5.0) -> bool:
        """Run until `done()` is true or `limit_s` simulated seconds passed."""
        assert callable(done)
        end = self.radio.now + limit_s
        while self.radio.now < end:
            if done():
                return True
            self.run(step_s)
        return bool(done())
