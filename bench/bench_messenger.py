"""Messenger benchmarks, written to bench/results/messenger.json; each beside its references.

(a) Texts: owner A sends MESSAGES texts of 300 bytes to B over an established session; B takes
    them in batches of BATCH (one vault transaction each, as the daemon groups deliveries) and
    A takes B's receipts the same way. Measured: end-to-end messages per second (A's send_text
    + B's handling + A's receipt handling). References in the same run, on the same machine:
    the crypto alone (Olm encrypt + decrypt of the same padded plaintexts, nothing stored)
    and the store alone (per message: claim the id, save a session state of the real size,
    append the message; BATCH per transaction, plus one transaction per message sent).
(b) Files: a FILE_BYTES file from A to B (chunks of 7 KiB, window 32), batches of BATCH; MB/s
    end to end, beside the crypto alone on the same chunks.
The machine is shared and noisy: trust the ratios more than the absolute figures. Rounds
interleave the parts (ROUNDS of each) and the medians are kept: the figures of one round share
the machine's load of that moment. Run: .venv/bin/python bench/bench_messenger.py
"""

from __future__ import annotations

import json
import operator
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pigeon.crypto.olm_account import OlmAccount
from pigeon.crypto.olm_session import OlmSession
from pigeon.crypto.padding import pad
from pigeon.crypto.signing import SigningKey
from pigeon.mesh.packet import Packet
from pigeon.messenger.api import Messenger
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import Argon2Params
from pigeon.store.vault_records import Direction, Message, MessageState, SessionState

MESSAGES = 300
BATCH = 32
FILE_BYTES = 2_000_000
ROUNDS = 5
TEXT = "x" * 300
T0 = 20_000 * 86_400 + 6 * 3600
CHEAP = Argon2Params(opslimit=1, memlimit_bytes=8192)
RESULT = Path(__file__).resolve().parent / "results" / "messenger.json"


def _endpoint(root: Path, seed: int) -> Messenger:
    data = DataDir(root)
    messenger = Messenger(
        VaultKeeper(data, argon2=CHEAP), open_spool(data), rng=random.Random(seed).randbytes
    )
    messenger.initialise("bench", T0)
    return messenger


def _deliver(to: Messenger, packets: list[Packet], now: float) -> list[Packet]:
    replies: list[Packet] = []
    for start in range(0, len(packets), BATCH):
        replies += to.handle_packets(packets[start : start + BATCH], now)
    return replies


def _pair(root: Path) -> tuple[Messenger, Messenger, str]:
    a, b = _endpoint(root / "a", 1), _endpoint(root / "b", 2)
    b_id = a.add_contact(b.own_card_text(), "B", T0).id
    b.add_contact(a.own_card_text(), "A", T0)
    a.send_text(b_id, "hello", T0)
    packets, side = a.take_outgoing(), (a, b)
    while packets:  # handshake and the first message
        side = (side[1], side[0])
        packets = _deliver(side[0], packets, T0)
    return a, b, b_id


def bench_texts(root: Path) -> float:
    a, b, b_id = _pair(root)
    started = time.perf_counter()
    for index in range(MESSAGES):
        a.send_text(b_id, TEXT, T0 + 1 + index / 1000)
    receipts = _deliver(b, a.take_outgoing(), T0 + 2)
    _deliver(a, receipts, T0 + 3)
    elapsed = time.perf_counter() - started
    assert not a.outstanding_envelopes(), "every text must be receipted"
    return MESSAGES / elapsed


def bench_file(root: Path) -> float:
    a, b, b_id = _pair(root)
    data = random.Random(3).randbytes(FILE_BYTES)
    started = time.perf_counter()
    sent = a.send_file(b_id, "bench.bin", data, T0 + 1)
    packets = a.take_outgoing()
    while packets:
        packets = _deliver(a, _deliver(b, packets, T0 + 2), T0 + 2)
    elapsed = time.perf_counter() - started
    assert a.message(sent.id).state == "delivered"
    return FILE_BYTES / elapsed / 1e6


def _sessions() -> tuple[OlmSession, OlmSession]:
    """An Olm session both ways round (the opener has heard back: normal messages)."""
    alice = OlmAccount.create(SigningKey.generate(), T0)
    bob = OlmAccount.create(SigningKey.generate(), T0)
    opener = OlmSession.outbound(alice, bob.fallback_prekey_bundle())
    first = opener.encrypt_message(pad(b"hello"))
    answerer, _ = OlmSession.inbound(bob, alice.identity_bundle(), first)
    opener.decrypt_message(answerer.encrypt_message(pad(b"")))
    return opener, answerer


def crypto_texts() -> float:
    sender, receiver = _sessions()
    plaintext = pad(bytes(1 + 16 + 32 + 32 + 24) + TEXT.encode())
    started = time.perf_counter()
    for _ in range(MESSAGES):
        receiver.decrypt_message(sender.encrypt_message(plaintext))
    return MESSAGES / (time.perf_counter() - started)


def crypto_file() -> float:
    sender, receiver = _sessions()
    chunk = pad(bytes(7168 + 60 + 81))
    count = FILE_BYTES // 7168 + 1
    started = time.perf_counter()
    for _ in range(count):
        receiver.decrypt_message(sender.encrypt_message(chunk))
    return FILE_BYTES / (time.perf_counter() - started) / 1e6


def store_texts(root: Path) -> float:
    keeper = VaultKeeper(DataDir(root), argon2=CHEAP)
    vault = keeper.initialise("bench")
    with vault.transaction() as tx:
        tx.add_contact("c", "C", b"card", T0)
    state = bytes(700)  # about a real session state's size
    started = time.perf_counter()
    for index in range(MESSAGES):  # the sender's side: one transaction per text sent
        with vault.transaction() as tx:
            tx.save_session("c", SessionState(1, state, T0))
            tx.append_message(
                Message(f"o{index}", "c", Direction.OUT, MessageState.QUEUED, T0, T0, TEXT)
            )
    for start in range(0, MESSAGES, BATCH):  # the receiver's side, batched
        with vault.transaction() as tx:
            for index in range(start, min(start + BATCH, MESSAGES)):
                tx.claim_incoming(index.to_bytes(16, "big"), T0)
                tx.save_session("c", SessionState(1, state, T0))
                tx.append_message(
                    Message(f"i{index}", "c", Direction.IN, MessageState.RECEIVED, T0, T0, TEXT)
                )
    elapsed = time.perf_counter() - started
    keeper.lock()
    return MESSAGES / elapsed


def main() -> int:
    # Rounds interleave the parts (end to end, crypto only, store only), so that load from
    # other processes on a shared machine falls on all of them alike; each figure is the
    # median over the rounds, and each ratio the median of the rounds' ratios.
    texts, texts_crypto, texts_store, files, files_crypto = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        root, counter = Path(tmp), iter(range(10_000))

        def fresh() -> Path:
            return root / str(next(counter))

        for _ in range(ROUNDS):
            texts.append(bench_texts(fresh()))
            texts_crypto.append(crypto_texts())
            texts_store.append(store_texts(fresh()))
            files.append(bench_file(fresh()))
            files_crypto.append(crypto_file())
    median = statistics.median
    result = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "messages": MESSAGES,
        "batch": BATCH,
        "rounds": ROUNDS,
        "texts_per_s": round(median(texts), 1),
        "reference_crypto_only_texts_per_s": round(median(texts_crypto), 1),
        "reference_store_only_texts_per_s": round(median(texts_store), 1),
        "ratio_to_store_only": round(median(map(operator.truediv, texts, texts_store)), 3),
        "ratio_to_crypto_only": round(median(map(operator.truediv, texts, texts_crypto)), 3),
        "olm_us_per_text": round(1e6 / median(texts_crypto), 1),
        "end_to_end_us_per_text": round(1e6 / median(texts), 1),
        "file_bytes": FILE_BYTES,
        "file_mb_per_s": round(median(files), 3),
        "reference_crypto_only_file_mb_per_s": round(median(files_crypto), 3),
        "file_ratio_to_crypto_only": round(median(map(operator.truediv, files, files_crypto)), 3),
    }
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
