"""Benchmark the mesh building blocks the router calls per packet, each beside a reference.

Writes bench/results/mesh_core.json. The machine is shared, so absolute times are noisy: each
figure comes with a reference measured in the same run (the irreducible stdlib work of the same
step) and the ratio between them. Run: .venv/bin/python bench/bench_mesh_core.py
"""

import gc
import hashlib
import json
import os
import platform
import random
import struct
import sys
import timeit
import tracemalloc
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from pigeon.mesh.dedup import SEEN_CACHE_MAX_ENTRIES, SeenCache
from pigeon.mesh.fragment import Reassembler, fragment
from pigeon.mesh.packet import Packet, PacketType, decode_packet, encode_packet, encoded_with_ttl
from pigeon.mesh.spool import Spool

RESULTS = Path(__file__).resolve().parent / "results" / "mesh_core.json"
RNG = random.Random(7)
FRAME_LIMIT = 244
ROUTER_TARGET_PACKETS_PER_S = 20_000


def best_ns(func: Callable[[], object], number: int, repeat: int = 5) -> float:
    """Best-of-`repeat` nanoseconds per call."""
    return min(timeit.repeat(func, number=number, repeat=repeat)) / number * 1e9


def text_envelope(number: int) -> Packet:
    return Packet(
        type=PacketType.ENVELOPE,
        recipient_tag=RNG.randbytes(16),
        expires_at_s=1_900_000_000 + number,
        payload=RNG.randbytes(568),  # one padded block of ratchet ciphertext
        receipt_hash=RNG.randbytes(16),
    )


def pair(name: str, ours: float, reference: float, reference_name: str) -> dict[str, object]:
    ratio = ours / reference
    print(f"{name:32} {ours:10.0f} ns   ref {reference_name}: {reference:8.0f} ns   x{ratio:.2f}")
    return {
        "ns_per_op": round(ours, 1),
        "reference": reference_name,
        "reference_ns_per_op": round(reference, 1),
        "ratio": round(ratio, 2),
    }


def bench_codec() -> dict[str, object]:
    packet = text_envelope(0)
    data = encode_packet(packet)
    head = struct.Struct(">BBBB16sIB")
    encode = best_ns(lambda: encode_packet(packet), 50_000)
    floor_encode = best_ns(lambda: head.pack(1, 1, 7, 0, packet.packet_id, 1, 16), 50_000)
    decode = best_ns(lambda: decode_packet(data), 50_000)
    floor_decode = best_ns(lambda: head.unpack_from(data), 50_000)
    retag = best_ns(lambda: encoded_with_ttl(data, 6), 50_000)
    return {
        "encode_packet": pair("encode_packet (627 B)", encode, floor_encode, "struct.pack header"),
        "decode_packet": pair(
            "decode_packet (627 B)", decode, floor_decode, "struct.unpack header"
        ),
        "encoded_with_ttl": pair("encoded_with_ttl", retag, floor_encode, "struct.pack header"),
    }


def bench_fragments() -> dict[str, object]:
    data = encode_packet(text_envelope(1))
    frames = fragment(data, FRAME_LIMIT, 1)
    ids = iter(range(10**9))

    def round_trip() -> None:
        message_id = next(ids) & 0xFFFF
        for frame in fragment(data, FRAME_LIMIT, message_id):
            reassembler.add("peer", frame, 0.0)

    reassembler = Reassembler()
    ours = best_ns(round_trip, 5_000)
    digest = best_ns(lambda: hashlib.sha256(data).digest(), 5_000)
    return {
        "frames_per_packet": len(frames),
        "fragment_and_reassemble": pair(
            f"fragment+reassemble ({len(frames)} frames)", ours, digest, "sha256 of the packet"
        ),
    }


def bench_seen_cache() -> dict[str, object]:
    ids = [os.urandom(16) for _ in range(SEEN_CACHE_MAX_ENTRIES)]
    more = [os.urandom(16) for _ in range(SEEN_CACHE_MAX_ENTRIES)]
    count = len(ids)

    def new_ids() -> None:
        cache = SeenCache()
        for packet_id in ids:
            cache.check_and_add(packet_id, 1.0)

    def new_ids_reference() -> None:
        plain: dict[bytes, float] = {}
        for packet_id in ids:
            if packet_id not in plain:
                plain[packet_id] = 1.0

    full = SeenCache()
    for packet_id in ids:
        full.check_and_add(packet_id, 1.0)
    plain = dict.fromkeys(ids, 1.0)

    def hits() -> None:
        for packet_id in ids:
            full.check_and_add(packet_id, 2.0)

    def hits_reference() -> None:
        for packet_id in ids:
            _ = plain.get(packet_id)

    def evicting() -> None:
        cache = SeenCache()
        for packet_id in ids:
            cache.check_and_add(packet_id, 1.0)
        for packet_id in more:  # each insert now pushes out the oldest
            cache.check_and_add(packet_id, 2.0)

    def evicting_reference() -> None:
        fifo: OrderedDict[bytes, float] = OrderedDict()
        for packet_id in ids:
            fifo[packet_id] = 1.0
        for packet_id in more:
            fifo[packet_id] = 2.0
            fifo.popitem(last=False)

    return {
        "new_id": pair(
            "SeenCache new id",
            best_ns(new_ids, 1, 3) / count,
            best_ns(new_ids_reference, 1, 3) / count,
            "dict lookup+insert",
        ),
        "seen_id": pair(
            "SeenCache seen id",
            best_ns(hits, 1, 3) / count,
            best_ns(hits_reference, 1, 3) / count,
            "dict.get",
        ),
        "new_id_when_full": pair(
            "SeenCache new id, evicting",
            best_ns(evicting, 1, 3) / (2 * count),
            best_ns(evicting_reference, 1, 3) / (2 * count),
            "OrderedDict insert+popitem",
        ),
        "memory": bench_seen_cache_memory(ids),
    }


def bench_seen_cache_memory(ids: list[bytes]) -> dict[str, object]:
    gc.collect()
    tracemalloc.start()
    cache = SeenCache()
    for number, packet_id in enumerate(ids):
        cache.check_and_add(bytes(packet_id), float(number))
    ours = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    gc.collect()
    tracemalloc.start()
    reference = {bytes(packet_id) for packet_id in ids}
    floor = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del reference
    snapshot = len(cache.to_bytes())
    print(
        f"{'SeenCache memory (100k ids)':32} {ours / 1e6:10.1f} MB   ref set of ids: "
        f"{floor / 1e6:5.1f} MB   x{ours / floor:.2f}   snapshot {snapshot / 1e6:.1f} MB"
    )
    return {
        "entries": len(ids),
        "bytes": ours,
        "reference": "set of the same ids",
        "reference_bytes": floor,
        "ratio": round(ours / floor, 2),
        "snapshot_bytes": snapshot,
    }


def bench_spool() -> dict[str, object]:
    packets = [text_envelope(n) for n in range(5_000)]
    spool = Spool()

    def offer_all() -> None:
        for number, packet in enumerate(packets):
            spool.offer(packet, f"n{number % 8}", 1_000_000.0)
        for packet in packets:
            spool.remove(packet.packet_id)

    ours = best_ns(offer_all, 1, 3) / len(packets)
    reference = best_ns(lambda: [encode_packet(p) for p in packets], 1, 3) / len(packets)
    return {"offer_and_remove": pair("Spool.offer+remove", ours, reference, "encode_packet")}


def bench_router_path() -> dict[str, object]:
    """What a relayed single-frame packet costs in these blocks: reassemble, decode, dedup,
    re-TTL, fragment; the router's own logic comes on top."""
    small = encode_packet(
        Packet(
            type=PacketType.ENVELOPE,
            recipient_tag=RNG.randbytes(16),
            expires_at_s=1_900_000_000,
            payload=RNG.randbytes(150),
            receipt_hash=RNG.randbytes(16),
        )
    )
    reassembler, cache = Reassembler(), SeenCache()
    counter = iter(range(10**9))

    def relay_one() -> None:
        number = next(counter)
        frame = fragment(small, FRAME_LIMIT, number & 0xFFFF)[0]
        data = reassembler.add("peer", frame, 0.0)
        assert data is not None
        packet = decode_packet(data)
        cache.check_and_add(number.to_bytes(16, "big"), 0.0)
        fragment(encoded_with_ttl(data, packet.ttl - 1), FRAME_LIMIT, number & 0xFFFF)

    per_packet = best_ns(relay_one, 20_000)
    reference = best_ns(lambda: hashlib.sha256(small).digest(), 20_000)
    result = pair("relay path (1 frame, 211 B)", per_packet, reference, "sha256 of the packet")
    rate = 1e9 / per_packet
    share = ROUTER_TARGET_PACKETS_PER_S / rate
    print(f"{'':32} {rate:10.0f} packets/s on one core; 20k/s target uses {share:.0%} of it")
    result["packets_per_s"] = round(rate)
    result["share_of_core_at_20k_per_s"] = round(share, 3)
    return result


def main() -> int:
    results = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "codec": bench_codec(),
        "fragments": bench_fragments(),
        "seen_cache": bench_seen_cache(),
        "spool": bench_spool(),
        "relay_path": bench_router_path(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
