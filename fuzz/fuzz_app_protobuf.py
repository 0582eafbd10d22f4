"""Fuzz the Pigeon app's protobuf messages: identity and prekey bundles, OlmMessage, Initiation.

Only MalformedInput (and, for the verifying parsers, InvalidSignature or WeakKey) may escape;
what decodes must re-encode to bytes that decode to the same value.
"""

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from pigeon.crypto.app_bundle import AppIdentityBundle, AppPrekeyBundle
    from pigeon.crypto.errors import InvalidSignature, MalformedInput, WeakKey
    from pigeon.crypto.olm_wire import Initiation, OlmMessage, prekey_keys

_CODECS = (AppIdentityBundle, AppPrekeyBundle, OlmMessage, Initiation)


def fuzz_one_input(data: bytes) -> None:
    """One fuzz case: see the module docstring."""
    for codec in _CODECS:
        try:
            value = codec.from_bytes(data)
        except MalformedInput:
            continue
        if codec.from_bytes(value.to_bytes()) != value:
            raise RuntimeError(f"{codec.__name__} does not round-trip")
    for parse in (AppIdentityBundle.parse_verified, AppPrekeyBundle.parse_verified):
        with contextlib.suppress(MalformedInput, InvalidSignature, WeakKey):
            parse(data)
    with contextlib.suppress(MalformedInput):
        prekey_keys(data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
