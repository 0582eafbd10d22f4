"""The node's own cost per link frame on a channel, written to bench/results/channel.json.

Two ends of a real SEQPACKET socket pair (AF_UNIX: the kernel's part is a memcpy, not a radio)
run the code a link between nodes runs: a `LinkWriter` without a pacer feeding `l2cap.Channel`
on one end, `Channel` reading and `decode_link_frame` parsing on the other, in one event loop.
The rate is the ceiling the node's process puts on a link on this machine, beside the radio's
(about 80 kB/s on BLE's 1M PHY): the wider the gap, the less the process matters.
Run: .venv/bin/python bench/bench_channel.py [frames, default 50000]
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import sys
import time
from pathlib import Path

from pigeon.transport.base import Busy
from pigeon.transport.ble.gatt import (
    CHANNEL_FRAME_LIMIT,
    Data,
    decode_link_frame,
    encode_link_frame,
)
from pigeon.transport.ble.l2cap import Channel
from pigeon.transport.ble.linkwriter import LinkWriter

RESULTS = Path(__file__).resolve().parent / "results" / "channel.json"
TAG = b"\x01\x02\x03"


async def run(frames: int, size: int) -> dict[str, float]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    done = asyncio.Event()
    received = [0]

    def on_value(value: bytes) -> None:
        decode_link_frame(value)
        received[0] += 1
        if received[0] == frames:
            done.set()

    sender = Channel(ours, "00:00:00:00:00:01", lambda value: None, lambda reason: None)
    receiver = Channel(theirs, "00:00:00:00:00:02", on_value, lambda reason: None)
    writer = LinkWriter(sender.send, (EOFError,), None, time.monotonic, "bench", print)
    writer.start()
    body = os.urandom(size)
    start = time.perf_counter()
    for _ in range(frames):
        while True:
            try:
                writer.offer(encode_link_frame(Data(TAG, body)))
                break
            except Busy:
                await asyncio.sleep(0)
    await done.wait()
    seconds = time.perf_counter() - start
    await writer.stop()
    sender.close()
    receiver.close()
    return {
        "frames": frames,
        "frame_bytes": size,
        "seconds": round(seconds, 3),
        "frames_per_s": round(frames / seconds),
        "bytes_per_s": round(frames * size / seconds),
    }


def main() -> None:
    frames = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg()[0],
            "python": platform.python_version(),
            "note": "one core's work for both ends of the link; read it against the radio's rate",
        },
        "channel_frames": asyncio.run(run(frames, CHANNEL_FRAME_LIMIT)),
        "gatt_sized_frames": asyncio.run(run(frames, 244)),
        "radio_reference_bytes_per_s": 80_000,
    }
    results["process_ceiling_over_radio"] = round(
        results["channel_frames"]["bytes_per_s"] / results["radio_reference_bytes_per_s"], 1
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
