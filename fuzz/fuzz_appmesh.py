"""Fuzz the Pigeon app's mesh dialect (pigeon.appmesh). Two modes, picked by bit 0 of byte 0:

- codecs: the rest is decoded as a fragment, a packet and an envelope; only the room's typed
  errors may escape, and whatever decodes must encode back to the same bytes.
- router: the rest is a stream of events for an AppRouter with four links. Layout, repeated:
  control u8 (bits 0-1: frame, link up, link down, tick; bits 2-3: link; bits 4-7: seconds
  to advance), length u8, body (a frame, or for link up its value length as u16). Every
  frame the router sends must fit its link, decode, and reassemble to a valid packet whose
  TTL is at most 7; no packet goes twice into one link, and nothing into a link that is down.

Run: .venv/bin/python fuzz/fuzz_appmesh.py -max_total_time=60
"""

import sys

from pigeon.appmesh.envelope import decode_envelope, encode_envelope
from pigeon.appmesh.errors import AppMeshError
from pigeon.appmesh.events import Action, FrameReceived, LinkDown, LinkUp, SendFrame, Tick
from pigeon.appmesh.fragment import decode_fragment, encode_fragment
from pigeon.appmesh.packet import decode_packet, encode_packet
from pigeon.appmesh.reassembly import Reassembler
from pigeon.appmesh.router import AppRouter, AppRouterConfig

LINKS = "abcd"


def _codecs(data: bytes) -> None:
    try:
        fragment = decode_fragment(data)
    except AppMeshError:
        pass
    else:
        assert encode_fragment(fragment) == data, "fragment does not round-trip"
    try:
        packet = decode_packet(data)
    except AppMeshError:
        pass
    else:
        assert encode_packet(packet) == data, "packet does not round-trip"
    try:
        envelope = decode_envelope(data)
    except AppMeshError:
        pass
    else:
        assert encode_envelope(envelope) == data, "envelope does not round-trip"


def _check_sent(
    actions: list[Action],
    lengths: dict[str, int],
    out: Reassembler,
    into: set[tuple[str, bytes]],
    now: float,
) -> None:
    for action in actions:
        if not isinstance(action, SendFrame):
            continue
        assert action.link in lengths, "frame for a link that is not up"
        assert len(action.frame) <= lengths[action.link], "frame too big for its link"
        whole = out.add(action.link, decode_fragment(action.frame), now)
        if whole is not None:
            packet = decode_packet(whole)
            decode_envelope(packet.payload)
            assert 1 <= packet.ttl <= 7, "forwarded TTL out of range"
            assert (action.link, packet.packet_id) not in into, "a packet went twice into a link"
            into.add((action.link, packet.packet_id))


def _router(data: bytes) -> None:
    # Ids are remembered for longer than any input can advance the clock (255 events x 15 s).
    router = AppRouter(AppRouterConfig(max_packet_bytes=4096, seen_ttl_s=1e9))
    out, into = Reassembler(), set[tuple[str, bytes]]()
    lengths: dict[str, int] = {}
    now, offset = 0.0, 0
    while offset + 2 <= len(data):
        control, size = data[offset], data[offset + 1]
        body = data[offset + 2 : offset + 2 + size]
        offset += 2 + size
        link = LINKS[(control >> 2) & 3]
        now += control >> 4
        op = control & 3
        if op == 0:
            actions = router.handle(FrameReceived(link, body), now)
        elif op == 1:
            length = int.from_bytes(body[:2].rjust(2, b"\x00"), "big")
            actions = router.handle(LinkUp(link, length), now)
            if link in router.links():
                lengths[link] = length
        elif op == 2:
            actions = router.handle(LinkDown(link), now)
            lengths.pop(link, None)
        else:
            actions = router.handle(Tick(), now)
        _check_sent(actions, lengths, out, into, now)


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

    atheris.instrument_all()  # coverage for the appmesh code already imported above
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
