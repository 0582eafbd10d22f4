"""Plaintext padding to whole 512-byte blocks (ISO/IEC 7816-4), so lengths leak only in blocks.

`pad` appends one 0x80 byte, then zero bytes up to the next multiple of `BLOCK_LEN`: there is
always at least one byte of padding, so a plaintext that already fills whole blocks gains a
block. `unpad` accepts only exactly that shape: a non-empty whole number of blocks ending in
0x80 followed by fewer than `BLOCK_LEN` zero bytes.
"""

from __future__ import annotations

from typing import Final

from pigeon.crypto.errors import MalformedInput

BLOCK_LEN: Final = 512
PAD_MARKER: Final = 0x80


def padded_len(plaintext_len: int) -> int:
    """The length `pad` returns for a plaintext of `plaintext_len` bytes."""
    return (plaintext_len // BLOCK_LEN + 1) * BLOCK_LEN


def pad(plaintext: bytes) -> bytes:
    """`plaintext` || 0x80 || zeros, to a multiple of `BLOCK_LEN` bytes."""
    zeros = padded_len(len(plaintext)) - len(plaintext) - 1
    return b"".join((plaintext, bytes([PAD_MARKER]), bytes(zeros)))


def unpad(padded: bytes) -> bytes:
    """Strip the padding `pad` added; raises MalformedInput on any other shape."""
    if not padded or len(padded) % BLOCK_LEN:
        raise MalformedInput(f"padded length must be a positive multiple of {BLOCK_LEN}")
    marker = len(padded.rstrip(b"\x00")) - 1
    if marker < len(padded) - BLOCK_LEN or padded[marker] != PAD_MARKER:
        raise MalformedInput("padding is malformed")
    return padded[:marker]
