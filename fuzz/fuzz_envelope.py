"""Fuzz the end-to-end envelope and inner-message parsers: only MalformedEnvelope may escape.

A PREKEY body is also parsed as the `Initiation` it carries and a PREKEY_ANSWER body as its
prekey bundle (only CryptoError may escape there).
"""

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from pigeon.crypto.app_bundle import AppPrekeyBundle
    from pigeon.crypto.errors import CryptoError
    from pigeon.crypto.olm_wire import Initiation
    from pigeon.messenger.envelope import (
        PrekeyAnswer,
        PrekeyEnvelope,
        decode_envelope,
        decode_inner,
        encode_envelope,
        encode_inner,
    )
    from pigeon.messenger.errors import MalformedEnvelope

AD = b"fuzzed associated data"


def fuzz_one_input(data: bytes) -> None:
    """Parse `data` as an outer envelope and as an inner message; what parses re-encodes."""
    try:
        envelope = decode_envelope(data)
    except MalformedEnvelope:
        pass
    else:
        if encode_envelope(envelope) != data:
            raise RuntimeError("a parsed envelope does not re-encode to its input")
        with contextlib.suppress(CryptoError):
            if isinstance(envelope, PrekeyEnvelope):
                Initiation.from_bytes(envelope.initiation)
            elif isinstance(envelope, PrekeyAnswer):
                AppPrekeyBundle.from_bytes(envelope.bundle)
    try:
        inner = decode_inner(data, AD)
    except MalformedEnvelope:
        return
    if decode_inner(encode_inner(inner, AD), AD) != inner:
        raise RuntimeError("a parsed inner message does not survive a round trip")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
