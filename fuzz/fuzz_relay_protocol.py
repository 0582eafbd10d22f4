"""Fuzz the relay frame codec in both directions; decoded frames must re-encode to the input."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from pigeon.relay.protocol import (
        FrameError,
        decode_client_frame,
        decode_server_frame,
        encode,
    )


def fuzz_one_input(data: bytes) -> None:
    """Decode `data` as a client and as a relay frame; only FrameError may escape decoding."""
    for decode in (decode_client_frame, decode_server_frame):
        try:
            frame = decode(data)
        except FrameError:
            continue
        if encode(frame) != data:
            raise AssertionError("a decoded frame does not re-encode to its bytes")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
