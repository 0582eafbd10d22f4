"""Relay benchmarks, written to bench/results/relay.json, beside a raw aiohttp echo server.

The relay (`pigeon relay`, a real subprocess pinned to one CPU) and the reference (a bare
aiohttp WebSocket echo server, a subprocess pinned to the same CPU) each face a load generator
in a separate process (multiprocessing, spawn), pinned to the other CPU when there is one.
- throughput: pipelined durable deposits of 512-byte envelopes (each answered STORED only
  after its group commit reached the disk with fsync) beside echoed messages of the same frame
  size, same connections and window; the ratio is the figure to trust on a shared machine.
- latency: deposit-to-delivery at a fixed 500 msg/s offered load to authenticated readers that
  acknowledge what they get (p50, p99; the send time travels in the payload).
- connections: WebSocket connections opened and held (each relay connection got its
  challenge), the server's RSS growth per connection, relay beside echo server.
- postgresql (same run): 1, 2 and 4 `pigeon relay` processes sharing one throwaway PostgreSQL
  (initdb into a temporary directory, fsync on, Unix socket), unpinned: durable deposits per
  second spread over all processes; deposit-to-delivery at 500 msg/s with every depositor on
  one process and every reader on another (LISTEN/NOTIFY); 10,000 WebSocket connections held
  across 4 processes, with the processes' RSS growth per connection.
- ratio rounds (same run): SQLite's one process and PostgreSQL's 4 processes measured in turn,
  RATIO_ROUNDS times, with the 64 mailboxes above and with 4,096 (a city's spread, where
  deposit batches of different processes rarely share a mailbox row); the median of the
  rounds' ratios is the figure to read on a machine whose load drifts within a run.
Run: .venv/bin/python bench/bench_relay.py [deposits, default 30000]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import random
import re
import resource
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.relay.pgserver

from tests.relay.pgserver import PgServer, postgres_bin_dir

from pigeon.crypto.signing import SigningKey
from pigeon.relay.protocol import (
    Ack,
    Auth,
    AuthOk,
    Challenge,
    Deposit,
    Envelope,
    Stored,
    decode_server_frame,
    encode,
    read_signed_message,
)

RESULTS = Path(__file__).resolve().parent / "results" / "relay.json"
ENVELOPE_BYTES = 512
CONNECTIONS = 16
WINDOW = 64
MAILBOXES = 64
LATENCY_RATE_PER_S = 500
LATENCY_SECONDS = 8
LATENCY_READERS = 10
HELD_CONNECTIONS = 2_000
PG_PROCESS_COUNTS = (1, 2, 4)
PG_HELD_CONNECTIONS = 10_000
RATIO_ROUNDS = 3
CITY_MAILBOXES = 4_096
BENCH_CONFIG = """
[limits]
mailbox_max_envelopes = 10000000
mailbox_max_bytes = 100000000000
relay_max_bytes = 100000000000
max_connections = 100000
max_connections_per_ip = 100000
ip_connects_per_s = 100000.0
ip_connect_burst = 100000
connection_frames_per_s = 10000000.0
connection_frame_burst = 10000000
ip_deposits_per_s = 10000000.0
ip_deposit_burst = 10000000
ip_deposit_bytes_per_s = 100000000000.0
ip_deposit_byte_burst = 100000000000
max_queued_writes = 1000000
"""
LISTENING = re.compile(rb"(?:relay listening on|ECHO LISTENING) ([\d.]+):(\d+)")


# --- servers ------------------------------------------------------------------------------


def _raise_nofile() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _pin(cpu: int) -> Callable[[], None]:
    def apply() -> None:
        _raise_nofile()
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[cpu % len(cpus)]})

    return apply


def echo_server_main() -> None:
    """A bare aiohttp WebSocket echo server: the reference for what aiohttp itself costs."""

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        async for message in ws:
            await ws.send_bytes(message.data)
        return ws

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/v1", echo)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=4096).start()
        host, port = runner.addresses[0][:2]
        print(f"ECHO LISTENING {host}:{port}", file=sys.stderr, flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


def start_server(
    kind: str, workdir: Path, store: str = "", name: str = ""
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the relay or the echo server; returns it and its ws:// URL. A relay on SQLite and
    the echo server are pinned to CPU 0; relays on PostgreSQL (`store`) run on any CPU."""
    name = name or kind
    log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 - the child writes it
    if kind == "relay":
        config = workdir / "relay.toml"
        config.write_text(BENCH_CONFIG)
        argv = [sys.executable, "-m", "pigeon.cli", "relay", "--config", str(config)]
        argv += ["--listen", "127.0.0.1:0", "--data", str(workdir / "data")]
        argv += ["--store", store] if store else []
    else:
        argv = [sys.executable, __file__, "--echo-server"]
    setup = _raise_nofile if store else _pin(0)
    process = subprocess.Popen(argv, stdout=log, stderr=log, preexec_fn=setup)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = LISTENING.search((workdir / f"{name}.log").read_bytes())
        if found:
            host, port = (part.decode() for part in found.groups())
            return process, f"ws://{host}:{port}/v1"
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{kind} did not start")


def fsync_latency_ms(directory: Path, rounds: int = 200) -> dict[str, float]:
    """p50/p99 of one 4 KiB append + fsync in `directory`: the floor under a durable commit."""
    path = directory / "fsync-probe"
    samples = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(rounds):
            os.write(fd, bytes(4096))
            started = time.perf_counter()
            os.fsync(fd)
            samples.append(1000 * (time.perf_counter() - started))
    finally:
        os.close(fd)
        path.unlink()
    samples.sort()
    return {
        "p50_ms": round(samples[rounds // 2], 2),
        "p99_ms": round(samples[rounds * 99 // 100], 2),
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# --- load generator (runs in its own process) ----------------------------------------------


def loadgen(job: str, url: str, args: dict[str, Any], control: Any, results: Any) -> None:
    """Entry point of the load-generator process."""
    _pin(1)()
    results.put(asyncio.run(_JOBS[job](url, args, control)))


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


async def _connect(session: aiohttp.ClientSession, url: str, relay: bool) -> Any:
    ws = await session.ws_connect(url, compress=0, max_msg_size=0)
    if relay:
        first = decode_server_frame((await ws.receive()).data)
        assert isinstance(first, Challenge)
        ws.challenge = first.challenge  # type: ignore[attr-defined]
    return ws


async def throughput_job(url: str, args: dict[str, Any], control: Any) -> dict[str, Any]:
    relay, total = args["relay"], args["total"]
    urls = args.get("urls", [url])  # connections are spread over every relay process
    keys = [SigningKey.generate().public_key for _ in range(args.get("mailboxes", MAILBOXES))]
    per_connection = total // CONNECTIONS
    async with _session() as session:
        sockets = [await _connect(session, urls[n % len(urls)], relay) for n in range(CONNECTIONS)]

        async def drive(ws: Any, index: int) -> None:
            # Each connection picks its mailboxes at random (seeded), as independent depositors
            # would: in step, all 16 deposited into the same mailbox at once, and on PostgreSQL
            # every process's batch waited for the same mailbox rows. Not a walk by offset
            # either: connection n goes to process n % 4, which would partition the mailboxes.
            rng = random.Random(index)
            walk = [keys[rng.randrange(len(keys))] for _ in range(per_connection)]
            frames = [
                encode(Deposit(n + 1, key, os.urandom(ENVELOPE_BYTES)))
                for n, key in enumerate(walk)
            ]
            outstanding = 0
            sent = 0
            received = 0
            while received < per_connection:
                while outstanding < WINDOW and sent < per_connection:
                    await ws.send_bytes(frames[sent])
                    sent += 1
                    outstanding += 1
                message = await ws.receive()
                if relay:
                    answer = decode_server_frame(message.data)
                    assert isinstance(answer, Stored), answer
                received += 1
                outstanding -= 1

        started = time.perf_counter()
        await asyncio.gather(*(drive(ws, n) for n, ws in enumerate(sockets)))
        elapsed = time.perf_counter() - started
        for ws in sockets:
            await ws.close()
    done = per_connection * CONNECTIONS
    return {"messages": done, "seconds": round(elapsed, 3), "rate_per_s": round(done / elapsed)}


async def latency_job(url: str, args: dict[str, Any], control: Any) -> dict[str, Any]:
    owners = [SigningKey.generate() for _ in range(LATENCY_READERS)]
    latencies: list[float] = []
    total = LATENCY_RATE_PER_S * LATENCY_SECONDS
    read_url = args.get("read_url", url)  # another process's URL: delivery across processes
    async with _session() as session:
        readers = []
        for owner in owners:
            ws = await _connect(session, read_url, True)
            ts = int(time.time() * 1000)
            message = read_signed_message(ws.challenge, read_url, ts, owner.public_key)
            await ws.send_bytes(encode(Auth(owner.public_key, ts, owner.sign(message))))
            assert isinstance(decode_server_frame((await ws.receive()).data), AuthOk)
            readers.append(ws)
        depositors = [await _connect(session, url, True) for _ in range(4)]

        async def read(ws: Any) -> None:
            request_id = 0
            while True:
                frame = decode_server_frame((await ws.receive()).data)
                if isinstance(frame, Envelope):
                    (sent_at,) = struct.unpack_from(">d", frame.ciphertext)
                    latencies.append(time.perf_counter() - sent_at)
                    request_id += 1
                    await ws.send_bytes(encode(Ack(request_id, (frame.envelope_id,))))

        async def answers(ws: Any) -> None:
            while True:
                await ws.receive()

        background = [asyncio.create_task(read(ws)) for ws in readers]
        background += [asyncio.create_task(answers(ws)) for ws in depositors]
        start = time.perf_counter()
        for n in range(total):
            due = start + n / LATENCY_RATE_PER_S
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            payload = struct.pack(">d", time.perf_counter()) + bytes(ENVELOPE_BYTES - 8)
            frame = Deposit(n + 1, owners[n % LATENCY_READERS].public_key, payload)
            await depositors[n % 4].send_bytes(encode(frame))
        offered_s = time.perf_counter() - start
        for _ in range(200):
            if len(latencies) >= total:
                break
            await asyncio.sleep(0.05)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
    latencies.sort()
    return {
        "offered_rate_per_s": round(total / offered_s),
        "delivered": len(latencies),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 2),
        "max_ms": round(1000 * latencies[-1], 2),
        "share_over_50_ms": round(sum(x > 0.05 for x in latencies) / len(latencies), 4),
    }


async def connections_job(url: str, args: dict[str, Any], control: Any) -> dict[str, Any]:
    relay, count = args["relay"], args["count"]
    urls = args.get("urls", [url])
    _raise_nofile()
    gate = asyncio.Semaphore(100)
    async with _session() as session:

        async def one(n: int) -> Any:
            async with gate:
                return await _connect(session, urls[n % len(urls)], relay)

        started = time.perf_counter()
        opened = await asyncio.gather(*(one(n) for n in range(count)), return_exceptions=True)
        held = [ws for ws in opened if not isinstance(ws, BaseException)]
        elapsed = time.perf_counter() - started
        control.put(len(held))  # the parent measures the server's RSS now
        await asyncio.get_running_loop().run_in_executor(None, control.get)
        alive = sum(1 for ws in held if not ws.closed)
        for ws in held:
            await ws.close()
    return {"opened": len(held), "alive_after_hold": alive, "open_seconds": round(elapsed, 2)}


_JOBS = {"throughput": throughput_job, "latency": latency_job, "connections": connections_job}


def run_job(
    job: str, url: str, args: dict[str, Any], on_hold: Callable[[int], None] | None = None
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    to_parent, to_child, results = context.Queue(), context.Queue(), context.Queue()
    control = _Duplex(to_parent, to_child)
    process = context.Process(target=loadgen, args=(job, url, args, control.child(), results))
    process.start()
    if on_hold is not None:
        held = to_parent.get(timeout=300)
        on_hold(held)
        to_child.put("release")
    result: dict[str, Any] = results.get(timeout=300)
    process.join(timeout=30)
    return result


class _Duplex:
    """Two queues seen from the child as one object with put (to parent) and get (from parent)."""

    def __init__(self, up: Any, down: Any) -> None:
        self.up, self.down = up, down

    def child(self) -> _Duplex:
        return self

    def put(self, item: object) -> None:
        self.up.put(item)

    def get(self) -> object:
        return self.down.get()


# --- orchestration ------------------------------------------------------------------------


def measure_server(kind: str, total: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
        workdir = Path(tmp)
        process, url = start_server(kind, workdir)
        relay = kind == "relay"
        try:
            run_job("throughput", url, {"relay": relay, "total": 2_000})  # warm-up
            commits_before = _metric(url, "pigeon_relay_store_commits_total") if relay else 0
            result: dict[str, Any] = {
                "throughput": run_job("throughput", url, {"relay": relay, "total": total})
            }
            if relay:
                commits = _metric(url, "pigeon_relay_store_commits_total") - commits_before
                result["throughput"]["commits"] = commits
                result["throughput"]["deposits_per_commit"] = round(total / max(1, commits), 1)
            if relay:
                time.sleep(1.0)  # let the checkpointer drain the burst's WAL first
                result["latency"] = run_job("latency", url, {})
                result["fsync_reference"] = fsync_latency_ms(workdir)
            time.sleep(0.5)
            before = rss_kib(process.pid)
            held: dict[str, int] = {}

            def on_hold(count: int) -> None:
                time.sleep(1.0)
                held["count"], held["rss_kib"] = count, rss_kib(process.pid)

            conns = run_job(
                "connections", url, {"relay": relay, "count": HELD_CONNECTIONS}, on_hold
            )
            conns["rss_before_kib"] = before
            conns["rss_held_kib"] = held["rss_kib"]
            conns["kib_per_connection"] = round(
                (held["rss_kib"] - before) / max(1, held["count"]), 1
            )
            result["connections"] = conns
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    return result


def measure_postgresql(total: int) -> dict[str, Any]:
    """Relay processes sharing one PostgreSQL: throughput with 1, 2 and 4 processes, delivery
    latency across processes, and 10,000 connections held across 4 processes."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    server = PgServer(bin_dir)
    server.start()
    result: dict[str, Any] = {"throughput": {}}
    try:
        for count in PG_PROCESS_COUNTS:
            with _relays_on(server, count) as (processes, urls):
                run_job("throughput", urls[0], {"relay": True, "total": 2_000, "urls": urls})
                commits = sum(_metric(url, "pigeon_relay_store_commits_total") for url in urls)
                job = {"relay": True, "total": total, "urls": urls}
                measured = run_job("throughput", urls[0], job)
                commits = (
                    sum(_metric(u, "pigeon_relay_store_commits_total") for u in urls) - commits
                )
                measured["commits"] = commits
                measured["deposits_per_commit"] = round(total / max(1, commits), 1)
                result["throughput"][f"{count}_processes"] = measured
                if count == 2:
                    time.sleep(1.0)
                    result["latency_across_processes"] = run_job(
                        "latency", urls[0], {"read_url": urls[1]}
                    )
                if count == 4:
                    result["connections"] = _held_connections(processes, urls)
    finally:
        server.destroy()
    return result


@contextlib.contextmanager
def _relays_on(
    server: PgServer, count: int
) -> Iterator[tuple[list[subprocess.Popen[bytes]], list[str]]]:
    dsn = server.create_database()
    with tempfile.TemporaryDirectory(prefix="bench-pg-relays-") as tmp:
        started = [
            start_server("relay", Path(tmp), store=dsn, name=f"relay{n}") for n in range(count)
        ]
        try:
            yield [p for p, _ in started], [u for _, u in started]
        finally:
            for process, _ in started:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)


def _held_connections(processes: list[subprocess.Popen[bytes]], urls: list[str]) -> dict[str, Any]:
    time.sleep(0.5)
    before = sum(rss_kib(p.pid) for p in processes)
    held: dict[str, int] = {}

    def on_hold(count: int) -> None:
        time.sleep(2.0)
        held["count"], held["rss_kib"] = count, sum(rss_kib(p.pid) for p in processes)

    job = {"relay": True, "count": PG_HELD_CONNECTIONS, "urls": urls}
    conns = run_job("connections", urls[0], job, on_hold)
    conns["processes"] = len(processes)
    conns["rss_before_kib"] = before
    conns["rss_held_kib"] = held["rss_kib"]
    conns["kib_per_connection"] = round((held["rss_kib"] - before) / max(1, held["count"]), 1)
    return conns


def measure_ratio_rounds(total: int) -> dict[str, Any]:
    """SQLite (1 process) and PostgreSQL (4 processes) in turn, with few and many mailboxes."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    server = PgServer(bin_dir)
    server.start()
    rounds: list[dict[str, Any]] = []
    try:
        for _ in range(RATIO_ROUNDS):
            for mailboxes in (MAILBOXES, CITY_MAILBOXES):
                job = {"relay": True, "total": total, "mailboxes": mailboxes}
                sqlite = _sqlite_rate(job)
                with _relays_on(server, 4) as (_, urls):
                    run_job("throughput", urls[0], {**job, "total": 2_000, "urls": urls})
                    pg = run_job("throughput", urls[0], {**job, "urls": urls})["rate_per_s"]
                rounds.append(
                    {
                        "mailboxes": mailboxes,
                        "sqlite_per_s": sqlite,
                        "postgresql_4_processes_per_s": pg,
                        "ratio": round(pg / sqlite, 3),
                    }
                )
    finally:
        server.destroy()
    medians = {
        f"{m}_mailboxes": statistics.median(r["ratio"] for r in rounds if r["mailboxes"] == m)
        for m in (MAILBOXES, CITY_MAILBOXES)
    }
    return {"rounds": rounds, "median_ratio_4_processes_to_sqlite": medians}


def _sqlite_rate(job: dict[str, Any]) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-ratio-") as tmp:
        process, url = start_server("relay", Path(tmp))
        try:
            run_job("throughput", url, {**job, "total": 2_000})
            rate: int = run_job("throughput", url, job)["rate_per_s"]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    return rate


def _commits(urls: list[str]) -> int:
    return sum(_metric(url, "pigeon_relay_store_commits_total") for url in urls)


def _metric(url: str, name: str) -> int:
    http = url.replace("ws://", "http://").removesuffix("/v1")
    with urllib.request.urlopen(f"{http}/metrics", timeout=10) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(name + " "):
                return int(line.split()[-1])
    raise RuntimeError(f"no metric {name}")


def main() -> int:
    if sys.argv[1:] == ["--echo-server"]:
        echo_server_main()
        return 0
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 30_000
    started = time.monotonic()
    relay = measure_server("relay", total)
    echo = measure_server("echo", total)
    postgresql = measure_postgresql(total)
    ratio_rounds = measure_ratio_rounds(total)
    relay_rate = relay["throughput"]["rate_per_s"]
    pg_rates = {k: v["rate_per_s"] for k, v in postgresql["throughput"].items()}
    echo_rate = echo["throughput"]["rate_per_s"]
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg()[0],
            "python": platform.python_version(),
            "note": "2 shared cores, other sessions busy: read ratios, not absolutes",
        },
        "setup": {
            "envelope_bytes": ENVELOPE_BYTES,
            "connections": CONNECTIONS,
            "window_per_connection": WINDOW,
            "mailboxes": MAILBOXES,
            "servers_pinned_to_one_cpu": True,
            "durability": "WAL, synchronous=FULL, group commit; STORED only after commit",
            "postgresql_durability": "fsync=on, synchronous_commit=on; one relay_deposit call"
            " per batch (group commit); STORED only after commit",
            "postgresql_relays_pinned": False,
        },
        "relay": relay,
        "echo_reference": echo,
        "durable_deposits_per_s": relay_rate,
        "echo_messages_per_s": echo_rate,
        "ratio_relay_to_echo": round(relay_rate / echo_rate, 3),
        "deposits_per_commit": relay["throughput"]["deposits_per_commit"],
        "postgresql": postgresql,
        "postgresql_deposits_per_s": pg_rates,
        "postgresql_4_processes_to_sqlite": round(pg_rates["4_processes"] / relay_rate, 3),
        "ratio_rounds": ratio_rounds,
        "postgresql_goals": {
            "4_processes_at_least_sqlite_rate": True,
            "latency_p99_ms_across_processes_at_500_per_s": 50,
            "connections_across_4_processes": PG_HELD_CONNECTIONS,
        },
        "goals": {
            "durable_deposits_per_s": 5000,
            "latency_p99_ms_at_500_per_s": 50,
            "concurrent_connections": 2000,
            "ratio_to_echo": 0.3,
        },
        "seconds": round(time.monotonic() - started, 1),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
