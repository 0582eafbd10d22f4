"""Fuzz frame reassembly. Two modes, picked by bit 0 of the first byte:

- raw: fuzzed frames from two neighbours over time; only MalformedFrame may escape, memory
  stays within the caps, and no bytes come out whose digest no first frame announced.
  Layout, repeated: control u8 (bit 0 peer, bits 1-3 seconds to advance), length u8, frame.
- schedule: a fuzzed packet is fragmented, then its frames are fed in a fuzzed order, with
  repeats, drops and bit flips; whatever comes out must be exactly that packet.
  Layout: frame limit - 20 (u8), packet length (u16), packet, then schedule bytes (bits 0-6
  pick a frame, bit 7 flips one bit of it, chosen by the next byte).

Run: .venv/bin/python fuzz/fuzz_fragment.py -max_total_time=60
"""

import hashlib
import sys

from pigeon.mesh.errors import MalformedFrame
from pigeon.mesh.fragment import FIRST_TAG, Reassembler, fragment

PER_PEER_MAX_BYTES = 2_000
TOTAL_MAX_BYTES = 3_000


def _reassembler() -> Reassembler:
    return Reassembler(
        timeout_s=5.0, per_peer_max_bytes=PER_PEER_MAX_BYTES, total_max_bytes=TOTAL_MAX_BYTES
    )


def _raw(data: bytes) -> None:
    reassembler, announced = _reassembler(), set[bytes]()
    now, offset = 0.0, 0
    while offset + 2 <= len(data):
        control, length = data[offset], data[offset + 1]
        frame = data[offset + 2 : offset + 2 + length]
        offset += 2 + length
        now += (control >> 1) & 7
        if len(frame) >= 15 and frame[0] == FIRST_TAG:
            announced.add(frame[7:15])
        try:
            packet = reassembler.add("ab"[control & 1], frame, now)
        except MalformedFrame:
            continue
        if packet is not None and hashlib.sha256(packet).digest()[:8] not in announced:
            raise AssertionError("reassembled bytes match no announced digest")
        if reassembler.bytes_held > TOTAL_MAX_BYTES:
            raise AssertionError("reassembler exceeded its total memory cap")


def _schedule(data: bytes) -> None:
    if len(data) < 3:
        return
    limit, size = 20 + data[0], int.from_bytes(data[1:3], "big")
    packet, schedule = data[3 : 3 + size], data[3 + size :]
    if not packet:
        return
    frames = fragment(packet, limit, 1)
    reassembler = Reassembler()
    position = 0
    while position < len(schedule):
        pick = schedule[position]
        frame = bytearray(frames[(pick & 0x7F) % len(frames)])
        position += 1
        if pick & 0x80 and position < len(schedule):
            bit = schedule[position] % (8 * len(frame))
            frame[bit // 8] ^= 1 << (bit % 8)
            position += 1
        try:
            out = reassembler.add("peer", bytes(frame), 0.0)
        except MalformedFrame:
            continue
        if out is not None and out != packet:
            raise AssertionError("reassembly returned bytes that are not the packet")


def fuzz_one_input(data: bytes) -> None:
    """Run one input in the mode its first byte picks."""
    if not data:
        return
    if data[0] & 1:
        _schedule(data[1:])
    else:
        _raw(data[1:])


if __name__ == "__main__":
    import atheris

    atheris.instrument_all()  # coverage for the mesh code already imported above
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
