"""Reassembly of fragments (0x20) addressed to this node, for its courier only.

bitchat fragments a packet larger than a link's write (its encoded, padded bytes cut into
chunks of about 469 bytes, each sent as a fragment packet addressed like the original). The
relay never reassembles; the node does only for fragments addressed to itself whose original
type is a courier type, so a phone whose deposit does not fit one write can still deposit.
Bounds, after bitchat's receiver (BLEFragmentAssemblyBuffer): 128 open assemblies, 30 s each,
1 MiB in all; and ours: a whole packet at most `max_packet_bytes`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Final

from pigeon.bitchat.fragment import FragmentHeader

MAX_ASSEMBLIES: Final = 128
ASSEMBLY_TTL_S: Final = 30.0
MAX_BUFFERED_BYTES: Final = 1 << 20
MAX_PACKET_BYTES: Final = 20 * 1024  # a 16 KiB envelope, its TLVs, header and signature, padded


@dataclass(slots=True)
class _Assembly:
    total: int
    original_type: int
    started: float
    parts: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class FragmentAssembler:
    """Open assemblies keyed by (sender id, fragment id); `add` returns a whole packet once."""

    def __init__(
        self,
        max_assemblies: int = MAX_ASSEMBLIES,
        ttl_s: float = ASSEMBLY_TTL_S,
        max_buffered_bytes: int = MAX_BUFFERED_BYTES,
        max_packet_bytes: int = MAX_PACKET_BYTES,
    ) -> None:
        self._open: OrderedDict[tuple[bytes, bytes], _Assembly] = OrderedDict()
        self._max_assemblies = max_assemblies
        self._ttl_s = ttl_s
        self._max_buffered = max_buffered_bytes
        self._max_packet = max_packet_bytes
        self._buffered = 0

    def __len__(self) -> int:
        return len(self._open)

    def add(self, sender: bytes, header: FragmentHeader, data: bytes, now: float) -> bytes | None:
        """Take one fragment's data; the original packet's bytes when it completes, else None."""
        self.expire(now)
        key = (sender, header.fragment_id)
        entry = self._open.get(key)
        if entry is None and len(data) > self._max_packet:
            return None  # never worth displacing an open assembly for
        if entry is None:
            entry = _Assembly(header.total, header.original_type, now)
            self._open[key] = entry
            while len(self._open) > self._max_assemblies:
                self._discard(next(iter(self._open)))
        if (entry.total, entry.original_type) != (header.total, header.original_type):
            self._discard(key)  # a sender contradicting itself: start over, keep nothing
            return None
        if header.index in entry.parts:
            return None
        entry.parts[header.index] = data
        entry.size += len(data)
        self._buffered += len(data)
        if entry.size > self._max_packet:
            self._discard(key)
            return None
        while self._buffered > self._max_buffered:
            self._discard(next(iter(self._open)))
        if key in self._open and len(entry.parts) == entry.total:
            self._discard(key)
            return b"".join(entry.parts[i] for i in range(entry.total))
        return None

    def expire(self, now: float) -> None:
        """Drop assemblies older than their time."""
        stale = [k for k, a in self._open.items() if now - a.started > self._ttl_s]
        for key in stale:
            self._discard(key)

    def _discard(self, key: tuple[bytes, bytes]) -> None:
        entry = self._open.pop(key)
        self._buffered -= entry.size
