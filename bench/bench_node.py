"""Node benchmarks, written to bench/results/node.json: time to READY and resident memory.

(a) Start to READY: `pigeon node` as a real process (sim radio, PNG display, virtual buttons,
    web page on loopback) with NOTIFY_SOCKET pointing at a socket this script binds; the time
    from spawning the process to the READY=1 datagram, first start (empty data directory) and
    warm starts. Beside it, in the same run, the reference: a bare `python -c pass` spawn, and
    the parts the node pays for before READY (importing the daemon, the self-test table).
(b) Resident memory (VmRSS from /proc) of a single idle `pigeon node` after READY, and of one
    process running the whole `make run` neighbourhood (your node with its web page, three
    relay-only nodes, Robin's node with its scripted owner answering) under steady traffic:
    your node sends Robin a text every TRAFFIC_INTERVAL_S for TRAFFIC_S seconds of real time.
    The router's clock is the wall clock, so simulated time cannot run faster: the load is
    compressed instead (more messages than ten minutes of chat carry) and the message count is
    reported. The reference is a bare interpreter's RSS, measured in the same run.
Run: .venv/bin/python bench/bench_node.py [--traffic-s 600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pigeon.daemon.node import Node
from pigeon.messenger.api import MessageView

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "node.json"
WARM_STARTS = 4
TRAFFIC_S = 600.0  # ten minutes: the span the memory goal is stated for
TRAFFIC_INTERVAL_S = 0.25
READY_TIMEOUT_S = 60.0
DRAIN_S = 20.0


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """VmRSS (or another /proc status field, e.g. the peak VmHWM) of `pid` in MiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    assert match is not None
    return int(match.group(1)) / 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(directory: Path) -> Path:
    path = directory / "node.toml"
    path.write_text(
        f"""[node]
name = "pigeon-bench"
data_dir = "{directory / "data"}"
[radio]
kind = "sim"
[display]
kind = "png"
[buttons]
kind = "virtual"
[web]
host = "127.0.0.1"
https_port = {free_port()}
http_port = {free_port()}
""",
        encoding="utf-8",
    )
    return path


def start_to_ready(config: Path, idle_s: float = 0.0) -> tuple[float, tuple[float, float] | None]:
    """Seconds from spawn to READY=1, and (RSS, peak RSS) after `idle_s` more s (if asked)."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
    ):
        address = str(Path(tmp) / "notify")
        sock.bind(address)
        env = dict(os.environ, NOTIFY_SOCKET=address)
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "pigeon.cli", "node", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            sock.settimeout(READY_TIMEOUT_S)
            while b"READY=1" not in sock.recv(4096):
                pass
            ready_s = time.perf_counter() - started
            memory = None
            if idle_s:
                time.sleep(idle_s)
                memory = rss_mb(process.pid), rss_mb(process.pid, "VmHWM")
        finally:
            process.terminate()
            process.wait(timeout=30)
    return ready_s, memory


def spawn_time(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def bare_rss() -> float:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3)"])
    time.sleep(1.0)
    try:
        return rss_mb(process.pid)
    finally:
        process.kill()
        process.wait()


def import_and_selftest_s() -> dict[str, float]:
    code = (
        "import time,json;t=time.perf_counter();import pigeon.daemon.node;"
        "i=time.perf_counter()-t;from pigeon.daemon.selftest import run_selftest;"
        "r=run_selftest();print(json.dumps({'import_daemon_s':i,'selftest_s':r.duration_s}))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return {k: float(v) for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def measure_startup() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp))
        first, _ = start_to_ready(config)
        warm = [start_to_ready(config)[0] for _ in range(WARM_STARTS)]
        _, idle = start_to_ready(config, idle_s=5.0)
    idle_rss, idle_peak = idle or (0.0, 0.0)
    python_spawn = statistics.median(spawn_time("pass") for _ in range(3))
    parts = [import_and_selftest_s() for _ in range(3)]
    return {
        "first_start_to_ready_s": round(first, 3),
        "warm_start_to_ready_s_median": round(statistics.median(warm), 3),
        "warm_start_to_ready_s_all": [round(w, 3) for w in warm],
        "reference_bare_python_spawn_s": round(python_spawn, 3),
        "ratio_warm_ready_to_bare_python": round(statistics.median(warm) / python_spawn, 1),
        "import_daemon_s_median": round(statistics.median(p["import_daemon_s"] for p in parts), 3),
        "selftest_s_median": round(statistics.median(p["selftest_s"] for p in parts), 3),
        "single_node_idle_rss_mb": round(idle_rss, 1),
        "single_node_peak_rss_mb": round(idle_peak, 1),
        "peak_note": "the peak is the vault unlock: Argon2id takes 64 MiB for a moment",
        "goal_ready_s": 2.0,
    }


async def neighbourhood(traffic_s: float, report: Path) -> None:
    """The child: the `make run` neighbourhood under traffic; writes its figures to `report`."""
    import random
    import signal

    from pigeon.daemon.demo import (
        RELAY_POSITIONS,
        ROBIN_POSITION,
        ScriptedPeer,
        owner_config,
        run_relay_node,
    )
    from pigeon.daemon.node import Node, NodeEnvironment
    from pigeon.daemon.sdnotify import Notifier
    from pigeon.transport.sim import RadioParams, SimMedium

    root = Path(tempfile.mkdtemp(prefix="pigeon-bench-"))
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(3))
    quiet = Notifier({})
    web_ports = (free_port(), free_port())
    relay_url = "ws://127.0.0.1:9/v1"  # no relay server: the uplink stays down (not measured)
    you = Node(
        owner_config(root / "you", "pigeon-you", relay_url, web_ports, screens=True),
        NodeEnvironment(medium, (0.0, 0.0), quiet, selftest=False, page_host="localhost"),
    )
    robin = Node(
        owner_config(root / "robin", "pigeon-robin", relay_url, (1, 2), screens=False),
        NodeEnvironment(medium, ROBIN_POSITION, quiet, selftest=False, web=False),
    )
    peer = ScriptedPeer(robin, you)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with asyncio.TaskGroup() as group:
        runs = [group.create_task(node.run(stop)) for node in (you, robin)]
        extras = [
            group.create_task(run_relay_node(medium, f"relay-{i}", pos))
            for i, pos in enumerate(RELAY_POSITIONS)
        ]
        extras.append(group.create_task(peer.run()))
        figures = await _traffic(you, robin, traffic_s)
        await asyncio.to_thread(report.write_text, json.dumps(figures), encoding="utf-8")
        stop.set()
        for task in extras:
            task.cancel()
    assert [task.result() for task in runs] == [0, 0]


async def _until(predicate: object, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("the neighbourhood did not come up")
        await asyncio.sleep(0.1)


async def _traffic(you: Node, robin: Node, traffic_s: float) -> dict[str, object]:
    await _until(lambda: you.ready.is_set() and robin.ready.is_set())
    await _until(lambda: not you.messenger.is_locked and not robin.messenger.is_locked)
    await _until(lambda: len(robin.messenger.contacts()) == 1)
    contact = you.messenger.add_contact(robin.messenger.own_card_text(), "Robin", time.time())
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < traffic_s:
        you.messenger.send_text(contact.id, f"message {sent} " + "x" * 200, time.time())
        sent += 1
        await asyncio.sleep(TRAFFIC_INTERVAL_S)
    await asyncio.sleep(DRAIN_S)  # let the last ones and their answers arrive
    views = _whole_conversation(you, contact.id)
    delivered = sum(1 for v in views if v.direction == "out" and v.state == "delivered")
    answers = sum(1 for v in views if v.direction == "in")
    return {
        "traffic_real_s": round(time.monotonic() - started, 1),
        "texts_sent": sent,
        "texts_delivered": delivered,
        "answers_received": answers,
        "hops": 4,
    }


def _whole_conversation(node: Node, contact_id: str) -> list[MessageView]:
    """Every message, paging back (the messenger hands out at most 500 at a time)."""
    views: list[MessageView] = []
    before: int | None = None
    while page := node.messenger.conversation(contact_id, before_seq=before, limit=500):
        views[:0] = page
        before = page[0].seq
    return views


def measure_neighbourhood(traffic_s: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "child.json"
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", str(report), "--traffic-s", str(traffic_s)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        samples: list[float] = []
        while child.poll() is None and not report.exists():
            samples.append(rss_mb(child.pid))
            time.sleep(1.0)
        final = rss_mb(child.pid) if child.poll() is None else None
        child.wait(timeout=60)
        figures = json.loads(report.read_text(encoding="utf-8"))
    reference = bare_rss()
    return {
        **figures,
        "neighbourhood_process_rss_mb_final": round(final or samples[-1], 1),
        "neighbourhood_process_rss_mb_peak": round(max(samples), 1),
        "neighbourhood_process_rss_mb_every_10s": [round(x, 1) for x in samples[::10]],
        "reference_bare_python_rss_mb": round(reference, 1),
        "goal_rss_mb": 80,
        "note": "one process holds two owners' full nodes (vault, web page for one), three"
        " relay-only routers and the scripted peer: an upper bound for one node under this"
        " traffic (the single idle node above is the lower bound); its peak is the start,"
        " when both vaults run Argon2id (64 MiB each) at once",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traffic-s", type=float, default=TRAFFIC_S)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(neighbourhood(args.traffic_s, args.child))
        return
    startup = measure_startup()
    print(json.dumps(startup, indent=2), flush=True)
    traffic = measure_neighbourhood(args.traffic_s)
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores (shared, noisy)",
        "python": platform.python_version(),
        "start": startup,
        "memory_under_traffic": traffic,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
