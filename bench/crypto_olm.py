"""Olm (vodozemac through our wrapper), the messenger's only session layer, beside AES-GCM.

(a) Encrypt+decrypt round trips per second of a 512-byte text: `OlmSession` (protobuf
    framing included), bare vodozemac sessions (what the wrapper costs) and raw AES-256-GCM
    (one key, a counter nonce, 40 bytes of associated data). "steady": one direction, one
    chain; "alternating": every message a reply (a DH ratchet step each).
(b) Sessions per second: an Olm pre-key session as nodes open them (the opener verifies the
    bundle, opens the session and encrypts a 512-byte first text; the recipient verifies the
    binding, checks the replay cache, opens the session and decrypts) beside one full Noise XX
    handshake (crypto/noise.py, kept for bitchat's private messages).
All run in alternating short rounds in one process; the ratios of medians are the figures.
Run alone, it prints the result as JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

import vodozemac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crypto_noise import _ours as noise_xx_handshake
from pigeon.crypto.olm_account import OlmAccount
from pigeon.crypto.olm_session import OlmSession, initiates
from pigeon.crypto.signing import SigningKey

ROUND_S = 0.25
TEXT = os.urandom(512)
AD = os.urandom(40)
NOW = 1_800_000_000.0

Operation = Callable[[], None]


def _accounts() -> tuple[OlmAccount, OlmAccount]:
    a, b = SigningKey.generate(), SigningKey.generate()
    low, high = (a, b) if initiates(a.public_key, b.public_key) else (b, a)
    return OlmAccount.create(low, NOW), OlmAccount.create(high, NOW)


def _olm_pair() -> list[OlmSession]:
    initiator, responder = _accounts()
    alice, initiation = OlmSession.start(initiator, responder.fallback_prekey_bundle())
    bob, _ = OlmSession.accept(responder, initiation, initiator.identity_key)
    alice.decrypt(bob.encrypt(b"\x00"))  # converged: normal messages from here on
    return [alice, bob]


def _olm(alternating: bool) -> Operation:
    sides = _olm_pair()

    def round_trip() -> None:
        sender, receiver = sides
        receiver.decrypt(sender.encrypt(TEXT))
        if alternating:
            sides.reverse()

    return round_trip


def _vodozemac_steady() -> Operation:
    alice, bob = vodozemac.Account(), vodozemac.Account()
    bob.generate_one_time_keys(1)
    key = next(iter(bob.one_time_keys.values()))
    outbound = alice.create_outbound_session(bob.curve25519_key, key)
    first = outbound.encrypt(b"").to_pre_key()
    assert first is not None
    inbound, _ = bob.create_inbound_session(alice.curve25519_key, first)
    outbound.decrypt(inbound.encrypt(b"\x00"))

    def round_trip() -> None:
        inbound.decrypt(outbound.encrypt(TEXT))

    return round_trip


def _raw_aesgcm() -> Operation:
    aead = AESGCM(os.urandom(32))
    counter = iter(range(2**62))
    nonce = struct.Struct(">4xQ").pack

    def round_trip() -> None:
        n = nonce(next(counter))
        aead.decrypt(n, aead.encrypt(n, TEXT, AD), AD)

    return round_trip


def _olm_prekey_session() -> Operation:
    initiator, responder = _accounts()
    bundle = responder.fallback_prekey_bundle()

    def open_session() -> None:
        opener = OlmSession.outbound(initiator, bundle)
        first = opener.encrypt_message(TEXT)
        OlmSession.inbound(responder, initiator.identity_bundle(), first)

    return open_session


def _noise_xx() -> Operation:
    statics = (os.urandom(32), os.urandom(32))
    return lambda: noise_xx_handshake(*statics)


def _rate(operation: Operation) -> Callable[[], float]:
    def run_round() -> float:
        count, start = 0, time.perf_counter()
        deadline = start + ROUND_S
        while True:
            operation()
            count += 1
            if count % 8 == 0 and time.perf_counter() >= deadline:
                return count / (time.perf_counter() - start)

    return run_round


def _medians(contenders: dict[str, Operation], seconds: float) -> dict[str, float]:
    runs = {name: _rate(operation) for name, operation in contenders.items()}
    rates: dict[str, list[float]] = {name: [] for name in runs}
    rounds = max(3, round(seconds / (ROUND_S * len(runs))))
    for _ in range(rounds):
        for name, run_round in runs.items():
            rates[name].append(run_round())
    return {name: statistics.median(values) for name, values in rates.items()}


def measure(seconds: float) -> dict[str, object]:
    """Both parts, `seconds` in all."""
    messages = _medians(
        {
            "olm_steady": _olm(alternating=False),
            "vodozemac_bare_steady": _vodozemac_steady(),
            "raw_aesgcm": _raw_aesgcm(),
            "olm_alternating": _olm(alternating=True),
        },
        seconds * 2 / 3,
    )
    sessions = _medians(
        {"olm_prekey_session": _olm_prekey_session(), "noise_xx_handshake": _noise_xx()},
        seconds / 3,
    )
    return {
        "what": "512-byte text encrypt+decrypt round trips/s; sessions/s; one core",
        "round_trips_per_s": {name: round(rate) for name, rate in messages.items()},
        "microseconds_per_round_trip": {
            name: round(1e6 / rate, 2) for name, rate in messages.items()
        },
        "ratio_olm_steady_vs_raw_aesgcm": round(messages["olm_steady"] / messages["raw_aesgcm"], 3),
        "ratio_olm_steady_vs_bare_vodozemac": round(
            messages["olm_steady"] / messages["vodozemac_bare_steady"], 2
        ),
        "sessions_per_s": {name: round(rate) for name, rate in sessions.items()},
        "ratio_olm_prekey_session_vs_noise_xx": round(
            sessions["olm_prekey_session"] / sessions["noise_xx_handshake"], 2
        ),
    }


if __name__ == "__main__":
    print(json.dumps(measure(float(sys.argv[1]) if len(sys.argv) > 1 else 20.0), indent=2))
