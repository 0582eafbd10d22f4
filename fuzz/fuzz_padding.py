"""Fuzz `unpad`: MalformedInput, or an exact inverse of `pad`.

Random lengths are rarely whole blocks, so the first byte picks raw bytes or the rest
zero-filled to a whole number of blocks, which reaches the marker and length checks.
"""

import sys

import atheris

with atheris.instrument_imports():
    from pigeon.crypto.errors import MalformedInput
    from pigeon.crypto.padding import BLOCK_LEN, pad, unpad


def _candidate(data: bytes) -> bytes:
    if not data or data[0] % 2:
        return data[1:]
    rest = data[1:]
    return rest + bytes(-len(rest) % BLOCK_LEN)


def fuzz_one_input(data: bytes) -> None:
    """Unpad fuzzed bytes; whatever unpads must pad back to exactly those bytes."""
    padded = _candidate(data)
    try:
        plaintext = unpad(padded)
    except MalformedInput:
        return
    if pad(plaintext) != padded:
        raise RuntimeError("unpad accepted a non-canonical padding")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
