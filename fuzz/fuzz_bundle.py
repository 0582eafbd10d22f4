"""Fuzz `IdentityBundle.from_bytes`: only the crypto room's typed errors may escape."""

import sys

import atheris

with atheris.instrument_imports():
    from pigeon.crypto.bundle import IdentityBundle
    from pigeon.crypto.errors import InvalidSignature, MalformedInput, WeakKey


def fuzz_one_input(data: bytes) -> None:
    """Parse `data` as a bundle; only MalformedInput, WeakKey or InvalidSignature may escape."""
    try:
        bundle = IdentityBundle.from_bytes(data)
    except (MalformedInput, WeakKey, InvalidSignature):
        return
    if bundle.to_bytes() != data:
        raise RuntimeError("a parsed bundle does not re-encode to its input")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
