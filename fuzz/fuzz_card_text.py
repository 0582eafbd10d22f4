"""Fuzz `ContactCard.from_text`: only the crypto room's typed errors may escape.

The first byte picks arbitrary text, arbitrary text after the `PIGEON:` prefix, or the text
form (mangled in case and layout) of a valid card header followed by fuzzed fields, signed by
a fixed identity half the time, so the fuzzer reaches field parsing through the text path.
"""

import base64
import sys

import atheris

with atheris.instrument_imports():
    from pigeon.crypto.card import CARD_DOMAIN, CARD_VERSION, TEXT_PREFIX, ContactCard
    from pigeon.crypto.errors import InvalidSignature, MalformedInput, WeakKey
    from pigeon.crypto.identity import Identity

_SIGNER = Identity.from_secrets(bytes(range(32)), bytes(range(32, 64)))
_HEADER = bytes([CARD_VERSION]) + _SIGNER.bundle().to_bytes()


def _card_shaped_text(provider: atheris.FuzzedDataProvider) -> str:
    signed = provider.ConsumeBool()
    body = _HEADER + provider.ConsumeBytes(provider.remaining_bytes())
    if signed:
        body += b"\xff\x00\x40" + _SIGNER.sign(CARD_DOMAIN + body)
    text = base64.b32encode(body).decode("ascii").rstrip("=")
    return f"{TEXT_PREFIX.lower()}\n{text[:50]} {text[50:].lower()}"


def _text(data: bytes) -> str:
    provider = atheris.FuzzedDataProvider(data)
    mode = provider.ConsumeIntInRange(0, 2)
    if mode == 2:
        return _card_shaped_text(provider)
    prefix = TEXT_PREFIX if mode else ""
    return prefix + provider.ConsumeUnicodeNoSurrogates(provider.remaining_bytes())


def fuzz_one_input(data: bytes) -> None:
    """Parse fuzzed text as a card; what parses must survive a binary round trip."""
    try:
        card = ContactCard.from_text(_text(data))
    except (MalformedInput, WeakKey, InvalidSignature):
        return
    if ContactCard.from_bytes(card.to_bytes()) != card:
        raise RuntimeError("a parsed card does not round-trip")
    if card.unverified_fields_dropped and (card.relays or card.name is not None):
        raise RuntimeError("unverified fields were honoured")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
