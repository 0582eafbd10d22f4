"""Fuzz bitchat's room (pigeon.bitchat). Two modes, picked by bit 0 of byte 0:

- codecs: the rest is read as a packet, a fragment header, an announce and a chat packet; only
  the room's typed errors may escape, and a packet that parses keeps parsing with any TTL.
- router: the rest is a stream of events for a BitchatRouter with four links. Layout, repeated:
  control u8 (bits 0-1: frame, link up, link down, tick; bits 2-3: link; bits 4-7: seconds to
  advance), length u8, body. Every frame the router sends goes to a link that is up, fits it,
  parses, differs from a received frame only in the TTL byte, and carries a TTL of at most 6.

Run: .venv/bin/python fuzz/fuzz_bitchat.py -max_total_time=60
"""

import contextlib
import random
import sys

from pigeon.bitchat import packet as wire
from pigeon.bitchat.chat import PublicChat, parse_announce
from pigeon.bitchat.errors import BitchatError
from pigeon.bitchat.events import Action, FrameReceived, LinkDown, LinkUp, SendFrame, Tick
from pigeon.bitchat.fragment import read_fragment_header
from pigeon.bitchat.router import BitchatRouter

LINKS = "abcd"
NOW_S = 1_800_000_000.0


def _codecs(data: bytes) -> None:
    try:
        view = wire.parse(data)
    except BitchatError:
        pass
    else:
        assert wire.parse(wire.with_ttl(data, 0)).end == view.end, "TTL changed the parse"
        wire.signed_bytes(data, view)
    for reader in (read_fragment_header, parse_announce, PublicChat().receive):
        with contextlib.suppress(BitchatError):
            reader(data)


def _check_sent(actions: list[Action], limits: dict[str, int], received: bytes) -> None:
    for action in actions:
        if not isinstance(action, SendFrame):
            continue
        assert action.link in limits, "frame for a link that is not up"
        assert len(action.frame) <= limits[action.link], "frame too big for its link"
        assert action.frame[:2] + action.frame[3:] == received[:2] + received[3:], "bytes changed"
        assert wire.parse(action.frame).ttl <= 6, "forwarded TTL out of range"


def _router(data: bytes) -> None:
    router = BitchatRouter(b"\x99" * 8, random.Random(0))
    limits: dict[str, int] = {}
    now, offset = NOW_S, 0
    while offset + 2 <= len(data):
        control, size = data[offset], data[offset + 1]
        body = data[offset + 2 : offset + 2 + size]
        offset += 2 + size
        link = LINKS[(control >> 2) & 3]
        now += control >> 4
        op = control & 3
        if op == 0:
            # Stamp the frame fresh so the fuzzer reaches the relay rules past the window.
            if len(body) >= 11:
                body = body[:3] + int(now * 1000).to_bytes(8, "big") + body[11:]
            _check_sent(router.handle(FrameReceived(link, body), now), limits, body)
        elif op == 1:
            limits[link] = int.from_bytes(body[:2].rjust(2, b"\x00"), "big")
            router.handle(LinkUp(link, limits[link]), now)
        elif op == 2:
            router.handle(LinkDown(link), now)
            limits.pop(link, None)
        else:
            router.handle(Tick(), now)


def fuzz_one_input(data: bytes) -> None:
    """Run one input in the mode its first byte picks."""
    if not data:
        return
    if data[0] & 1:
        _router(data[1:])
    else:
        _codecs(data[1:])


if __name__ == "__main__":
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
