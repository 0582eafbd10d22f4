"""Fuzz the Pigeon app's plaintexts: JSON app messages, acks and control commands.

Only MalformedInput may escape; what decodes must encode back to bytes that decode the same.
"""

import sys

import atheris

with atheris.instrument_imports():
    from pigeon.crypto.app_plaintext import (
        decode_ack,
        decode_app_message,
        decode_control,
        encode_ack,
        encode_app_message,
        encode_control,
    )
    from pigeon.crypto.errors import MalformedInput

_ARRIVED_AT_UNIX_S = 2e9


def fuzz_one_input(data: bytes) -> None:
    """One fuzz case: see the module docstring."""
    try:
        message = decode_app_message(data, _ARRIVED_AT_UNIX_S)
        again = decode_app_message(encode_app_message(message), _ARRIVED_AT_UNIX_S)
        if again != message:
            raise RuntimeError("an app message does not round-trip")
    except MalformedInput:
        pass
    try:
        ack = decode_ack(data)
        if ack.message_id is not None and decode_ack(encode_ack(ack.message_id)) != ack:
            raise RuntimeError("an ack does not round-trip")
    except MalformedInput:
        pass
    try:
        control = decode_control(data)
        if control is not None and decode_control(encode_control(control)) != control:
            raise RuntimeError("a control command does not round-trip")
    except MalformedInput:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
