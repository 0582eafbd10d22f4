"""Bytes written to the card per text, on the host, written to bench/results/card_writes.json.

Owner A sends TEXTS texts of 300 characters to B over an established session; B receives each
(one vault transaction) and A takes B's receipt (one more): the messenger's own path with real
SQLCipher vaults, synchronous = FULL. Around each step the process's /proc/self/io counters are
read: `wchar` (bytes handed to write/pwrite: WAL frames, checkpoints) and `write_bytes` (bytes
the kernel sent to the block device for this process: page-cache blocks, what a card sees before
the file system's own journal). "before" makes the vaults with SQLCipher's default 4 KiB pages
(every vault made before VAULT_PAGE_BYTES), "after" with VAULT_PAGE_BYTES; same run, same disk.
The data directory must be on a real disk (not tmpfs, where write_bytes stays 0).
Run: .venv/bin/python bench/bench_card_writes.py [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from pigeon.messenger.api import Messenger
from pigeon.store.db import SQLCIPHER_DEFAULT_PAGE_BYTES
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import Argon2Params
from pigeon.store.vault import VAULT_PAGE_BYTES

TEXTS = 200
TEXT = "x" * 300
T0 = 20_000 * 86_400 + 6 * 3600
CHEAP = Argon2Params(opslimit=1, memlimit_bytes=8192)
RESULT = Path(__file__).resolve().parent / "results" / "card_writes.json"


@dataclass
class Io:
    """The /proc/self/io counters this benchmark reads."""

    wchar: int = 0
    write_bytes: int = 0

    @classmethod
    def now(cls) -> Io:
        fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
        return cls(int(fields["wchar"]), int(fields["write_bytes"]))

    def __sub__(self, other: Io) -> Io:
        return Io(self.wchar - other.wchar, self.write_bytes - other.write_bytes)

    def __add__(self, other: Io) -> Io:
        return Io(self.wchar + other.wchar, self.write_bytes + other.write_bytes)


def _endpoint(root: Path, seed: int, page_bytes: int) -> Messenger:
    data = DataDir(root)
    keeper = VaultKeeper(data, argon2=CHEAP, page_bytes=page_bytes)
    messenger = Messenger(keeper, open_spool(data), rng=random.Random(seed).randbytes)
    messenger.initialise("bench", T0)
    return messenger


def _pair(root: Path, page_bytes: int) -> tuple[Messenger, Messenger, str]:
    a, b = _endpoint(root / "a", 1, page_bytes), _endpoint(root / "b", 2, page_bytes)
    b_id = a.add_contact(b.own_card_text(), "B", T0).id
    b.add_contact(a.own_card_text(), "A", T0)
    a.send_text(b_id, "hello", T0)
    packets, side = a.take_outgoing(), (a, b)
    while packets:  # handshake and the first message
        side = (side[1], side[0])
        packets = side[0].handle_packets(packets, T0)
    return a, b, b_id


def measure(root: Path, page_bytes: int) -> dict[str, float]:
    """Per text: bytes of the sender (send + receipt) and of the receiver, and time."""
    a, b, b_id = _pair(root, page_bytes)
    sender, receiver = Io(), Io()
    started = time.perf_counter()
    for n in range(TEXTS):
        now = T0 + 10 + n
        before = Io.now()
        a.send_text(b_id, TEXT, now)
        packets = a.take_outgoing()
        sent = Io.now()
        replies = b.handle_packets(packets, now)
        received = Io.now()
        a.handle_packets(replies, now)
        done = Io.now()
        sender += (sent - before) + (done - received)
        receiver += received - sent
    elapsed = time.perf_counter() - started
    assert len(a.conversation(b_id, limit=TEXTS + 1)) == TEXTS + 1  # every text arrived
    return {
        "page_bytes": page_bytes,
        "sender_wchar_per_text": sender.wchar / TEXTS,
        "sender_write_bytes_per_text": sender.write_bytes / TEXTS,
        "receiver_wchar_per_text": receiver.wchar / TEXTS,
        "receiver_write_bytes_per_text": receiver.write_bytes / TEXTS,
        "write_bytes_per_text_both_ends": (sender.write_bytes + receiver.write_bytes) / TEXTS,
        "ms_per_text_both_ends": elapsed * 1000 / TEXTS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"), help="on a real disk")
    args = parser.parse_args()
    result: dict[str, object] = {
        "texts": TEXTS,
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    figures: dict[str, dict[str, float]] = {}
    for name, page_bytes in (("before", SQLCIPHER_DEFAULT_PAGE_BYTES), ("after", VAULT_PAGE_BYTES)):
        with tempfile.TemporaryDirectory(dir=args.dir) as root:
            figures[name] = measure(Path(root), page_bytes)
    result.update(figures)
    before, after = figures["before"], figures["after"]
    key = "write_bytes_per_text_both_ends"
    result["after_over_before"] = round(after[key] / before[key], 3)
    RESULT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
