"""Cost of queueing one text for a contact without a session, at a short and a long queue.

Owner A has added two contacts' cards but no session is up (they never answer), so every text
waits for the handshake; SHORT texts wait for one contact and LONG for the other. Measured, with
sends to the two alternating so both see the same load: the median wall time of one
`send_text` over SAMPLES sends to each, and the vault pages it wrote (WAL frames). Before the
waiting list left the session record, a send rewrote the whole list: 5x slower by 5,000.
Written to bench/results/queue.json. Run: .venv/bin/python bench/bench_queue.py
"""

from __future__ import annotations

import json
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pigeon.messenger.api import Messenger
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import Argon2Params

SHORT = 10
LONG = 5_000
SAMPLES = 50
T0 = 20_000 * 86_400 + 6 * 3600
CHEAP = Argon2Params(opslimit=1, memlimit_bytes=8192)
RESULT = Path(__file__).resolve().parent / "results" / "queue.json"


def _endpoint(root: Path, seed: int) -> tuple[Messenger, VaultKeeper]:
    data = DataDir(root)
    keeper = VaultKeeper(data, argon2=CHEAP)
    messenger = Messenger(keeper, open_spool(data), rng=random.Random(seed).randbytes)
    messenger.initialise("bench", T0)
    return messenger, keeper


def _send(messenger: Messenger, keeper: VaultKeeper, contact: str, n: int) -> tuple[float, int]:
    """(seconds, pages written) of one send."""
    database = keeper.vault._db
    database.fetchone("PRAGMA wal_checkpoint(TRUNCATE)")
    start = time.perf_counter()
    messenger.send_text(contact, f"sample {n}", T0)
    elapsed = time.perf_counter() - start
    row = database.fetchone("PRAGMA wal_checkpoint(PASSIVE)")
    return elapsed, int(row[1]) if row else 0


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        a, keeper = _endpoint(Path(tmp) / "a", 1)
        cards = [_endpoint(Path(tmp) / name, seed)[0] for name, seed in (("s", 2), ("l", 3))]
        short, long = (a.add_contact(c.own_card_text(), "C", T0).id for c in cards)
        for contact, length in ((short, SHORT), (long, LONG)):
            for n in range(length):
                a.send_text(contact, f"fill {n}", T0)
        # Alternate the two contacts so that both see the same machine load and WAL state.
        samples: dict[str, list[tuple[float, int]]] = {short: [], long: []}
        for n in range(SAMPLES):
            for contact in (short, long):
                samples[contact].append(_send(a, keeper, contact, n))
        a.take_outgoing()
    short_ms, long_ms = (statistics.median(t for t, _ in samples[c]) * 1000 for c in (short, long))
    short_pages, long_pages = (statistics.mean(p for _, p in samples[c]) for c in (short, long))
    result = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "samples": SAMPLES,
        "queued_short": SHORT,
        "queued_long": LONG,
        "send_ms_at_short": round(short_ms, 3),
        "send_ms_at_long": round(long_ms, 3),
        "ratio_long_to_short": round(long_ms / short_ms, 3),
        "pages_per_send_at_short": round(short_pages, 2),
        "pages_per_send_at_long": round(long_pages, 2),
    }
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
