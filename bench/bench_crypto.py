"""Crypto benchmarks, written to bench/results/crypto.json; every figure beside its reference.

(a) Full Noise XX handshakes per second, ours beside `noiseprotocol` (bench/crypto_noise.py).
(b) Double Ratchet encrypt+decrypt round trips per second of a 512-byte (already padded)
    message, beside python-doubleratchet (PyPI `doubleratchet`, its recommended Curve25519,
    HKDF-SHA256 root chain, separate-HMAC-SHA256 message chains and AES-CBC+HMAC-SHA256 AEAD,
    the same skip bounds) and beside raw AES-256-GCM (`cryptography` AESGCM, one key, a
    counter nonce, the same 40-byte associated data) encrypt+decrypt of the same size.
    "steady": one direction, Alice encrypts and Bob decrypts in one chain (no DH step; the case
    that bounds throughput). "alternating": every message is a reply, so every message costs
    a DH ratchet step (three X25519 operations) on each side. "session_steady": the same as
    "steady" through SecureSession (a 511-byte plaintext padded to 512, then unpadded).
(c) The Pigeon app's Olm through our wrapper beside the ratchet, raw AES-GCM and a Noise XX
    handshake (bench/crypto_olm.py).
All contenders run in alternating short rounds in one process, so a shared machine's noise
hits them alike; the ratios of medians are the figures to trust.
Run: .venv/bin/python bench/bench_crypto.py [seconds for the ratchet part, default 40]
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cryptography
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from doubleratchet import DoubleRatchet as PyDoubleRatchet
from doubleratchet import EncryptedMessage, Header
from doubleratchet.recommended import HashFunction, aead_aes_hmac, kdf_hkdf, kdf_separate_hmacs
from doubleratchet.recommended.diffie_hellman_ratchet_curve25519 import (
    DiffieHellmanRatchet as PyCurve25519Ratchet,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crypto_noise import measure as measure_handshakes
from crypto_olm import measure as measure_olm
from pigeon.crypto.identity import Identity
from pigeon.crypto.padding import pad
from pigeon.crypto.ratchet import DoubleRatchet
from pigeon.crypto.ratchet_kdf import public_key_of
from pigeon.crypto.ratchet_state import MAX_SKIP, MAX_SKIPPED_TOTAL
from pigeon.crypto.session import SecureSession
from pigeon.crypto.session_guard import HandshakeGuard

RESULTS = Path(__file__).resolve().parent / "results" / "crypto.json"
ROUND_S = 0.25
MESSAGE = pad(os.urandom(511))  # 512 bytes: one padded block
AD = os.urandom(40)
GOAL_VS_DOUBLERATCHET = 10.0
GOAL_VS_RAW_AESGCM = 0.15

RoundTrip = Callable[[], None]


class _PyRootKdf(kdf_hkdf.KDF):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return b"Pigeon.Ratchet.Root"


class _PyMessageKdf(kdf_separate_hmacs.KDF):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256


class _PyAead(aead_aes_hmac.AEAD):
    @staticmethod
    def _get_hash_function() -> HashFunction:
        return HashFunction.SHA_256

    @staticmethod
    def _get_info() -> bytes:
        return b"Pigeon.Ratchet.MessageKey"


class _PyRatchet(PyDoubleRatchet):
    @staticmethod
    def _build_associated_data(associated_data: bytes, header: Header) -> bytes:
        counters = struct.pack(
            ">II", header.previous_sending_chain_length, header.sending_chain_length
        )
        return associated_data + header.ratchet_pub + counters


_PY_CONFIG: dict[str, Any] = {
    "diffie_hellman_ratchet_class": PyCurve25519Ratchet,
    "root_chain_kdf": _PyRootKdf,
    "message_chain_kdf": _PyMessageKdf,
    "message_chain_constant": b"\x01\x02",
    "dos_protection_threshold": MAX_SKIP,
    "max_num_skipped_message_keys": MAX_SKIPPED_TOTAL,
    "aead": _PyAead,
}


def _our_pair() -> tuple[DoubleRatchet, DoubleRatchet]:
    root_key, bob_private = os.urandom(32), os.urandom(32)
    bob_public = public_key_of(X25519PrivateKey.from_private_bytes(bob_private))
    alice = DoubleRatchet.initiator(root_key, os.urandom(32), bob_public)
    return alice, DoubleRatchet.responder(root_key, bob_private, alice.ratchet_public)


def _ours_steady() -> RoundTrip:
    alice, bob = _our_pair()

    def round_trip() -> None:
        bob.decrypt(alice.encrypt(MESSAGE, AD), AD)

    return round_trip


def _ours_alternating() -> RoundTrip:
    sides = list(_our_pair())

    def round_trip() -> None:
        sender, receiver = sides
        receiver.decrypt(sender.encrypt(MESSAGE, AD), AD)
        sides.reverse()

    return round_trip


def _session_steady() -> RoundTrip:
    now = time.time()
    alice, message1 = SecureSession.initiate(Identity.generate())
    bob, message2 = SecureSession.respond(Identity.generate(), message1, now)
    message3 = alice.read_handshake(message2, now, HandshakeGuard())
    assert message3 is not None
    bob.read_handshake(message3, now, HandshakeGuard())
    plaintext = MESSAGE[:511]

    def round_trip() -> None:
        bob.decrypt(alice.encrypt(plaintext, AD), AD)

    return round_trip


def _raw_aesgcm() -> RoundTrip:
    aead = AESGCM(os.urandom(32))
    counter = iter(range(2**62))
    nonce = struct.Struct(">4xQ").pack

    def round_trip() -> None:
        n = nonce(next(counter))
        aead.decrypt(n, aead.encrypt(n, MESSAGE, AD), AD)

    return round_trip


def _raw_aesgcm_new_key() -> RoundTrip:
    key, nonce = os.urandom(32), os.urandom(12)

    def round_trip() -> None:
        AESGCM(key).decrypt(nonce, AESGCM(key).encrypt(nonce, MESSAGE, AD), AD)

    return round_trip


async def _py_pair() -> tuple[_PyRatchet, _PyRatchet]:
    bob_private = os.urandom(32)
    bob_public = public_key_of(X25519PrivateKey.from_private_bytes(bob_private))
    shared = os.urandom(32)
    alice, first = await _PyRatchet.encrypt_initial_message(
        shared_secret=shared,
        recipient_ratchet_pub=bob_public,
        message=MESSAGE,
        associated_data=AD,
        **_PY_CONFIG,
    )
    bob, _ = await _PyRatchet.decrypt_initial_message(
        shared_secret=shared,
        own_ratchet_priv=bob_private,
        message=first,
        associated_data=AD,
        **_PY_CONFIG,
    )
    return alice, bob


def _py_rate(alternating: bool) -> Callable[[], float]:
    """A round of python-doubleratchet (async) inside one event loop; returns round trips/s."""
    sides = list(asyncio.run(_py_pair()))

    async def run_round() -> float:
        count, start = 0, time.perf_counter()
        deadline = start + ROUND_S
        while True:
            sender, receiver = sides
            message: EncryptedMessage = await sender.encrypt_message(MESSAGE, AD)
            await receiver.decrypt_message(message, AD)
            if alternating:
                sides.reverse()
            count += 1
            if count % 16 == 0 and time.perf_counter() >= deadline:
                return count / (time.perf_counter() - start)

    return lambda: asyncio.run(run_round())


def _sync_rate(round_trip: RoundTrip) -> Callable[[], float]:
    def run_round() -> float:
        count, start = 0, time.perf_counter()
        deadline = start + ROUND_S
        while True:
            round_trip()
            count += 1
            if count % 16 == 0 and time.perf_counter() >= deadline:
                return count / (time.perf_counter() - start)

    return run_round


def measure_ratchet(seconds: float) -> dict[str, object]:
    """Round trips per second of every contender, in alternating rounds for `seconds`."""
    contenders = {
        "ours_steady": _sync_rate(_ours_steady()),
        "doubleratchet_steady": _py_rate(alternating=False),
        "raw_aesgcm": _sync_rate(_raw_aesgcm()),
        "raw_aesgcm_new_key_per_message": _sync_rate(_raw_aesgcm_new_key()),
        "ours_session_steady": _sync_rate(_session_steady()),
        "ours_alternating": _sync_rate(_ours_alternating()),
        "doubleratchet_alternating": _py_rate(alternating=True),
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    rounds = max(3, round(seconds / (ROUND_S * len(contenders))))
    for _ in range(rounds):
        for name, run_round in contenders.items():
            rates[name].append(run_round())
    median = {name: statistics.median(values) for name, values in rates.items()}
    vs_py = median["ours_steady"] / median["doubleratchet_steady"]
    vs_raw = median["ours_steady"] / median["raw_aesgcm"]
    return {
        "what": "encrypt+decrypt round trips per second of a 512-byte padded message, one core",
        "steady": "one direction, one chain: Alice encrypts, Bob decrypts (no DH step)",
        "alternating": "every message a reply: a DH ratchet step per message on each side",
        "rounds": rounds,
        "round_trips_per_s": {name: round(rate) for name, rate in median.items()},
        "microseconds_per_round_trip": {
            name: round(1e6 / rate, 2) for name, rate in median.items()
        },
        "ratio_steady_vs_doubleratchet": round(vs_py, 2),
        "ratio_steady_vs_raw_aesgcm": round(vs_raw, 3),
        "ratio_steady_vs_raw_aesgcm_new_key_per_message": round(
            median["ours_steady"] / median["raw_aesgcm_new_key_per_message"], 3
        ),
        "ratio_alternating_vs_doubleratchet": round(
            median["ours_alternating"] / median["doubleratchet_alternating"], 2
        ),
        "goal_vs_doubleratchet": GOAL_VS_DOUBLERATCHET,
        "goal_vs_raw_aesgcm": GOAL_VS_RAW_AESGCM,
        "goal_vs_doubleratchet_met": vs_py >= GOAL_VS_DOUBLERATCHET,
        "goal_vs_raw_aesgcm_met": vs_raw >= GOAL_VS_RAW_AESGCM,
    }


def main() -> None:
    """Measure both parts and write the JSON file."""
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 40.0
    result = {
        "python": platform.python_version(),
        "cryptography": cryptography.__version__,
        "cpus": os.cpu_count(),
        "measured_at_unix_s": round(time.time()),
        "handshakes": measure_handshakes(seconds / 3),
        "ratchet": measure_ratchet(seconds),
        "olm": measure_olm(seconds / 2),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
