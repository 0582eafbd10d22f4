"""Fuzz `parse_vault_header` (the vault.header file from the SD card): only CorruptStore escapes."""

import sys

import atheris

with atheris.instrument_imports():
    from pigeon.store.errors import CorruptStore
    from pigeon.store.keys import parse_vault_header


def fuzz_one_input(data: bytes) -> None:
    """Parse `data` as a vault header; a header that parses must re-encode to `data`."""
    try:
        header = parse_vault_header(data)
    except CorruptStore:
        return
    if header.encode() != data:
        raise RuntimeError("a parsed vault header does not re-encode to its input")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
