"""BIP-340 through coincurve: the published test vectors, and our wrapper's refusals."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pigeon.nostr import schnorr
from pigeon.nostr.errors import LocalError

VECTORS = list(
    csv.DictReader((Path(__file__).parent / "vectors" / "bip340-test-vectors.csv").open())
)
# Nostr signs 32-byte ids only; BIP-340's vectors 15-18 sign other lengths.
NOSTR_VECTORS = [v for v in VECTORS if len(v["message"]) == 64]


def test_the_vectors_are_all_there() -> None:
    assert len(VECTORS) == 19
    assert len(NOSTR_VECTORS) == 15


@pytest.mark.parametrize("vector", NOSTR_VECTORS, ids=lambda v: v["index"])
def test_verification_matches_bip340(vector: dict[str, str]) -> None:
    ok = schnorr.verify(
        bytes.fromhex(vector["public key"]),
        bytes.fromhex(vector["message"]),
        bytes.fromhex(vector["signature"]),
    )
    assert ok is (vector["verification result"] == "TRUE"), vector["comment"]


@pytest.mark.parametrize("vector", [v for v in NOSTR_VECTORS if v["secret key"]])
def test_signing_matches_bip340(vector: dict[str, str]) -> None:
    secret = bytes.fromhex(vector["secret key"])
    assert schnorr.public_key(secret).hex().upper() == vector["public key"]
    signature = schnorr.sign(
        secret, bytes.fromhex(vector["message"]), bytes.fromhex(vector["aux_rand"])
    )
    assert signature.hex().upper() == vector["signature"]


@pytest.mark.parametrize("vector", [v for v in VECTORS if len(v["message"]) != 64])
def test_other_message_lengths_are_refused_not_misverified(vector: dict[str, str]) -> None:
    message = bytes.fromhex(vector["message"])
    assert not schnorr.verify(
        bytes.fromhex(vector["public key"]), message, bytes.fromhex(vector["signature"])
    )
    with pytest.raises(LocalError):
        schnorr.sign(bytes.fromhex(vector["secret key"]), message, b"\x00" * 32)


@pytest.mark.parametrize("secret", [b"\x00" * 32, b"\xff" * 32, b"\x01" * 31])
def test_invalid_secrets_are_local_errors(secret: bytes) -> None:
    with pytest.raises(LocalError):
        schnorr.public_key(secret)
    with pytest.raises(LocalError):
        schnorr.sign(secret, b"\x00" * 32, b"\x00" * 32)


def test_malformed_inputs_never_verify() -> None:
    vector = NOSTR_VECTORS[0]
    key, msg, sig = (bytes.fromhex(vector[k]) for k in ("public key", "message", "signature"))
    assert schnorr.verify(key, msg, sig)
    assert not schnorr.verify(key[:31], msg, sig)
    assert not schnorr.verify(key, msg, sig[:63])
    assert not schnorr.verify(b"\xff" * 32, msg, sig)  # not an x coordinate below p
