"""Fuzz the mesh packet codec: any bytes either raise MalformedPacket or decode to a packet
that the constructor also accepts and that re-encodes to exactly those bytes.

Run: .venv/bin/python fuzz/fuzz_packet.py -max_total_time=60
"""

import dataclasses
import sys

from pigeon.mesh.errors import MalformedPacket
from pigeon.mesh.packet import (
    PacketType,
    decode_announce,
    decode_packet,
    decode_receipt,
    encode_packet,
)
from pigeon.mesh.receipt import open_notice, seal_notice


def fuzz_one_input(data: bytes) -> None:
    try:
        packet = decode_packet(data)
    except MalformedPacket:
        return
    if encode_packet(packet) != data:
        raise AssertionError("a decoded packet does not re-encode to its bytes")
    dataclasses.replace(packet)  # the constructor's own checks must agree with the decoder
    if packet.type is PacketType.ANNOUNCE:
        decode_announce(packet.payload)
    elif packet.type is PacketType.RECEIPT:
        decode_receipt(packet.payload)
    elif packet.type is PacketType.NOTICE:
        sealed = seal_notice(bytes(32), *open_notice(bytes(32), packet.payload))
        if sealed != packet.payload:
            raise AssertionError("a notice does not seal back to its bytes")


if __name__ == "__main__":
    import atheris

    atheris.instrument_all()  # coverage for the mesh code already imported above
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
