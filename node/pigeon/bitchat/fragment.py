"""bitchat's fragment payload (type 0x20): id (8) | index u16 | total u16 | original type u8 |
data. A relay checks the header and passes fragments through; it never reassembles."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

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
