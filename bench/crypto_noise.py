"""Full Noise XX handshakes per second: ours beside the PyPI `noiseprotocol` package, same run.

One handshake = both sides built from raw static private bytes, all three messages written and
read, and both sides split into transport states, in one process on one core. The two
implementations run in alternating short rounds so the noise of a shared machine hits both alike;
the ratio of their medians is the figure to trust. Two floors run in the same rounds to show
what limits us: the X25519 work alone, and every primitive call alone (no state machine).
Run alone, it prints the result as JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from noise.connection import Keypair, NoiseConnection

from pigeon.crypto.noise import XX_25519_CHACHAPOLY_SHA256, HandshakeState

ROUND_S = 0.2
_STATIC_KEYS: dict[bytes, X25519PrivateKey] = {}
_PAYLOAD = b""
_SHA256 = hashes.SHA256()


def _ours(initiator_static: bytes, responder_static: bytes) -> None:
    initiator = HandshakeState(XX_25519_CHACHAPOLY_SHA256, True, initiator_static)
    responder = HandshakeState(XX_25519_CHACHAPOLY_SHA256, False, responder_static)
    responder.read_message(initiator.write_message(_PAYLOAD))
    initiator.read_message(responder.write_message(_PAYLOAD))
    responder.read_message(initiator.write_message(_PAYLOAD))
    initiator.split()
    responder.split()


def _noiseprotocol(initiator_static: bytes, responder_static: bytes) -> None:
    name = XX_25519_CHACHAPOLY_SHA256.encode()
    initiator = NoiseConnection.from_name(name)
    responder = NoiseConnection.from_name(name)
    initiator.set_keypair_from_private_bytes(Keypair.STATIC, initiator_static)
    responder.set_keypair_from_private_bytes(Keypair.STATIC, responder_static)
    initiator.set_as_initiator()
    responder.set_as_responder()
    initiator.start_handshake()
    responder.start_handshake()
    responder.read_message(initiator.write_message(_PAYLOAD))
    initiator.read_message(responder.write_message(_PAYLOAD))
    responder.read_message(initiator.write_message(_PAYLOAD))
    # noiseprotocol splits inside the last read/write; this checks that it did.
    if not (initiator.handshake_finished and responder.handshake_finished):
        raise RuntimeError("noiseprotocol handshake did not finish")


def _x25519_floor(initiator_static: bytes, responder_static: bytes) -> None:
    """Only the X25519 work of one handshake with reused static keys: 2 key pairs, 6 DHs."""
    statics = [_STATIC_KEYS[initiator_static], _STATIC_KEYS[responder_static]]
    ephemerals = [X25519PrivateKey.from_private_bytes(os.urandom(32)) for _ in range(2)]
    publics = [
        X25519PublicKey.from_public_bytes(key.public_key().public_bytes_raw())
        for key in (*ephemerals, *statics)
    ]
    for private, public in (
        (ephemerals[0], publics[1]),  # ee, both sides
        (ephemerals[1], publics[0]),
        (ephemerals[0], publics[3]),  # es
        (statics[1], publics[0]),
        (statics[0], publics[1]),  # se
        (ephemerals[1], publics[2]),
    ):
        private.exchange(public)


def _primitives_floor(initiator_static: bytes, responder_static: bytes) -> None:
    """Every primitive call of one handshake, and nothing else."""
    # The X25519 work, 8 HKDFs and 10 cipher keys (3 MixKey and 1 Split per side), 4
    # encryptions and 4 decryptions (s and payload of messages 2 and 3), 16 MixHash.
    _x25519_floor(initiator_static, responder_static)
    key = initiator_static
    for _ in range(8):
        HKDF(_SHA256, 64, key, b"").derive(key)
    for _ in range(9):
        ChaCha20Poly1305(key)
    cipher = ChaCha20Poly1305(key)
    nonce = bytes(12)
    ciphertext = cipher.encrypt(nonce, key, key)
    for _ in range(3):
        cipher.encrypt(nonce, key, key)
    for _ in range(4):
        cipher.decrypt(nonce, ciphertext, key)
    for _ in range(16):
        hashlib.sha256(key + key).digest()


def _fixed_statics() -> Callable[[], tuple[bytes, bytes]]:
    statics = (os.urandom(32), os.urandom(32))
    for static in statics:
        _STATIC_KEYS[static] = X25519PrivateKey.from_private_bytes(static)
    return lambda: statics


def _fresh_statics() -> tuple[bytes, bytes]:
    return os.urandom(32), os.urandom(32)


def _round(
    handshake: Callable[[bytes, bytes], None], statics: Callable[[], tuple[bytes, bytes]]
) -> float:
    """Handshakes per second over one short round."""
    count = 0
    start = time.perf_counter()
    deadline = start + ROUND_S
    while True:
        initiator_static, responder_static = statics()
        handshake(initiator_static, responder_static)
        count += 1
        if count % 16 == 0 and time.perf_counter() >= deadline:
            return count / (time.perf_counter() - start)


def measure(seconds: float) -> dict[str, object]:
    """Handshakes per second of ours and of noiseprotocol, measured together for `seconds`."""
    fixed = _fixed_statics()
    contenders: dict[
        str, tuple[Callable[[bytes, bytes], None], Callable[[], tuple[bytes, bytes]]]
    ] = {
        "ours": (_ours, fixed),
        "ours_fresh_statics": (_ours, _fresh_statics),
        "noiseprotocol": (_noiseprotocol, fixed),
        "x25519_floor": (_x25519_floor, fixed),
        "primitives_floor": (_primitives_floor, fixed),
    }
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    rounds = max(1, round(seconds / (ROUND_S * len(contenders))))
    for _ in range(rounds):
        for name, (handshake, statics) in contenders.items():
            rates[name].append(_round(handshake, statics))
    median = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "suite": XX_25519_CHACHAPOLY_SHA256,
        "what": "full XX handshakes per second (3 messages + split, both sides, one core)",
        "rounds": rounds,
        "ours_handshakes_per_s": round(median["ours"]),
        "ours_fresh_statics_handshakes_per_s": round(median["ours_fresh_statics"]),
        "noiseprotocol_handshakes_per_s": round(median["noiseprotocol"]),
        "ratio_vs_noiseprotocol": round(median["ours"] / median["noiseprotocol"], 2),
        "ratio_fresh_statics_vs_noiseprotocol": round(
            median["ours_fresh_statics"] / median["noiseprotocol"], 2
        ),
        # The X25519 work alone (2 key pairs, 6 DHs) bounds any implementation on these
        # primitives; the share says how much of our handshake it takes.
        "x25519_only_per_s": round(median["x25519_floor"]),
        "x25519_share_of_ours": round(median["ours"] / median["x25519_floor"], 2),
        "x25519_ceiling_ratio_vs_noiseprotocol": round(
            median["x25519_floor"] / median["noiseprotocol"], 2
        ),
        # All primitive calls alone: what is left above this is our Python state machine.
        "primitives_only_per_s": round(median["primitives_floor"]),
        "primitives_share_of_ours": round(median["ours"] / median["primitives_floor"], 2),
        "primitives_ceiling_ratio_vs_noiseprotocol": round(
            median["primitives_floor"] / median["noiseprotocol"], 2
        ),
    }


if __name__ == "__main__":
    print(json.dumps(measure(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0), indent=2))
