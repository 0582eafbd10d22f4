"""`pigeon selftest`: known-answer tests of the crypto room; the node refuses to start on a failure.

Each entry of `CHECKS` is a known-answer test: a function that returns when every answer matches
and raises (any exception) otherwise. To add one, define it in your module and add one line here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from pigeon.crypto import card_kat, noise_vectors, olm_check
from pigeon.crypto.signing import SigningKey, verify

HELP = "run known-answer tests of every crypto piece; exit 1 on any failure"

# RFC 8032 section 7.1, test 1 (empty message).
_RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
_RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
_RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


class KnownAnswerMismatch(Exception):
    """A known-answer test computed something other than the published answer."""


def expect_equal(what: str, got: object, expected: object) -> None:
    """Raise `KnownAnswerMismatch` naming `what` (never the values) unless `got == expected`."""
    if got != expected:
        raise KnownAnswerMismatch(f"{what} differs from the known answer")


def _check_ed25519() -> None:
    key = SigningKey(_RFC8032_SEED)
    expect_equal("public key", key.public_key, _RFC8032_PUBLIC)
    expect_equal("signature", key.sign(b""), _RFC8032_SIGNATURE)
    verify(_RFC8032_PUBLIC, b"", _RFC8032_SIGNATURE)


# Name shown to the user -> check. Order is the order they run in.
CHECKS: Final[dict[str, Callable[[], None]]] = {
    "ed25519 (RFC 8032)": _check_ed25519,
    "noise XX SHA256 (cacophony vector)": noise_vectors.check_known_answer,
    "safety number (libsignal vector 1)": card_kat.check_safety_number,
    "identity bundle (fixed seed)": card_kat.check_bundle,
    "contact card (fixed seed)": card_kat.check_card,
    "padding (ISO/IEC 7816-4, 512)": card_kat.check_padding,
    "olm identity binding and prekey (fixed seed)": olm_check.check_signatures,
    "olm session round trip (vodozemac)": olm_check.check_round_trip,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`--noise-vectors FILE` replays a vector file instead of the built-in checks."""
    parser.add_argument(
        "--noise-vectors",
        metavar="FILE",
        type=Path,
        help="run every vector of our Noise suites in FILE (cacophony JSON format); skip others",
    )


def run_checks(checks: dict[str, Callable[[], None]]) -> int:
    """Run `checks`, print one line each and the `N passed, M failed` summary; return M."""
    failed = 0
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # a self-test reports every failure, whatever raised it
            failed += 1
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")
        else:
            print(f"ok   {name}")
    print(f"{len(checks) - failed} passed, {failed} failed")
    return failed


def run_noise_vectors(path: Path) -> int:
    """Replay the supported vectors in `path`, print the summary; exit status (2: unreadable)."""
    try:
        vectors = noise_vectors.vectors_in(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # MalformedInput is a ValueError
        print(f"cannot read Noise vectors from {path}: {exc}", file=sys.stderr)
        return 2
    supported = {
        f"vector {number} ({noise_vectors.protocol_name(vector)})": _vector_check(vector)
        for number, vector in enumerate(vectors, start=1)
        if noise_vectors.is_supported(vector)
    }
    skipped = len(vectors) - len(supported)
    print(f"skipped {skipped} of {len(vectors)} vectors: not plain XX of our suites")
    return 1 if run_checks(supported) else 0


def _vector_check(vector: noise_vectors.Vector) -> Callable[[], None]:
    return lambda: noise_vectors.check_vector(vector)


def run(args: argparse.Namespace) -> int:
    """Run every known-answer check (or the vectors of a file); exit status 1 if any failed."""
    if args.noise_vectors is not None:
        return run_noise_vectors(args.noise_vectors)
    return 1 if run_checks(CHECKS) else 0
