"""Fuzz the Pigeon app's relay frame parser (JSON text on /ws) and its field checks.

Only `AppFrameError` may escape decoding; a decoded client frame re-encodes to JSON that decodes
to the same frame, and the key, base64 and id checks take any string without raising.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from pigeon.relay.app_protocol import (
        AppFrameError,
        decode_client_frame,
        decode_server_frame,
        encode,
        parse_envelope_id,
        parse_key_hex,
        strict_b64decode,
    )


def fuzz_one_input(data: bytes) -> None:
    """Decode `data` (as UTF-8, as a text frame must be) as a client and as a relay frame."""
    text = data.decode("utf-8", errors="replace")
    for value in (text, text[:64], text[:32]):
        parse_key_hex(value)
        parse_envelope_id(value)
        decoded = strict_b64decode(value)
        if decoded is not None and len(decoded) * 4 > len(value) * 3:
            raise AssertionError("base64 decoded to more bytes than it can carry")
    try:
        frame = decode_client_frame(text)
    except AppFrameError:
        pass
    else:
        if decode_client_frame(encode(frame)) != frame:
            raise AssertionError("a client frame does not survive re-encoding")
    try:
        server_frame = decode_server_frame(text)
    except AppFrameError:
        return
    if decode_server_frame(encode(server_frame)) != server_frame:
        raise AssertionError("a relay frame does not survive re-encoding")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
