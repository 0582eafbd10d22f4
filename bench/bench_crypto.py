"""Crypto benchmarks, written to bench/results/crypto.json; every figure beside its reference.

(a) Full Noise XX handshakes per second, ours beside `noiseprotocol` (bench/crypto_noise.py);
    the Noise code stays for bitchat's private messages.
(b) Olm, the messenger's session layer: encrypt+decrypt round trips per second of a 512-byte
    text beside raw AES-256-GCM, and pre-key session creation per second beside a Noise XX
    handshake (bench/crypto_olm.py).
All contenders run in alternating short rounds in one process, so a shared machine's noise
hits them alike; the ratios of medians are the figures to trust.
Run: .venv/bin/python bench/bench_crypto.py [seconds, default 40]
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import cryptography
import vodozemac

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crypto_noise import measure as measure_handshakes
from crypto_olm import measure as measure_olm

RESULTS = Path(__file__).resolve().parent / "results" / "crypto.json"


def main() -> None:
    """Measure both parts and write the JSON file."""
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 40.0
    result = {
        "python": platform.python_version(),
        "cryptography": cryptography.__version__,
        "vodozemac": getattr(vodozemac, "__version__", "unknown"),
        "cpus": os.cpu_count(),
        "measured_at_unix_s": round(time.time()),
        "handshakes": measure_handshakes(seconds / 3),
        "olm": measure_olm(seconds * 2 / 3),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
