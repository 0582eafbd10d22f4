"""Fuzz the end-to-end envelope and inner-message parsers: only MalformedEnvelope may escape.

A HELLO's reply-to hint is also opened as the responder would (only CryptoError may escape).
"""

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from pigeon.crypto.errors import CryptoError
    from pigeon.crypto.sealed import open_sealed
    from pigeon.messenger.envelope import (
        Hello,
        decode_envelope,
        decode_inner,
        encode_envelope,
        encode_inner,
    )
    from pigeon.messenger.errors import MalformedEnvelope

RESPONDER_NOISE_PRIVATE = bytes(range(32))


def fuzz_one_input(data: bytes) -> None:
    """Parse `data` as an outer envelope and as an inner message; what parses re-encodes."""
    try:
        envelope = decode_envelope(data)
    except MalformedEnvelope:
        pass
    else:
        if encode_envelope(envelope) != data:
            raise RuntimeError("a parsed envelope does not re-encode to its input")
        if isinstance(envelope, Hello) and envelope.reply_to:
            with contextlib.suppress(CryptoError):
                open_sealed(RESPONDER_NOISE_PRIVATE, envelope.reply_to)
    try:
        inner = decode_inner(data)
    except MalformedEnvelope:
        return
    if decode_inner(encode_inner(inner)) != inner:
        raise RuntimeError("a parsed inner message does not survive a round trip")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
