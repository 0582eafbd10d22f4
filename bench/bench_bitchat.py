"""Benchmark the bitchat relay path: packets forwarded per second on one core, and the memory
the bitchat side adds with 7 links.

Writes bench/results/bitchat.json. Signed, padded public messages (bitchat's usual 256-byte
block) arrive in turn on 7 links and go through `BitchatRouter.handle` (parse, rate buckets,
freshness, seen-cache, TTL decision, fan-out subset, TTL byte). Beside it, in the same run, the
bare `parse` of the same packets, so a figure from this shared, noisy machine can be read as a
ratio. Memory: the router with 7 links and a full seen-cache, plus a full neighbourhood chat
(its cap of announced peers), measured with tracemalloc.
Run: .venv/bin/python bench/bench_bitchat.py
"""

import gc
import json
import os
import platform
import random
import time
import tracemalloc
from pathlib import Path

from pigeon.bitchat import packet as wire
from pigeon.bitchat.chat import MAX_KNOWN_PEERS, PublicChat
from pigeon.bitchat.events import FrameReceived, LinkUp, SendFrame
from pigeon.bitchat.identity import BitchatIdentity
from pigeon.bitchat.router import BitchatRouter, BitchatRouterConfig
from pigeon.bitchat.seen import SEEN_MAX_ENTRIES

RESULTS = Path(__file__).resolve().parent / "results" / "bitchat.json"
LINKS = 7
PACKETS = 20_000
REPEATS = 5
GOAL_PACKETS_PER_S = 20_000
NOW_S = 1_800_000_000.0
# Rate caps off: this measures the router's work, not its rate policy.
UNCAPPED = BitchatRouterConfig(
    in_packets_per_s=1e9, in_burst=1e9, out_packets_per_s=1e9, out_burst=1e9
)


def _packets(count: int) -> list[bytes]:
    """Distinct signed public messages from 50 phones, as a phone sends them (padded)."""
    rng = random.Random(17)
    phones = [BitchatIdentity.generate(rng.randbytes) for _ in range(50)]
    return [
        wire.with_ttl(
            phones[i % 50].public_message(f"hello {i} from the park", int(NOW_S * 1000) + i), 5
        )
        for i in range(count)
    ]


def _router() -> BitchatRouter:
    router = BitchatRouter(b"\x99" * 8, random.Random(1), UNCAPPED)
    for i in range(LINKS):
        router.handle(LinkUp(f"link-{i}", 512), NOW_S)
    return router


def bench_forwarding(packets: list[bytes]) -> dict[str, object]:
    best_router, best_parse, frames_out = 0.0, 0.0, 0
    for _ in range(REPEATS):
        router = _router()
        events = [FrameReceived(f"link-{i % LINKS}", data) for i, data in enumerate(packets)]
        gc.collect()
        start = time.perf_counter()
        sent = 0
        for n, event in enumerate(events):
            for action in router.handle(event, NOW_S + n * 1e-5):
                if type(action) is SendFrame:
                    sent += 1
        elapsed = time.perf_counter() - start
        assert router.counters["relayed"] == len(packets), "every packet must be forwarded"
        best_router = max(best_router, len(packets) / elapsed)
        frames_out = sent
        start = time.perf_counter()
        for data in packets:
            wire.parse(data)
        best_parse = max(best_parse, len(packets) / (time.perf_counter() - start))
    return {
        "packets_forwarded_per_s": round(best_router),
        "goal_packets_per_s": GOAL_PACKETS_PER_S,
        "meets_goal": best_router >= GOAL_PACKETS_PER_S,
        "frames_out_per_packet": round(frames_out / len(packets), 2),
        "bare_parse_per_s": round(best_parse),
        "router_over_bare_parse": round(best_router / best_parse, 3),
    }


def bench_memory() -> dict[str, object]:
    rng = random.Random(5)
    speakers = [BitchatIdentity.generate(rng.randbytes) for _ in range(MAX_KNOWN_PEERS)]
    announces = [s.announce(f"phone{i}", int(NOW_S * 1000)) for i, s in enumerate(speakers)]
    packets = _packets(SEEN_MAX_ENTRIES)
    gc.collect()
    tracemalloc.start()
    router, chat = _router(), PublicChat()
    for n, data in enumerate(packets):
        router.handle(FrameReceived(f"link-{n % LINKS}", data), NOW_S)
    for data in announces:
        chat.receive(data)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(router.seen) == SEEN_MAX_ENTRIES
    return {
        "links": LINKS,
        "seen_entries": SEEN_MAX_ENTRIES,
        "chat_peers": MAX_KNOWN_PEERS,
        "added_memory_bytes": used,
        "added_memory_mib": round(used / 2**20, 2),
    }


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    results = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "forwarding": bench_forwarding(_packets(PACKETS)),
        "memory": bench_memory(),
    }
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
