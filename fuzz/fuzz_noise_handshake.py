"""Fuzz Noise XX `read_message` of messages 1, 2 and 3, both suites (the first byte picks).

The states that read messages 2 and 3 are built once and reused: a failed read must leave them
exactly as they were, so reuse also checks rollback (every so often the genuine message must
still be accepted). Only crypto's typed errors may escape `read_message`; they are caught here.
"""

from __future__ import annotations

import contextlib
import sys

from pigeon.crypto.errors import CryptoError
from pigeon.crypto.noise import (
    XX_25519_CHACHAPOLY_BLAKE2S,
    XX_25519_CHACHAPOLY_SHA256,
    HandshakeState,
)

_SUITES = (XX_25519_CHACHAPOLY_SHA256, XX_25519_CHACHAPOLY_BLAKE2S)
_INIT_STATIC = bytes(range(1, 33))
_RESP_STATIC = bytes(range(33, 65))
_INIT_EPHEMERAL = bytes(range(65, 97))
_RESP_EPHEMERAL = bytes(range(97, 129))
_PROLOGUE = b"fuzz"
_CHECK_ROLLBACK_EVERY = 256


def _pair(suite: str) -> tuple[HandshakeState, HandshakeState]:
    return (
        HandshakeState(suite, True, _INIT_STATIC, _PROLOGUE, _INIT_EPHEMERAL),
        HandshakeState(suite, False, _RESP_STATIC, _PROLOGUE, _RESP_EPHEMERAL),
    )


def _waiting_for(suite: str, number: int) -> tuple[HandshakeState, bytes]:
    """The side that reads message `number` (2 or 3) next, and the genuine message."""
    initiator, responder = _pair(suite)
    responder.read_message(initiator.write_message(b""))
    if number == 2:
        return initiator, responder.write_message(b"")
    initiator.read_message(responder.write_message(b""))
    return responder, initiator.write_message(b"")


_waiting = {(suite, number): _waiting_for(suite, number) for suite in _SUITES for number in (2, 3)}
_runs = 0


def fuzz_one_input(data: bytes) -> None:
    """Feed `data[1:]` to the reader of message 1, 2 or 3 of one suite (chosen by `data[0]`)."""
    global _runs
    if not data:
        return
    suite = _SUITES[data[0] & 1]
    number = (data[0] >> 1) % 3 + 1
    message = data[1:]
    _runs += 1
    if number == 1:
        with contextlib.suppress(CryptoError):
            _pair(suite)[1].read_message(message)
        return
    state, genuine = _waiting[suite, number]
    try:
        state.read_message(message)
    except CryptoError:
        if _runs % _CHECK_ROLLBACK_EVERY == 0:
            state.read_message(genuine)  # raises if the failed read changed the state
            _waiting[suite, number] = _waiting_for(suite, number)
        return
    if message != genuine:
        raise AssertionError(f"a forged message {number} was accepted")
    _waiting[suite, number] = _waiting_for(suite, number)


if __name__ == "__main__":
    import atheris

    atheris.instrument_all()  # our modules are imported already; trace their branches
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
