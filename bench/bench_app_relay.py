"""The Pigeon app's relay protocol on `pigeon relay` (/ws), beside our own (/v1), in one run.

Writes the key "app_relay_ws" of bench/results/pigeon_app.json (other keys are kept). One real
`pigeon relay` subprocess pinned to one CPU (bench_relay.py's server and limits) faces a load
generator in a separate process pinned to the other CPU. Rounds alternate: pipelined durable
/v1 DEPOSITs of 512-byte envelopes, then pipelined /ws `publish` frames of the same 512 bytes
(base64 in JSON), same connections and window, each answered only after its group commit
reached the disk with fsync. The ratio app/ours is the figure to trust on a shared machine.
Run: .venv/bin/python bench/bench_app_relay.py [publishes per round, default 20000]
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing
import os
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench_relay import (
    CONNECTIONS,
    ENVELOPE_BYTES,
    MAILBOXES,
    WINDOW,
    _pin,
    start_server,
    throughput_job,
)
from pigeon.crypto.signing import SigningKey

RESULTS = Path(__file__).resolve().parent / "results" / "pigeon_app.json"
ROUNDS = 2


async def app_throughput_job(url: str, args: dict[str, Any], control: Any) -> dict[str, Any]:
    """Pipelined /ws publishes; replies come in request order, each after its commit."""
    total = args["total"]
    keys = [SigningKey.generate().public_key.hex() for _ in range(MAILBOXES)]
    per_connection = total // CONNECTIONS
    ws_url = url.removesuffix("/v1") + "/ws"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        sockets = [
            await session.ws_connect(ws_url, compress=0, max_msg_size=0) for _ in range(CONNECTIONS)
        ]

        async def drive(ws: Any) -> None:
            frames = [
                json.dumps(
                    {
                        "type": "publish",
                        "recipient": keys[n % MAILBOXES],
                        "ciphertext": base64.b64encode(os.urandom(ENVELOPE_BYTES)).decode(),
                    }
                )
                for n in range(per_connection)
            ]
            outstanding = sent = received = 0
            while received < per_connection:
                while outstanding < WINDOW and sent < per_connection:
                    await ws.send_str(frames[sent])
                    sent += 1
                    outstanding += 1
                answer = json.loads((await ws.receive()).data)
                assert answer["type"] == "published", answer
                received += 1
                outstanding -= 1

        started = time.perf_counter()
        await asyncio.gather(*(drive(ws) for ws in sockets))
        elapsed = time.perf_counter() - started
        for ws in sockets:
            await ws.close()
    done = per_connection * CONNECTIONS
    return {"messages": done, "seconds": round(elapsed, 3), "rate_per_s": round(done / elapsed)}


_JOBS = {"v1": throughput_job, "app": app_throughput_job}


def _loadgen(job: str, url: str, args: dict[str, Any], results: Any) -> None:
    _pin(1)()
    results.put(asyncio.run(_JOBS[job](url, args, None)))


def run_job(job: str, url: str, total: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    args = {"relay": True, "total": total}
    process = context.Process(target=_loadgen, args=(job, url, args, results))
    process.start()
    result: dict[str, Any] = results.get(timeout=600)
    process.join(timeout=30)
    return result


def main() -> int:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    started = time.monotonic()
    load_at_start = os.getloadavg()[0]
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-app-relay-") as tmp:
        process, url = start_server("relay", Path(tmp))
        try:
            run_job("v1", url, 2_000)  # warm-up
            run_job("app", url, 2_000)
            for _ in range(ROUNDS):
                rounds.append({"v1": run_job("v1", url, total), "app": run_job("app", url, total)})
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    v1_rate = round(sum(r["v1"]["rate_per_s"] for r in rounds) / ROUNDS)
    app_rate = round(sum(r["app"]["rate_per_s"] for r in rounds) / ROUNDS)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "python": platform.python_version(),
            "note": "2 shared cores, other helpers busy: read the ratio, not absolutes",
        },
        "setup": {
            "envelope_bytes": ENVELOPE_BYTES,
            "connections": CONNECTIONS,
            "window_per_connection": WINDOW,
            "mailboxes": MAILBOXES,
            "server": "one `pigeon relay` process pinned to one CPU, both endpoints",
            "durability": "WAL, synchronous=FULL, group commit; answered only after commit",
        },
        "rounds": rounds,
        "v1_deposits_per_s": v1_rate,
        "app_publishes_per_s": app_rate,
        "ratio_app_to_v1": round(app_rate / v1_rate, 3),
        "seconds": round(time.monotonic() - started, 1),
    }
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["app_relay_ws"] = report
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
