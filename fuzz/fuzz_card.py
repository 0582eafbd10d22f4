"""Fuzz `ContactCard.from_bytes`: only the crypto room's typed errors may escape.

Random bytes almost never carry a valid bundle or signature, so the first byte picks what the
rest becomes: raw bytes, fields after a valid header, or such fields signed by a fixed identity,
which drives the fuzzer into field parsing and the honoured-fields path.
"""

import sys

import atheris

with atheris.instrument_imports():
    from pigeon.crypto.card import CARD_DOMAIN, CARD_VERSION, ContactCard
    from pigeon.crypto.errors import InvalidSignature, MalformedInput, WeakKey
    from pigeon.crypto.identity import Identity

_SIGNER = Identity.from_secrets(bytes(range(32)), bytes(range(32, 64)))
_HEADER = bytes([CARD_VERSION]) + _SIGNER.bundle().to_bytes()
_SIGNATURE_FIELD = b"\xff\x00\x40"


def _card_candidate(data: bytes) -> bytes:
    """Raw `data[1:]`, or it as fields after a valid header, unsigned or signed (by `data[0]`)."""
    if not data:
        return data
    mode, rest = data[0] % 3, data[1:]
    if mode == 0:
        return rest
    body = _HEADER + rest
    if mode == 1:
        return body
    return body + _SIGNATURE_FIELD + _SIGNER.sign(CARD_DOMAIN + body)


def _check_card_bytes(data: bytes) -> None:
    """Parse a binary card; what parses must round-trip and honour nothing unverified."""
    try:
        card = ContactCard.from_bytes(data)
    except (MalformedInput, WeakKey, InvalidSignature):
        return
    if card.to_bytes() != data or ContactCard.from_text(card.to_text()) != card:
        raise RuntimeError("a parsed card does not round-trip")
    if card.unverified_fields_dropped and (card.relays or card.name is not None):
        raise RuntimeError("unverified fields were honoured")


def fuzz_one_input(data: bytes) -> None:
    """One fuzz case: see the module docstring."""
    _check_card_bytes(_card_candidate(data))


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
