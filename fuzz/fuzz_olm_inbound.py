"""Fuzz what a peer can send our Olm side: initiations to an account, messages to a session.

The first byte picks the target; the rest is an Initiation for `OlmSession.accept` or an
OlmMessage payload for an established session's `decrypt`. Only the room's typed errors may
escape, and nothing random may open a session or decrypt.
"""

import sys

import atheris

with atheris.instrument_imports():
    from pigeon.crypto.errors import (
        BundleMismatch,
        DecryptFailed,
        InvalidSignature,
        MalformedInput,
        Replayed,
        UnknownPrekey,
        WeakKey,
        WrongInitiator,
    )
    from pigeon.crypto.olm_account import OlmAccount
    from pigeon.crypto.olm_session import OlmSession, initiates
    from pigeon.crypto.signing import SigningKey

_NOW = 1_800_000_000.0
_A, _B = SigningKey(bytes([1]) * 32), SigningKey(bytes([2]) * 32)
_LOW, _HIGH = (_A, _B) if initiates(_A.public_key, _B.public_key) else (_B, _A)
_INITIATOR, _RESPONDER = OlmAccount.create(_LOW, _NOW), OlmAccount.create(_HIGH, _NOW)
_SESSION, _ = OlmSession.start(_INITIATOR, _RESPONDER.fallback_prekey_bundle())
_ERRORS = (
    BundleMismatch,
    DecryptFailed,
    InvalidSignature,
    MalformedInput,
    Replayed,
    UnknownPrekey,
    WeakKey,
    WrongInitiator,
)


def fuzz_one_input(data: bytes) -> None:
    """One fuzz case: see the module docstring."""
    if not data:
        return
    try:
        if data[0] % 2:
            OlmSession.accept(_RESPONDER, data[1:], _LOW.public_key)
        else:
            _SESSION.decrypt(data[1:])
    except _ERRORS:
        return
    raise RuntimeError("random bytes opened a session or decrypted")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
