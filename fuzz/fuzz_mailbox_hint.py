"""Fuzz `MailboxHint.from_bytes`: only the crypto room's typed errors may escape.

The hint arrives from strangers in mesh envelopes. The first byte picks the input: raw bytes,
or a fixed identity's key followed by the fuzzer's relay list and that identity's signature over
it, which drives the fuzzer past the signature into relay list parsing.
"""

import sys

import atheris

with atheris.instrument_imports():
    from pigeon.crypto.errors import InvalidSignature, MalformedInput, WeakKey
    from pigeon.crypto.identity import Identity
    from pigeon.crypto.mailbox_hint import MailboxHint, signed_message

_SIGNER = Identity.from_secrets(bytes(range(32)), bytes(range(32, 64)))


def _hint_candidate(data: bytes) -> bytes:
    """Raw `data[1:]`, or it as the relay list of a hint signed by a fixed identity."""
    if not data or data[0] % 2 == 0:
        return data[1:]
    relays = data[1:]
    signature = _SIGNER.sign(signed_message(_SIGNER.public_key, relays))
    return _SIGNER.public_key + len(relays).to_bytes(2) + relays + signature


def fuzz_one_input(data: bytes) -> None:
    """One fuzz case: what parses must round-trip to the same bytes."""
    candidate = _hint_candidate(data)
    try:
        hint = MailboxHint.from_bytes(candidate)
    except (MalformedInput, WeakKey, InvalidSignature):
        return
    if hint.to_bytes() != candidate or MailboxHint.from_bytes(hint.to_bytes()) != hint:
        raise RuntimeError("a parsed mailbox hint does not round-trip")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
