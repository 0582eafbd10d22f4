"""Short custody: recent packets for recipients not in range, offered to links that come up.

A phone that walks past gets a packet it missed, but only while the packet is fresh: the
phones remember only their last 1,024 packet ids, and a packet delivered again after a phone
forgot its id breaks that phone's Olm session. `CUSTODY_WINDOW_S` is chosen so that no phone
can have forgotten a packet that is still offered (docs/protocol.md, "The Pigeon app's mesh
dialect", gives the arithmetic). Each packet goes at most once into each link.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

CUSTODY_WINDOW_S: Final = 60.0
CUSTODY_MAX_PACKETS: Final = 256
CUSTODY_MAX_BYTES: Final = 1024 * 1024


@dataclass(slots=True, eq=False)
class Held:
    """A packet in custody: its forwarding bytes and the links it already went into."""

    data: bytes
    held_at: float
    sent_to: set[str] = field(default_factory=set)


class Custody:
    """Packets held for the window, oldest first, within count and byte caps."""

    def __init__(
        self,
        window_s: float = CUSTODY_WINDOW_S,
        max_packets: int = CUSTODY_MAX_PACKETS,
        max_bytes: int = CUSTODY_MAX_BYTES,
    ) -> None:
        if not window_s > 0 or max_packets < 1 or max_bytes < 1:
            raise ValueError("custody window and caps must be positive")
        self.window_s = window_s
        self._max_packets = max_packets
        self._max_bytes = max_bytes
        self._held: OrderedDict[bytes, Held] = OrderedDict()  # packet id -> held, oldest first
        self._bytes = 0
        self.evicted = 0  # held packets pushed out by a cap before their window ended

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, packet_id: bytes, data: bytes, sent_to: set[str], now: float) -> bool:
        """Keep a packet for the window; False if already held or alone over the byte cap."""
        if len(data) > self._max_bytes or packet_id in self._held:
            return False
        self._held[packet_id] = Held(data, now, sent_to)
        self._bytes += len(data)
        while len(self._held) > self._max_packets or self._bytes > self._max_bytes:
            self._pop_oldest()
            self.evicted += 1
        return True

    def owed(self, link: str, now: float) -> Iterator[tuple[bytes, Held]]:
        """Fresh held packets not yet sent into `link`, oldest first."""
        for packet_id, held in self._held.items():
            if now - held.held_at < self.window_s and link not in held.sent_to:
                yield packet_id, held

    def has_reached(self, packet_id: bytes, link: str) -> None:
        """`link` has the packet (it sent us a copy): it is owed nothing."""
        held = self._held.get(packet_id)
        if held is not None:
            held.sent_to.add(link)

    def expire(self, now: float) -> int:
        """Forget packets whose window ended; return how many."""
        expired = 0
        while self._held:
            held = next(iter(self._held.values()))
            if now - held.held_at < self.window_s:
                break
            self._pop_oldest()
            expired += 1
        return expired

    def _pop_oldest(self) -> None:
        _, held = self._held.popitem(last=False)
        self._bytes -= len(held.data)
