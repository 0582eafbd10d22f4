"""Fuzz the Pigeon app's contact card: text, link and protobuf forms.

The first byte picks the form: raw protobuf bytes, text (base64 or anything), a
`pigeon://contact?card=` link, or protobuf fields after a valid version and identity, so the
fuzzer reaches relay and prekey handling. What parses must rebuild to a card that parses
equal (less the drop flags).
"""

import dataclasses
import sys

import atheris

with atheris.instrument_imports():
    from pigeon.crypto.app_bundle import AppIdentityBundle
    from pigeon.crypto.app_card import AppContactCard
    from pigeon.crypto.errors import InvalidSignature, MalformedInput, WeakKey
    from pigeon.crypto.protobuf import bytes_field
    from pigeon.crypto.signing import SigningKey

_SIGNER = SigningKey(bytes(range(32)))
_HEADER = b"\x08\x03" + bytes_field(2, AppIdentityBundle.sign(_SIGNER, bytes(32)).to_bytes())
_ERRORS = (MalformedInput, InvalidSignature, WeakKey)


def _parse(data: bytes) -> AppContactCard:
    mode, rest = (data[0] % 4, data[1:]) if data else (0, data)
    if mode == 0:
        return AppContactCard.from_bytes(rest)
    if mode == 3:
        return AppContactCard.from_bytes(_HEADER + rest)
    text = rest.decode("utf-8", errors="replace")
    return AppContactCard.from_text(text if mode == 1 else "pigeon://contact?card=" + text)


def fuzz_one_input(data: bytes) -> None:
    """One fuzz case: see the module docstring."""
    try:
        card = _parse(data)
    except _ERRORS:
        return
    if card.relays_dropped and card.relay_urls:
        raise RuntimeError("dropped relays were kept")
    # A rebuilt card holds only what was honoured, so nothing is dropped from it again.
    kept = dataclasses.replace(card, relays_dropped=False, prekey_dropped=False)
    if AppContactCard.from_text(card.to_link()) != kept:
        raise RuntimeError("a parsed card does not round-trip")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
