"""Benchmark the node's bitchat courier: deposits accepted per second, bytes stored per held
envelope, and the time from a recipient's announce to its envelopes handed over.

Merges the key "courier" into bench/results/bitchat.json (the relay figures stay). Everything
runs through the real path: signed 0x04 packets from scripted phones into `BitchatRouter`, the
`Addressed` action into `CourierService` (signature check, envelope decode, policy, one durable
SQLCipher transaction per deposit in a real spool file). Envelopes carry 200 bytes of
ciphertext, about what bitchat's Noise X seal of a short private message weighs. Hand-over is
timed from feeding the recipient's announce to the router until the hand-over frames are
produced (the simulated clock does not move; radio time is not included), with the courier
holding `HELD` envelopes of which `FOR_RECIPIENT` are for that recipient (a phone without
courierAck, so no spray copies are timed with it). The drop ledger (envelopes handed over, so
that none is handed over twice) is measured full, at its 20,000 delivered rows: spool bytes per
row, and the time to look one up (once per deposit and per fetched drop).
Run: .venv/bin/python bench/bench_bitchat_courier.py
"""

import json
import os
import random
import tempfile
import time
from pathlib import Path

from pigeon.bitchat import packet as wire
from pigeon.bitchat.chat import PublicChat
from pigeon.bitchat.courier import CourierConfig
from pigeon.bitchat.courier_agent import COURIER_ACK_CAPABILITY
from pigeon.bitchat.courier_wire import CourierEnvelope, encode_envelope, epoch_day, recipient_tag
from pigeon.bitchat.events import Addressed, FrameReceived, Heard, LinkUp, SendFrame
from pigeon.bitchat.identity import BitchatIdentity
from pigeon.bitchat.router import BitchatRouter, BitchatRouterConfig
from pigeon.daemon.bitchat_courier import CourierService
from pigeon.store.drop_ledger import MAX_DELIVERED, Mark
from pigeon.store.keeper import DataDir, open_spool

RESULTS = Path(__file__).resolve().parent / "results" / "bitchat.json"
NOW_S = 1_800_000_000.0
CIPHERTEXT_BYTES = 200
DEPOSITS = 1_000
DEPOSITORS = 10
HELD = 10_000
FOR_RECIPIENT = 20
UNCAPPED = BitchatRouterConfig(
    in_packets_per_s=1e9, in_burst=1e9, out_packets_per_s=1e9, out_burst=1e9
)
NODE = BitchatIdentity(b"\x01" * 32, b"\x02" * 32)


def _envelope(recipient: bytes, n: int) -> bytes:
    tag = recipient_tag(recipient, epoch_day(NOW_S))
    body = random.Random(n).randbytes(CIPHERTEXT_BYTES)
    return encode_envelope(CourierEnvelope(tag, int((NOW_S + 6 * 3600) * 1000), body, 4))


class Bench:
    def __init__(self, data: DataDir) -> None:
        self.spool = open_spool(data)
        self.router = BitchatRouter(NODE.peer_id, random.Random(0), UNCAPPED)
        self.chat = PublicChat()
        config = CourierConfig(max_held=HELD + DEPOSITS, per_depositor=HELD)
        shelf = self.spool.courier_shelf()
        self.courier = CourierService(NODE, self.router, self.chat, shelf, config)

    def feed(self, link: str, frame: bytes) -> list[SendFrame]:
        pending = self.router.handle(FrameReceived(link, frame), NOW_S)
        sent: list[SendFrame] = []
        while pending:
            action = pending.pop(0)
            if isinstance(action, SendFrame):
                sent.append(action)
            elif isinstance(action, Heard) and action.link is not None:
                self.chat.receive(action.packet)
                pending += self.courier.on_announce(action.link, action.packet, NOW_S)
            elif isinstance(action, Addressed):
                pending += self.courier.on_addressed(action.link, action.packet, NOW_S)
        return sent

    def join(self, phone: BitchatIdentity, link: str, caps: int = 0) -> list[SendFrame]:
        self.router.handle(LinkUp(link, 512), NOW_S)
        return self.feed(link, phone.announce("p", int(NOW_S * 1000), caps))


def _deposits_per_s(tmp: Path) -> tuple[float, int, int]:
    bench = Bench(DataDir(tmp / "deposits"))
    phones = [BitchatIdentity(bytes((10 + i,)) * 32, bytes((50 + i,)) * 32) for i in range(10)]
    for i, phone in enumerate(phones):
        bench.join(phone, f"l{i}", COURIER_ACK_CAPABILITY)  # each deposit is answered
    recipient = b"\x77" * 32
    stamp = int(NOW_S * 1000)
    packets = [
        (f"l{n % DEPOSITORS}", phones[n % DEPOSITORS], _envelope(recipient, n))
        for n in range(DEPOSITS)
    ]
    frames = [(link, p.directed(wire.COURIER_ENVELOPE, NODE.peer_id, e, stamp + n))
              for n, (link, p, e) in enumerate(packets)]  # fmt: skip
    before = bench.spool.path.stat().st_size
    start = time.perf_counter()
    for link, frame in frames:
        bench.feed(link, frame)
    elapsed = time.perf_counter() - start
    assert len(bench.courier.policy) == DEPOSITS
    after = bench.spool.path.stat().st_size
    bench.spool.close()
    return DEPOSITS / elapsed, after - before, bench.courier.agent.counters["accepted"]


def _handover_s(tmp: Path) -> tuple[float, int]:
    bench = Bench(DataDir(tmp / "handover"))
    depositor = BitchatIdentity(b"\x0a" * 32, b"\x0b" * 32)
    bench.join(depositor, "d")
    recipient = BitchatIdentity(b"\x0c" * 32, b"\x0d" * 32)
    others = b"\x78" * 32
    stamp = int(NOW_S * 1000)
    for n in range(HELD):
        to = recipient.noise_public if n % (HELD // FOR_RECIPIENT) == 0 else others
        frame = depositor.directed(wire.COURIER_ENVELOPE, NODE.peer_id, _envelope(to, n), stamp + n)
        bench.feed("d", frame)
    assert len(bench.courier.policy) == HELD
    start = time.perf_counter()
    sent = bench.join(recipient, "r")
    elapsed = time.perf_counter() - start
    handed = [s for s in sent if s.link == "r" and s.frame[1] == wire.COURIER_ENVELOPE]
    assert len(handed) == FOR_RECIPIENT, len(handed)
    bench.spool.close()
    return elapsed, len(handed)


def _ledger(tmp: Path) -> tuple[float, float]:
    """Spool bytes per delivered row and microseconds per lookup, the ledger full."""
    spool = open_spool(DataDir(tmp / "ledger"))
    before = spool.path.stat().st_size
    shelf, ledger = spool.courier_shelf(), spool.drop_ledger()
    rows = [
        (random.Random(n).randbytes(32), NOW_S + n / 1000, NOW_S + 86_400)
        for n in range(MAX_DELIVERED)
    ]
    for start in range(0, len(rows), 1_000):  # hand-overs arrive in small batches
        shelf.apply([], [], rows[start : start + 1_000])
    grown = spool.path.stat().st_size - before
    assert ledger.count(Mark.DELIVERED) == MAX_DELIVERED
    probes = [r[0] for r in rows[::20]] + [
        random.Random(f"absent {n}").randbytes(32) for n in range(1_000)
    ]
    start_s = time.perf_counter()
    found = sum(ledger.was_delivered(identity, NOW_S) for identity in probes)
    elapsed = time.perf_counter() - start_s
    assert found == MAX_DELIVERED // 20
    spool.close()
    return grown / MAX_DELIVERED, elapsed / len(probes) * 1e6


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rate, grown, accepted = _deposits_per_s(Path(tmp))
        handover_s, handed = _handover_s(Path(tmp))
        ledger_bytes, lookup_us = _ledger(Path(tmp))
    courier = {
        "deposits_accepted_per_s": round(rate),
        "deposits": accepted,
        "ciphertext_bytes_per_envelope": CIPHERTEXT_BYTES,
        "spool_bytes_per_held_envelope": round(grown / DEPOSITS),
        "handover_after_announce_ms": round(handover_s * 1000, 2),
        "handover_envelopes": handed,
        "handover_held_total": HELD,
        "drop_ledger_rows": MAX_DELIVERED,
        "drop_ledger_bytes_per_row": round(ledger_bytes),
        "drop_ledger_lookup_us": round(lookup_us, 1),
        "note": "one durable SQLCipher transaction per deposit; hand-over time excludes radio",
    }
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["courier"] = courier
    results.setdefault("machine_cpus", os.cpu_count())
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(courier, indent=2))


if __name__ == "__main__":
    main()
