"""Identity and card benchmarks, written to bench/results/card.json; each beside its reference.

- bundle parse: `IdentityBundle.from_bytes` (length, X25519 key, Ed25519 point and signature
  checks) beside one bare libsodium Ed25519 verify of the same 88-byte message.
- card parse: `ContactCard.from_text` of a typical card (one relay, a name: bundle and card
  signatures) beside two bare libsodium verifies.
- safety number: `safety_number` of two bundles (2 x 5200 SHA-512) beside the same hash chain
  written as a bare hashlib loop.
- padding: `unpad(pad(m))` of a 500-byte message beside AES-256-GCM encrypt+decrypt of the
  padded 512 bytes (what the ratchet does right after).
Contenders alternate in short rounds in one process, so a shared machine's noise hits them
alike; the ratio of medians is the figure to trust.
Run: .venv/bin/python bench/bench_card.py [seconds per pair, default 6]
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nacl.bindings
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pigeon.crypto.bundle import BUNDLE_DOMAIN, IdentityBundle
from pigeon.crypto.card import ContactCard
from pigeon.crypto.identity import Identity
from pigeon.crypto.padding import pad, unpad
from pigeon.crypto.safety import safety_number

RESULTS = Path(__file__).resolve().parent / "results" / "card.json"
ROUND_S = 0.2


def _rate(work: Callable[[], object]) -> float:
    """Calls per second of `work` over one round of about ROUND_S."""
    count, start = 0, time.perf_counter()
    deadline = start + ROUND_S
    while (now := time.perf_counter()) < deadline:
        work()
        count += 1
    return count / (now - start)


def _pair(ours: Callable[[], object], reference: Callable[[], object], seconds: float) -> dict:
    """Alternate rounds of both for `seconds`; medians of each and their ratio."""
    ours_rates: list[float] = []
    reference_rates: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        ours_rates.append(_rate(ours))
        reference_rates.append(_rate(reference))
    ours_median = statistics.median(ours_rates)
    reference_median = statistics.median(reference_rates)
    return {
        "ours_per_s": round(ours_median, 1),
        "reference_per_s": round(reference_median, 1),
        "ratio": round(ours_median / reference_median, 3),
        "rounds": len(ours_rates),
    }


def _hash_chain(key: bytes, stable_id: bytes) -> bytes:
    digest = hashlib.sha512(b"\x00\x00" + key + stable_id + key).digest()
    for _ in range(5199):
        digest = hashlib.sha512(digest + key).digest()
    return digest


def main(seconds: float) -> None:
    """Measure every pair and write RESULTS."""
    alice, bob = Identity.generate(), Identity.generate()
    bundle_a, bundle_b = alice.bundle(), bob.bundle()
    bundle_bytes = bundle_a.to_bytes()
    signed = BUNDLE_DOMAIN + bundle_bytes[:64]
    sealed = bundle_bytes[64:] + signed
    card_text = ContactCard.create(alice, ["wss://relay.example.org/pigeon"], "Alice").to_text()
    message = os.urandom(500)
    aead, nonce, padded = AESGCM(os.urandom(32)), os.urandom(12), pad(message)

    def two_verifies() -> None:
        nacl.bindings.crypto_sign_open(sealed, alice.public_key)
        nacl.bindings.crypto_sign_open(sealed, alice.public_key)

    def two_hash_chains() -> None:
        _hash_chain(alice.public_key, b"Pigeon.SafetyNumber.v1")
        _hash_chain(bob.public_key, b"Pigeon.SafetyNumber.v1")

    results = {
        "bundle_parse_vs_one_libsodium_verify": _pair(
            lambda: IdentityBundle.from_bytes(bundle_bytes),
            lambda: nacl.bindings.crypto_sign_open(sealed, alice.public_key),
            seconds,
        ),
        "card_text_parse_vs_two_libsodium_verifies": _pair(
            lambda: ContactCard.from_text(card_text), two_verifies, seconds
        ),
        "safety_number_vs_bare_hash_chains": _pair(
            lambda: safety_number(bundle_a, bundle_b), two_hash_chains, seconds
        ),
        "pad_unpad_500_vs_aes256gcm_512": _pair(
            lambda: unpad(pad(message)),
            lambda: aead.decrypt(nonce, aead.encrypt(nonce, padded, None), None),
            seconds,
        ),
    }
    report = {
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count()},
        "seconds_per_pair": seconds,
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 6.0)
