"""Fuzz the end-to-end envelope and inner-message parsers: only MalformedEnvelope may escape."""

import sys

import atheris

with atheris.instrument_imports():
    from pigeon.messenger.envelope import (
        decode_envelope,
        decode_inner,
        encode_envelope,
        encode_inner,
    )
    from pigeon.messenger.errors import MalformedEnvelope


def fuzz_one_input(data: bytes) -> None:
    """Parse `data` as an outer envelope and as an inner message; what parses re-encodes."""
    try:
        envelope = decode_envelope(data)
    except MalformedEnvelope:
        pass
    else:
        if encode_envelope(envelope) != data:
            raise RuntimeError("a parsed envelope does not re-encode to its input")
    try:
        inner = decode_inner(data)
    except MalformedEnvelope:
        return
    if decode_inner(encode_inner(inner)) != inner:
        raise RuntimeError("a parsed inner message does not survive a round trip")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
