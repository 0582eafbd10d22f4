"""Fuzz the router with frames from two neighbours: it must turn any input into actions.

The first byte picks the mode: raw frames (length-prefixed chunks) or packet bytes cut into
well-formed frames, which gets past reassembly into the packet decoder and the router logic.
The router catches the mesh room's errors itself, so nothing at all may escape.
"""

import random
import sys

import atheris

with atheris.instrument_imports():
    from pigeon.mesh.events import FrameReceived, LinkDown, LinkUp, ServeTags, Tick
    from pigeon.mesh.fragment import fragment
    from pigeon.mesh.packet import MAX_PACKET_LEN
    from pigeon.mesh.router import Router, RouterConfig

START_S = 1_800_000_000.0
PEERS = ("x", "y")


def _chunks(data: bytes) -> list[bytes]:
    out, offset = [], 0
    while offset < len(data):
        size = data[offset] % 64
        out.append(data[offset + 1 : offset + 1 + size])
        offset += 1 + size
    return out


def fuzz_one_input(data: bytes) -> None:
    """Feed fuzzed frames to a router under either policy."""
    if not data:
        return
    routing = "flood" if data[0] & 2 else "default"
    router = Router(RouterConfig(routing=routing), random.Random(0))
    router.handle(ServeTags((b"T" * 16,)), START_S)
    for peer in PEERS:
        router.handle(LinkUp(peer, 40), START_S)
    if data[0] & 1 and 0 < len(data) - 1 <= MAX_PACKET_LEN:
        frames = fragment(data[1:], 40, 1)
    else:
        frames = _chunks(data[1:])
    for index, frame in enumerate(frames):
        router.handle(FrameReceived(PEERS[index % 2], frame), START_S + index)
    router.handle(Tick(), START_S + 100)
    router.handle(LinkDown("x"), START_S + 100)


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
