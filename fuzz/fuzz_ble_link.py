"""Fuzz `decode_link_frame` (BLE writes and notifications): only MalformedLinkFrame may escape."""

import sys

import atheris

with atheris.instrument_imports():
    from pigeon.transport.ble.errors import MalformedLinkFrame
    from pigeon.transport.ble.gatt import decode_link_frame, encode_link_frame


def fuzz_one_input(data: bytes) -> None:
    """Parse `data` as one link frame; a parsed frame must re-encode to exactly `data`."""
    try:
        frame = decode_link_frame(data)
    except MalformedLinkFrame:
        return
    if encode_link_frame(frame) != data:
        raise RuntimeError("a parsed link frame does not re-encode to its input")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
