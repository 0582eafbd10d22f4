"""Store benchmarks, written to bench/results/store.json; SQLCipher beside plain SQLite.

(a) Spool insert+remove operations per second: a spool pre-filled with PREFILL envelopes of
    PACKET_BYTES takes batches of BATCH_OPS operations (half inserts of new envelopes, half
    removals of the oldest), each batch one `Spool.apply` transaction, as the router flushes
    its actions once per event-loop turn (64 is the headline; 8 and 256 show how group commit
    scales: under load the daemon's flush window collects more actions per commit).
(b) Vault message appends per second: each message is what the messenger does for one incoming
    envelope (claim the envelope id, save the 1-KiB session state, append a 300-byte message),
    with MESSAGES_PER_TX messages per transaction (a burst, the headline), with 64, and with one
    message per transaction (the unbatched worst case).
Both run through the very same `Spool` / `Vault` code on a SQLCipher database (raw key,
cipher_memory_security ON) and on stdlib sqlite3 with the same pragmas (WAL, synchronous =
FULL, secure_delete), in alternating short rounds on one pinned core; the ratios of medians are
the figures to trust on this shared, noisy machine. Note that this machine's disk acknowledges
an fsync in well under a millisecond; an SD card takes milliseconds, so on a Pi the batch size
matters more than here.
(c) The cost of `cipher_memory_security` (SQLCipher wiping its buffers), which the store keeps
    on: (a) at 64 and (b) at 16 again, in a child process that opens SQLCipher with it off
    (once on, it stays on for a process).
(d) Argon2id (libsodium via pynacl) time per derivation for a few costs, the default included;
    `--argon2-only` runs just this part (to calibrate on a real Pi).
Run: .venv/bin/python bench/bench_store.py [--argon2-only]
"""

from __future__ import annotations

import functools
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.pwhash.argon2id

from pigeon.store.db import Database
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import DEFAULT_ARGON2, Argon2Params, DatabaseKey
from pigeon.store.migrations import SPOOL_SCHEMA, VAULT_SCHEMA, Schema
from pigeon.store.spool_db import DropEnvelope, Spool, SpooledEnvelope, StoreEnvelope
from pigeon.store.vault import Vault
from pigeon.store.vault_records import Direction, Message, MessageState, SessionState

RESULTS = Path(__file__).resolve().parent / "results" / "store.json"
PACKET_BYTES = 600
PREFILL = 5000
BATCH_OPS = 64
MESSAGES_PER_TX = 16
ROUND_S = 1.5
ROUNDS = 5
GOAL_SPOOL_OPS_PER_S = 5000
GOAL_APPENDS_PER_S = 2000
PI_SLOWDOWN = (5.0, 8.0)  # Cortex-A53 at 1 GHz, reference C code, vs this x86 core with SIMD
ARGON2_COSTS = [
    Argon2Params(3, 32 << 20),
    Argon2Params(3, 64 << 20),
    Argon2Params(4, 64 << 20),
    Argon2Params(5, 64 << 20),
    Argon2Params(6, 64 << 20),
    Argon2Params(8, 64 << 20),
    Argon2Params(3, 128 << 20),
]


def plain_database(path: Path, schema: Schema) -> Database:
    """The reference: stdlib sqlite3 with the store's pragmas and schema, no encryption."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in (
        "journal_mode = WAL",
        "synchronous = FULL",
        "foreign_keys = ON",
        "secure_delete = ON",
        "temp_store = MEMORY",
    ):
        connection.execute(f"PRAGMA {pragma}")
    database = Database(path, connection, sqlite3.Error)
    with database.transaction() as tx:
        for migration in schema.migrations:
            for statement in migration.statements:
                tx.execute(statement)
    return database


class SpoolWorkload:
    """Steady-state churn: each batch inserts ops/2 new envelopes and removes the oldest ops/2."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.next_id = 0
        self.stored: deque[bytes] = deque()
        spool.apply([StoreEnvelope(self._envelope()) for _ in range(PREFILL)])

    def _envelope(self) -> SpooledEnvelope:
        self.next_id += 1
        packet_id = os.urandom(16)  # mesh packet ids are hashes: index inserts scatter
        self.stored.append(packet_id)
        return SpooledEnvelope(
            packet_id=packet_id,
            recipient_tag=os.urandom(8),
            depositor=f"peer-{self.next_id % 5}",
            priority=self.next_id % 3,
            expires_at=1e12,
            receipt_hash=os.urandom(16),
            packet=os.urandom(PACKET_BYTES),
            stored_at=float(self.next_id),
        )

    def batch(self, ops: int) -> int:
        """One transaction of `ops` operations; returns `ops`."""
        half = ops // 2
        removals = [DropEnvelope(self.stored.popleft()) for _ in range(half)]
        inserts = [StoreEnvelope(self._envelope()) for _ in range(half)]
        result = self.spool.apply([*inserts, *removals])
        assert (result.stored, result.dropped) == (half, half)
        return 2 * half


class VaultWorkload:
    """What the messenger writes per incoming message: claim, session step, history append."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.count = 0
        with vault.transaction() as tx:
            tx.add_contact("bench", "Bench", os.urandom(200), 0.0)
        self.state = os.urandom(1024)

    def batch(self, messages: int) -> int:
        """One transaction of `messages` appends; returns `messages`."""
        with self.vault.transaction() as tx:
            for _ in range(messages):
                self.count += 1
                at = float(self.count)
                tx.claim_incoming(self.count.to_bytes(16, "big"), at)
                tx.save_session("bench", SessionState(1, self.state, at))
                tx.append_message(
                    Message(
                        f"m{self.count}",
                        "bench",
                        Direction.IN,
                        MessageState.RECEIVED,
                        at,
                        at,
                        body="x" * 300,
                    )
                )
        return messages


def rate(work: Callable[[], int], seconds: float) -> tuple[float, float]:
    """Operations per wall-clock second and per CPU second of repeated `work`."""
    done = 0
    start, start_cpu = time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - start) < seconds:
        done += work()
    return done / elapsed, done / max(time.process_time() - start_cpu, 1e-9)


def compare(contenders: dict[str, Callable[[], int]]) -> dict[str, Any]:
    """Alternating rounds of each contender; medians and the ratio of the first to the second.

    Wall-clock rates include fsync waits (the real cost); CPU rates leave out the waits that
    other processes add on this shared machine and show the cost of encryption more steadily.
    """
    wall: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(ROUNDS):
        for name, work in contenders.items():
            per_s, per_cpu_s = rate(work, ROUND_S / len(contenders))
            wall[name].append(per_s)
            cpu[name].append(per_cpu_s)
    medians = {name: round(statistics.median(values)) for name, values in wall.items()}
    cpu_medians = {name: round(statistics.median(values)) for name, values in cpu.items()}
    ours, reference = list(medians.values())
    ours_cpu, reference_cpu = list(cpu_medians.values())
    return {
        "per_s_median": medians,
        "per_s_rounds": {name: [round(v) for v in values] for name, values in wall.items()},
        "sqlcipher_over_plain_sqlite": round(ours / reference, 3),
        "per_cpu_s_median": cpu_medians,
        "sqlcipher_over_plain_sqlite_cpu": round(ours_cpu / reference_cpu, 3),
    }


def bench_memory_security_off(root: Path) -> dict[str, Any]:
    """(a) and (b) at their headline batch sizes with SQLCipher's memory wiping off."""

    def sqlcipher(path: Path, schema: Schema) -> Database:
        key = DatabaseKey(os.urandom(32))
        return Database.open(path, key, schema, create=True, memory_security=False)

    spool = SpoolWorkload(Spool(sqlcipher(root / "spool.db", SPOOL_SCHEMA)))
    spool_reference = SpoolWorkload(Spool(plain_database(root / "plain-spool.db", SPOOL_SCHEMA)))
    vault = VaultWorkload(Vault(sqlcipher(root / "vault.db", VAULT_SCHEMA), ephemeral=False))
    vault_reference = VaultWorkload(
        Vault(plain_database(root / "plain-vault.db", VAULT_SCHEMA), ephemeral=False)
    )
    return {
        f"spool_batch_{BATCH_OPS}": compare(
            {
                "sqlcipher_memory_security_off": functools.partial(spool.batch, BATCH_OPS),
                "plain_sqlite": functools.partial(spool_reference.batch, BATCH_OPS),
            }
        ),
        f"vault_batch_{MESSAGES_PER_TX}": compare(
            {
                "sqlcipher_memory_security_off": functools.partial(vault.batch, MESSAGES_PER_TX),
                "plain_sqlite": functools.partial(vault_reference.batch, MESSAGES_PER_TX),
            }
        ),
    }


def memory_security_off_in_child() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--memory-security-off"],
        capture_output=True,
        check=True,
        text=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def bench_spool(root: Path) -> dict[str, Any]:
    ours = SpoolWorkload(open_spool(DataDir(root / "sqlcipher")))
    reference = SpoolWorkload(Spool(plain_database(root / "plain-spool.db", SPOOL_SCHEMA)))
    figures: dict[str, Any] = {"batch_ops": BATCH_OPS, "packet_bytes": PACKET_BYTES}
    for ops in (8, BATCH_OPS, 256):
        figures[f"batch_{ops}"] = compare(
            {
                "sqlcipher": functools.partial(ours.batch, ops),
                "plain_sqlite": functools.partial(reference.batch, ops),
            }
        )
    ours.spool.close()
    reference.spool.close()
    return figures


def bench_vault(root: Path) -> dict[str, Any]:
    keeper = VaultKeeper(DataDir(root / "sqlcipher"), argon2=Argon2Params(1, 8192))
    ours = VaultWorkload(keeper.initialise("bench passphrase"))
    reference = VaultWorkload(
        Vault(plain_database(root / "plain-vault.db", VAULT_SCHEMA), ephemeral=False)
    )
    figures: dict[str, Any] = {"messages_per_tx": MESSAGES_PER_TX}
    for messages in (1, MESSAGES_PER_TX, 64):
        figures[f"batch_{messages}"] = compare(
            {
                "sqlcipher": functools.partial(ours.batch, messages),
                "plain_sqlite": functools.partial(reference.batch, messages),
            }
        )
    keeper.lock()
    reference.vault.close()
    return figures


def argon2_seconds(params: Argon2Params, repeats: int = 5) -> float:
    """CPU seconds of the fastest of `repeats` derivations.

    libsodium's Argon2id runs on one thread, so its CPU time is its wall time on an idle core;
    CPU time leaves out the waits this shared machine adds.
    """
    times = []
    for _ in range(repeats):
        start = time.process_time()
        nacl.pwhash.argon2id.kdf(
            32,
            b"benchmark passphrase",
            os.urandom(16),
            opslimit=params.opslimit,
            memlimit=params.memlimit_bytes,
        )
        times.append(time.process_time() - start)
    return min(times)


def bench_argon2() -> dict[str, Any]:
    rows = []
    for params in ARGON2_COSTS:
        seconds = argon2_seconds(params)
        rows.append(
            {
                "opslimit": params.opslimit,
                "memlimit_mib": params.memlimit_bytes >> 20,
                "here_cpu_s": round(seconds, 3),
                "pi_zero_2w_estimate_s": [round(seconds * f, 2) for f in PI_SLOWDOWN],
                "default": params == DEFAULT_ARGON2,
            }
        )
    return {"pi_slowdown_factor_assumed": list(PI_SLOWDOWN), "costs": rows}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with Path("/proc/cpuinfo").open() as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite_stdlib": sqlite3.sqlite_version,
        "load_average_at_start": os.getloadavg(),
    }


def main(mode: str | None) -> None:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    if mode == "--memory-security-off":
        with tempfile.TemporaryDirectory(dir=RESULTS.parent.parent) as temporary:
            print(json.dumps(bench_memory_security_off(Path(temporary))))
        return
    argon2_only = mode == "--argon2-only"
    results: dict[str, Any] = {"machine": machine()}
    if not argon2_only:
        results["memory_security_off"] = memory_security_off_in_child()
        with tempfile.TemporaryDirectory(dir=RESULTS.parent.parent) as temporary:
            root = Path(temporary)
            results["spool_insert_remove"] = bench_spool(root / "spool")
            results["vault_message_append"] = bench_vault(root / "vault")
        spool_rate = results["spool_insert_remove"][f"batch_{BATCH_OPS}"]["per_s_median"]
        vault_rate = results["vault_message_append"][f"batch_{MESSAGES_PER_TX}"]["per_s_median"]
        results["goals"] = {
            "spool_ops_per_s": GOAL_SPOOL_OPS_PER_S,
            "spool_reached": spool_rate["sqlcipher"] >= GOAL_SPOOL_OPS_PER_S,
            "vault_appends_per_s": GOAL_APPENDS_PER_S,
            "vault_reached": vault_rate["sqlcipher"] >= GOAL_APPENDS_PER_S,
        }
    results["argon2id"] = bench_argon2()
    text = json.dumps(results, indent=2)
    if not argon2_only:
        RESULTS.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
