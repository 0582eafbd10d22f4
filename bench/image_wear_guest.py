"""SD-card wear inside the flashed image (run by image/guest-wear.sh under QEMU, as root).

Counts bytes written to the root file system's block device from the kernel's own counter
(sectors written, field 7 of /sys/dev/block/M:m/stat; 512-byte units whatever the device):
(a) idle: the running node, nothing sent, over `--idle-s` seconds of guest time, scaled to an
    hour; with the processes that wrote in that window (/proc/PID/io write_bytes) named and,
    with `--trace`, the kernel's own account of the window (bench/image_wear_trace.py);
(b) per 1,000 envelopes relayed: the spool as the daemon drives it (pigeon.daemon.spool_sync
    persists once a minute), at 1,000 envelopes an hour: 60 batches that each store 17 new
    envelopes and drop the 17 handed on in the minute before, in a spool file of its own;
(c) per 1,000 texts: the vault as the owner's endpoint drives it, one durable transaction when a
    text is written (history + outbox) and one when it is delivered (state + outbox removed).
Each figure is taken after `sync`, so it includes the ext4 journal and the writeback of every
dirty page. Prints one JSON object on its last line.
Run (guest): /opt/pigeon/venv/bin/python image_wear_guest.py --idle-s 600 --data-dir DIR
[--idle-only] [--trace FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import image_wear_trace as trace
from pigeon.store.keys import DatabaseKey
from pigeon.store.spool_db import DropEnvelope, Spool, SpooledEnvelope, StoreEnvelope
from pigeon.store.vault import Vault
from pigeon.store.vault_records import Direction, Message, MessageState, OutboxEntry

SECTOR_BYTES = 512
ENVELOPE_BYTES = 640  # a padded text envelope as the mesh carries it
ENVELOPES_PER_SYNC = 17  # 1,000 an hour at the daemon's one persist a minute
SYNCS = 60
TEXTS = 1000


def sectors_written(path: Path) -> int:
    """Sectors written so far to the block device holding `path` (after a sync)."""
    os.sync()
    dev = os.stat(path).st_dev
    stat = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}/stat").read_text().split()
    return int(stat[6])


def process_writes() -> dict[str, int]:
    """Bytes each command has caused to be written so far (/proc/PID/io), summed by name."""
    totals: dict[str, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            comm = (proc / "comm").read_text().strip()
            io = (proc / "io").read_text()
        except OSError:
            continue
        for line in io.splitlines():
            if line.startswith("write_bytes:"):
                totals[comm] = totals.get(comm, 0) + int(line.split()[1])
    return totals


def measured(root: Path, work: Callable[[], None]) -> int:
    """Bytes written to `root`'s device while `work` ran."""
    before = sectors_written(root)
    work()
    return (sectors_written(root) - before) * SECTOR_BYTES


def idle(root: Path, seconds: float, trace_out: Path | None) -> dict[str, object]:
    """The idle node's writes over `seconds`, scaled to an hour, and who wrote them.

    With `trace_out`, the window is traced and the raw trace is written there (after the count).
    """
    traced = trace_out is not None and trace.available()
    if traced:
        os.sync()  # what was dirty before the window is written before the trace starts
        trace.start()
    procs_before = process_writes()
    written = measured(root, lambda: time.sleep(seconds))
    procs_after = process_writes()
    events = None
    if traced and trace_out is not None:
        lines = trace.stop()
        trace_out.write_text("\n".join(lines) + "\n")
        events = trace.parse(lines, trace.target_of(root))
    writers = {
        name: procs_after[name] - procs_before.get(name, 0)
        for name in procs_after
        if procs_after[name] > procs_before.get(name, 0)
    }
    result: dict[str, object] = {
        "window_s": seconds,
        "bytes": written,
        "bytes_per_hour": round(written * 3600 / seconds),
        "writers_bytes": dict(sorted(writers.items(), key=lambda kv: -kv[1])),
    }
    if events is not None:
        result["trace"] = trace.summary(events, trace.paths_of(Path("/"), events.inodes()))
    return result


def spool_load(path: Path) -> None:
    """1,000 envelopes through a spool file as the daemon's once-a-minute persist would."""
    spool = Spool.open(path, DatabaseKey(secrets.token_bytes(32)))
    previous: list[bytes] = []
    for _ in range(SYNCS):
        now = time.time()
        batch = [
            SpooledEnvelope(
                packet_id=secrets.token_bytes(16),
                recipient_tag=secrets.token_bytes(8),
                depositor="mesh",
                priority=1,
                expires_at=now + 86400,
                receipt_hash=None,
                packet=secrets.token_bytes(ENVELOPE_BYTES),
                stored_at=now,
            )
            for _ in range(ENVELOPES_PER_SYNC)
        ]
        ops = [StoreEnvelope(e) for e in batch] + [DropEnvelope(p) for p in previous]
        spool.apply(ops)
        previous = [e.packet_id for e in batch]
    spool.close()


def vault_load(path: Path) -> None:
    """1,000 texts written and delivered, each step one durable vault transaction."""
    vault = Vault.open(path, DatabaseKey(secrets.token_bytes(32)), create=True)
    with vault.transaction() as tx:
        tx.add_contact("robin", "Robin", b"card", time.time())
    for n in range(TEXTS):
        now = time.time()
        message_id, envelope_id = f"m{n}", secrets.token_bytes(16)
        with vault.transaction() as tx:
            tx.append_message(
                Message(message_id, "robin", Direction.OUT, MessageState.QUEUED, now, now, "hi")
            )
            tx.enqueue(
                OutboxEntry(
                    envelope_id,
                    "robin",
                    message_id,
                    1,
                    secrets.token_bytes(ENVELOPE_BYTES),
                    now,
                    now + 86400,
                    now,
                )
            )
        with vault.transaction() as tx:
            tx.set_message_state(message_id, MessageState.DELIVERED, now)
            tx.remove_from_outbox(envelope_id)
    vault.close()


def main() -> None:
    """Measure and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-s", type=float, default=600.0)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--idle-only", action="store_true", help="skip the envelopes and texts")
    parser.add_argument("--trace", type=Path, help="trace the idle window, raw trace to this file")
    args = parser.parse_args()
    data: Path = args.data_dir
    data.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {}
    if args.idle_s > 0:
        result["idle"] = idle(data, args.idle_s, args.trace)
    if args.idle_only:
        print(json.dumps(result, sort_keys=True))
        return
    result["bytes_per_1000_envelopes"] = measured(data, lambda: spool_load(data / "wear-spool.db"))
    result["bytes_per_1000_texts"] = measured(data, lambda: vault_load(data / "wear-vault.db"))
    for leftover in data.glob("wear-*"):
        leftover.unlink()
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
