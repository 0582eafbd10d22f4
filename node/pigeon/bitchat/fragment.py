"""bitchat's fragment payload (type 0x20): id (8) | index u16 | total u16 | original type u8 |
data. A relay checks the header and passes fragments through; it never reassembles. `split`
fragments a packet the node itself sends to a link too small for it (courier hand-overs)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from pigeon.bitchat import packet as wire
from pigeon.bitchat.errors import MalformedFragment

HEADER_SIZE: Final = 13
_HEADER: Final = struct.Struct(">8sHHB")


@dataclass(frozen=True, slots=True)
class FragmentHeader:
    """The fixed part of a fragment's payload."""

    fragment_id: bytes
    index: int
    total: int
    original_type: int


def read_fragment_header(payload: bytes) -> FragmentHeader:
    """The header of a fragment's payload; raises MalformedFragment."""
    if len(payload) < HEADER_SIZE:
        raise MalformedFragment("fragment payload shorter than its 13-byte header")
    fragment_id, index, total, original_type = _HEADER.unpack_from(payload)
    if total == 0 or index >= total:
        raise MalformedFragment("fragment index not below its total")
    return FragmentHeader(fragment_id, index, total, original_type)


def split(whole: bytes, recipient: bytes, frame_limit: int, fragment_id: bytes) -> list[bytes]:
    """`whole` (a packet this node made) as bitchat fragments each at most `frame_limit` bytes:
    its bytes in chunks, each in an unsigned v1 0x20 packet with the original's sender,
    timestamp and TTL, addressed to `recipient` (bitchat's BLEOutboundFragmentPlanner).
    Raises ValueError for a limit too small to carry a chunk or over 65,535 fragments."""
    view = wire.parse(whole)
    chunk = frame_limit - wire.V1_HEADER_SIZE - 2 * wire.ID_SIZE - HEADER_SIZE
    if chunk < 1 or len(fragment_id) != 8:
        raise ValueError("a frame limit too small for a fragment, or a bad fragment id")
    parts = [whole[i : i + chunk] for i in range(0, len(whole), chunk)]
    if len(parts) > 0xFFFF:
        raise ValueError("too many fragments")
    return [
        wire.encode(
            wire.OutPacket(
                wire.FRAGMENT,
                view.ttl,
                view.timestamp_ms,
                view.sender,
                _HEADER.pack(fragment_id, index, len(parts), view.type) + part,
                recipient,
            ),
            padded=False,
        )
        for index, part in enumerate(parts)
    ]
