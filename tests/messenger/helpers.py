"""Endpoints for the messenger tests: real SQLCipher files, cheap Argon2, seeded randomness."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pigeon.mesh.packet import Packet
from pigeon.messenger.api import Messenger
from pigeon.messenger.config import MessengerConfig
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import Argon2Params
from pigeon.store.spool_db import Spool

CHEAP_ARGON2 = Argon2Params(opslimit=1, memlimit_bytes=8192)
PASSPHRASE = "correct horse battery staple"
T0 = 20_000 * 86_400 + 6 * 3600  # 06:00 UTC on a fixed day, as the simulator starts


@dataclass
class Endpoint:
    """One owner's messenger over its own data directory."""

    root: Path
    seed: int
    max_size_bytes: int | None = None
    config: MessengerConfig | None = None
    keeper: VaultKeeper = field(init=False)
    spool: Spool = field(init=False)
    messenger: Messenger = field(init=False)

    def __post_init__(self) -> None:
        self.open()

    def open(self) -> None:
        """(Re)build the stores and the messenger, as a restarted process would."""
        data = DataDir(self.root)
        self.keeper = VaultKeeper(data, argon2=CHEAP_ARGON2, max_size_bytes=self.max_size_bytes)
        self.spool = open_spool(data)
        self.seed += 1
        rng = random.Random(self.seed).randbytes
        self.messenger = Messenger(self.keeper, self.spool, rng=rng, config=self.config)

    def start(self, now: float) -> list[Packet]:
        """Create or unlock the vault."""
        if self.messenger.is_initialised:
            return self.messenger.unlock(PASSPHRASE, now)
        self.messenger.initialise(PASSPHRASE, now)
        return []

    def close(self) -> None:
        """Close everything, as a stopped process would."""
        self.keeper.lock()
        self.spool.close()


def befriend(a: Endpoint, b: Endpoint, now: float) -> tuple[str, str]:
    """Each adds the other's card; returns (b's id at a, a's id at b)."""
    b_at_a = a.messenger.add_contact(b.messenger.own_card_text(), "Bob", now).id
    a_at_b = b.messenger.add_contact(a.messenger.own_card_text(), "Alice", now).id
    return b_at_a, a_at_b


class Wire:
    """Two endpoints in direct radio contact: every packet reaches the other side at once."""

    def __init__(self, a: Endpoint, b: Endpoint) -> None:
        self.a, self.b = a, b
        self.log: list[Packet] = []
        self.sender_of: dict[bytes, Endpoint] = {}  # packet id -> the endpoint that sent it
        self.pending: list[tuple[Packet, Endpoint]] = []

    def tick(self, now: float, *endpoints: Endpoint) -> int:
        """Tick the endpoints (both by default); their packets go with the next pump."""
        count = 0
        for endpoint in endpoints or (self.a, self.b):
            packets = endpoint.messenger.tick(now)
            self.pending.extend((p, endpoint) for p in packets)
            count += len(packets)
        return count

    def other(self, endpoint: Endpoint) -> Endpoint:
        return self.b if endpoint is self.a else self.a

    def pump(
        self, now: float, *, drop: int = 0, lose: Callable[[Packet], bool] | None = None
    ) -> int:
        """Move packets both ways until quiet (the first `drop` are lost); returns how many."""
        queue, self.pending = self.pending, []
        queue += [(p, self.a) for p in self.a.messenger.take_outgoing()]
        queue += [(p, self.b) for p in self.b.messenger.take_outgoing()]
        moved = 0
        while queue:
            packet, sender = queue.pop(0)
            self.log.append(packet)
            self.sender_of[packet.packet_id] = sender
            moved += 1
            if drop or (lose is not None and lose(packet)):
                drop = max(drop - 1, 0)
                continue
            receiver = self.other(sender)
            if packet.recipient_tag in receiver.messenger.served_tags(now):
                replies = receiver.messenger.handle_packet(packet, now)
                queue.extend((p, receiver) for p in replies)
            assert moved < 10_000, "the endpoints never go quiet"
        return moved
