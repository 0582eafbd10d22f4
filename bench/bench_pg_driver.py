"""asyncpg against psycopg 3 on the relay's own statements, written to bench/results/pg_driver.json.

Each driver gets a fresh database with the relay's schema on one throwaway PostgreSQL (fsync
on, Unix socket) and runs, on one connection in autocommit as `PgStore` does:
- deposit batches: `relay_deposit` with 200 envelopes of 512 bytes (arrays in, a row each out),
- pages: the reader's `pending` query returning 64 envelopes,
timing each call (p50, p99) and the client process's CPU per call, which is what a relay
process spends of its core. Run: .venv/bin/python bench/bench_pg_driver.py
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.relay.pgserver

from tests.relay.pgserver import PgServer, postgres_bin_dir

from pigeon.relay import pg_schema

RESULTS = Path(__file__).resolve().parent / "results" / "pg_driver.json"
BATCH = 200
ENVELOPE_BYTES = 512
ROUNDS = 60
PAGE = 64
MAILBOXES = 16
BIG = 10**12

PENDING = (
    "SELECT seq, envelope_id, ciphertext, deposited_s FROM relay_envelopes"
    " WHERE mailbox = {0} AND seq > {1} AND deposited_s >= {2} ORDER BY seq LIMIT {3}"
)
DEPOSIT = "SELECT * FROM relay_deposit({0}, {1}, {2}, {3}, {4}, {5}, {6})"


def batch_args(round_number: int) -> list[Any]:
    keys = [bytes([n]) * 32 for n in range(MAILBOXES)]
    base = round_number * BATCH
    return [
        [keys[n % MAILBOXES] for n in range(BATCH)],
        [(base + n).to_bytes(16, "big") for n in range(BATCH)],
        [os.urandom(ENVELOPE_BYTES) for _ in range(BATCH)],
        [0] * BATCH,
        [BIG] * BATCH,
        [BIG] * BATCH,
        [BIG] * BATCH,
    ]


async def timed(call: Callable[[int], Awaitable[int]], rounds: int) -> dict[str, float]:
    samples: list[float] = []
    cpu_before = time.process_time()
    for n in range(rounds):
        started = time.perf_counter()
        got = await call(n)
        samples.append(1000 * (time.perf_counter() - started))
        assert got > 0, got
    cpu_ms = 1000 * (time.process_time() - cpu_before) / rounds
    samples.sort()
    return {
        "p50_ms": round(samples[len(samples) // 2], 2),
        "p99_ms": round(samples[len(samples) * 99 // 100], 2),
        "client_cpu_ms_per_call": round(cpu_ms, 3),
    }


async def with_asyncpg(dsn: str) -> dict[str, Any]:
    db = await asyncpg.connect(dsn)
    await db.execute(pg_schema.MIGRATIONS[0])
    deposit = DEPOSIT.format(*(f"${n}" for n in range(1, 8)))
    pending = PENDING.format("$1", "$2", "$3", "$4")

    async def one_deposit(n: int) -> int:
        return len(await db.fetch(deposit, *batch_args(n)))

    async def one_page(n: int) -> int:
        return len(await db.fetch(pending, bytes([n % MAILBOXES]) * 32, 0, 0, PAGE))

    result = {"deposit_batch": await timed(one_deposit, ROUNDS)}
    result["page"] = await timed(one_page, ROUNDS * 4)
    await db.close()
    return result


async def with_psycopg(dsn: str) -> dict[str, Any]:
    db = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    await db.execute(pg_schema.MIGRATIONS[0].replace("%", "%%"))
    deposit = DEPOSIT.format(*(["%s"] * 7))
    pending = PENDING.format("%s", "%s", "%s", "%s")

    async def one_deposit(n: int) -> int:
        cursor = await db.execute(deposit, batch_args(n), prepare=True)
        return len(await cursor.fetchall())

    async def one_page(n: int) -> int:
        cursor = await db.execute(pending, (bytes([n % MAILBOXES]) * 32, 0, 0, PAGE), prepare=True)
        return len(await cursor.fetchall())

    result = {"deposit_batch": await timed(one_deposit, ROUNDS)}
    result["page"] = await timed(one_page, ROUNDS * 4)
    await db.close()
    return result


def main() -> int:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed: apt-get install postgresql")
    server = PgServer(bin_dir)
    server.start()
    try:
        drivers = {
            "asyncpg": asyncio.run(with_asyncpg(server.create_database())),
            "psycopg": asyncio.run(with_psycopg(server.create_database())),
        }
    finally:
        server.destroy()
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg()[0],
            "python": platform.python_version(),
            "note": "2 shared cores, other sessions busy: compare the drivers, not absolutes",
        },
        "setup": {
            "batch": BATCH,
            "envelope_bytes": ENVELOPE_BYTES,
            "page": PAGE,
            "versions": {"asyncpg": asyncpg.__version__, "psycopg": psycopg.__version__},
        },
        "drivers": drivers,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
