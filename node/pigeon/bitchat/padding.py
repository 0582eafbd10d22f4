"""bitchat's padding: PKCS#7-style bytes up to the next block of 256/512/1024/2048.

The pad is applied only when 1..255 bytes are needed and the data plus 16 fits a block, so
bigger packets go unpadded; decoders try a packet as it is, then unpadded.
"""

from __future__ import annotations

from typing import Final

BLOCK_SIZES: Final = (256, 512, 1024, 2048)
BLOCK_HEADROOM: Final = 16  # bitchat picks the block for len + 16


def block_size_for(size: int) -> int:
    """The block bitchat pads `size` bytes to (`size` itself when none fits)."""
    for block in BLOCK_SIZES:
        if size + BLOCK_HEADROOM <= block:
            return block
    return size


def pad(data: bytes) -> bytes:
    """`data` padded as bitchat pads a packet it sends or signs."""
    needed = block_size_for(len(data)) - len(data)
    if not 0 < needed <= 255:
        return data
    return data + bytes((needed,)) * needed


def unpad(data: bytes) -> bytes:
    """`data` without a valid pad, or `data` itself when its tail is not one."""
    if not data:
        return data
    count = data[-1]
    if count == 0 or count > len(data) or data[-count:] != bytes((count,)) * count:
        return data
    return data[:-count]
