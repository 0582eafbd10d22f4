"""`pigeon selftest`: known-answer tests of the crypto room."""

from __future__ import annotations

import argparse

from pigeon.crypto.signing import SigningKey, verify

HELP = "run known-answer tests of every crypto piece; exit 1 on any failure"

# RFC 8032 section 7.1, test 1 (empty message).
_RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
_RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
_RFC8032_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def _ed25519() -> bool:
    key = SigningKey(_RFC8032_SEED)
    if key.public_key != _RFC8032_PUBLIC or key.sign(b"") != _RFC8032_SIGNATURE:
        return False
    verify(_RFC8032_PUBLIC, b"", _RFC8032_SIGNATURE)
    return True


def run(args: argparse.Namespace) -> int:
    """Run every check; print one line each and a summary."""
    checks = {"ed25519 (RFC 8032)": _ed25519}
    failed = 0
    for name, check in checks.items():
        ok = check()
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0
