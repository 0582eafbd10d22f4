"""A hand-built network of routers joined by instant, lossless (or scripted-loss) links.

Frames are delivered in FIFO order; each delivered frame is followed by `FrameSent` at its
sender, as a transport would report it. Time moves only when a test calls `tick`.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

from pigeon.mesh.events import (
    Deliver,
    Drop,
    Event,
    FrameReceived,
    FrameSent,
    LinkDown,
    LinkUp,
    LocalSend,
    OfferUplink,
    SendFrame,
    ServeTags,
    Tick,
)
from pigeon.mesh.packet import Flag, Packet, PacketType, make_notice, make_receipt
from pigeon.mesh.receipt import receipt_hash, seal_notice
from pigeon.mesh.router import Router, RouterConfig

START_S = 1_800_000_000.0
FRAME_LIMIT = 100


def tag_of(name: str) -> bytes:
    """A fixed 16-byte recipient tag for a node name."""
    return name.encode().ljust(16, b".")[:16]


def key_of(name: str) -> bytes:
    """A fixed tag key for a node name (routers never see it: notices are sealed with it)."""
    return name.encode().ljust(32, b"k")


class Net:
    """Routers by name, links between them, and what each endpoint got."""

    def __init__(self, names: list[str], config: RouterConfig, seed: int = 0) -> None:
        self.now = START_S
        self.routers = {
            name: Router(config, random.Random(seed + i)) for i, name in enumerate(names)
        }
        self.links: set[frozenset[str]] = set()
        self.queue: deque[tuple[str, str, bytes]] = deque()
        self.delivered: dict[str, list[Packet]] = {name: [] for name in names}
        self.offered_uplink: dict[str, list[Packet]] = {name: [] for name in names}
        self.drops: list[tuple[str, Drop]] = []
        self.frames_sent = 0
        self.lose: Callable[[str, str, bytes], bool] = lambda src, dst, frame: False
        self.rng = random.Random(seed)

    def serve(self, name: str) -> None:
        """`name`'s endpoint answers to its own tag."""
        self.feed(name, ServeTags((tag_of(name),)))
        self.run()

    def link(self, a: str, b: str) -> None:
        self.links.add(frozenset((a, b)))
        self.feed(a, LinkUp(b, FRAME_LIMIT))
        self.feed(b, LinkUp(a, FRAME_LIMIT))
        self.run()

    def unlink(self, a: str, b: str) -> None:
        self.links.discard(frozenset((a, b)))
        self.queue = deque(q for q in self.queue if {q[0], q[1]} != {a, b})
        self.feed(a, LinkDown(b))
        self.feed(b, LinkDown(a))

    def feed(self, name: str, event: Event) -> None:
        for action in self.routers[name].handle(event, self.now):
            if isinstance(action, SendFrame):
                assert frozenset((name, action.peer)) in self.links, "sent without a link"
                self.queue.append((name, action.peer, action.frame))
            elif isinstance(action, Deliver):
                self.delivered[name].append(action.packet)
            elif isinstance(action, OfferUplink):
                self.offered_uplink[name].append(action.packet)
            else:
                self.drops.append((name, action))

    def run(self, max_frames: int = 100_000) -> None:
        """Deliver queued frames until the network is quiet."""
        while self.queue:
            src, dst, frame = self.queue.popleft()
            self.frames_sent += 1
            assert self.frames_sent <= max_frames, "the network does not settle"
            if not self.lose(src, dst, frame):
                self.feed(dst, FrameReceived(src, frame))
            if frozenset((src, dst)) in self.links:
                self.feed(src, FrameSent(dst))

    def tick(self, seconds: float) -> None:
        self.now += seconds
        for name in self.routers:
            self.feed(name, Tick())
        self.run()

    def envelope(
        self, to: str, *, ttl: int = 7, lifetime_s: int = 3600, mailbox_hint: bytes = b""
    ) -> tuple[Packet, bytes]:
        """A new envelope for `to`, with `mailbox_hint` if given, and its secret."""
        secret = self.rng.randbytes(16)
        packet = Packet(
            type=PacketType.ENVELOPE,
            recipient_tag=tag_of(to),
            expires_at_s=int(self.now) + lifetime_s,
            payload=self.rng.randbytes(300),
            receipt_hash=receipt_hash(secret),
            ttl=ttl,
            flags=int(Flag.MAILBOX_HINT) if mailbox_hint else 0,
            mailbox_hint=mailbox_hint,
        )
        return packet, secret

    def send(self, name: str, packet: Packet) -> None:
        self.feed(name, LocalSend(packet))
        self.run()

    def receipt(self, envelope: Packet, secret: bytes) -> Packet:
        """The receipt a recipient sends for `envelope` (to the envelope's own tag)."""
        return make_receipt(secret, envelope.recipient_tag, envelope.expires_at_s)

    def notice(self, envelope: Packet, secret: bytes, to: str) -> Packet:
        """The notice a recipient sends `to`, the sender of `envelope`."""
        sealed = seal_notice(key_of(to), secret, envelope.packet_id)
        return make_notice(sealed, tag_of(to), envelope.expires_at_s)

    def holding(self, packet_id: bytes) -> list[str]:
        """The nodes that carry `packet_id` now."""
        return [
            name
            for name, router in self.routers.items()
            if any(c.packet.packet_id == packet_id for c in router.carried_packets())
        ]

    def drop_reasons(self, name: str) -> list[str]:
        return [drop.reason.value for who, drop in self.drops if who == name]
