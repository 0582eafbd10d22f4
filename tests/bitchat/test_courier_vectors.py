"""The courier codecs against vectors transcribed from bitchat's own (tests/bitchat/vectors/
courier.json names the sources), and bitchat's envelope decoding rules from its tests."""

import json
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey, VerifyKey

from pigeon.bitchat import packet as wire
from pigeon.bitchat.courier_wire import (
    CourierEnvelope,
    candidate_tags,
    ciphertext_hash,
    decode_envelope,
    decode_receipt,
    encode_envelope,
    epoch_day,
    recipient_tag,
)
from pigeon.bitchat.errors import LocalError, MalformedEnvelope

DATA: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent / "vectors" / "courier.json").read_text()
)
INPUTS = DATA["inputs"]
TAG = bytes.fromhex(INPUTS["recipientTag"])
CIPHERTEXT = bytes.fromhex(INPUTS["ciphertext"])
EXPIRY = INPUTS["expiryMillis"]


def vector_envelope() -> CourierEnvelope:
    tlv = DATA["envelopeTLV"]
    return CourierEnvelope(TAG, EXPIRY, CIPHERTEXT, tlv["copies"], tlv["prekeyID"])


def test_sources_are_named_with_commits() -> None:
    for source in DATA["about"]["sources"]:
        assert any(len(word) == 40 for word in source.split())


def test_envelope_encodes_to_the_vector() -> None:
    encoded = encode_envelope(vector_envelope())
    assert encoded.hex() == DATA["envelopeTLV"]["encoded"]
    assert len(encoded) == DATA["envelopeTLV"]["encodedLength"]


def test_vector_decodes_to_its_fields() -> None:
    envelope = decode_envelope(bytes.fromhex(DATA["envelopeTLV"]["encoded"]))
    assert envelope == vector_envelope()
    assert envelope.expiry_ms == 1_800_000_000_000  # milliseconds, not seconds


@pytest.mark.parametrize("case", DATA["copiesClamping"], ids=lambda c: str(c["requested"]))
def test_copies_are_clamped_never_refused(case: dict[str, int]) -> None:
    assert CourierEnvelope(TAG, EXPIRY, CIPHERTEXT, case["requested"]).copies == case["stored"]
    decoded = decode_envelope(
        encode_envelope(CourierEnvelope(TAG, EXPIRY, CIPHERTEXT))
        + bytes((0x04, 0, 1, min(case["requested"], 255)))
    )
    assert decoded.copies == case["stored"]


def test_recipient_tag_matches_the_vector() -> None:
    key = bytes.fromhex(INPUTS["noiseStaticKey"])
    vector = DATA["recipientTagDerivation"]
    assert recipient_tag(key, vector["epochDay"]).hex() == vector["expected"]
    day_start = vector["epochDay"] * 86_400
    assert epoch_day(day_start + 86_399) == vector["epochDay"]
    # Sealed the day before or after still matches (mail crossing midnight).
    for moment in (day_start - 1, day_start + 86_400):
        assert bytes.fromhex(vector["expected"]) in candidate_tags(key, moment)
    assert bytes.fromhex(vector["expected"]) not in candidate_tags(key, day_start + 2 * 86_400)


def test_ciphertext_hash_matches_the_vector() -> None:
    assert ciphertext_hash(CIPHERTEXT).hex() == DATA["ciphertextHash"]["expected"]
    assert decode_receipt(ciphertext_hash(CIPHERTEXT)) == ciphertext_hash(CIPHERTEXT)


def test_deposit_packet_signing_preimage_matches_the_vector() -> None:
    signing = DATA["packetSigning"]
    seed = bytes.fromhex(INPUTS["signingSeed"])
    assert bytes(SigningKey(seed).verify_key).hex() == signing["publicKey"]
    out = wire.OutPacket(
        wire.COURIER_ENVELOPE,
        7,
        INPUTS["timestampMillis"],
        bytes.fromhex(INPUTS["senderID"]),
        encode_envelope(vector_envelope()),
        bytes.fromhex(INPUTS["recipientID"]),
    )
    unsigned = wire.encode(out, padded=False)
    assert unsigned.hex() == signing["unsignedUnpadded"]
    signature = SigningKey(seed).sign(wire.signed_bytes(unsigned, wire.parse(unsigned))).signature
    signed = wire.encode(out, signature, padded=False)
    assert len(signed) == signing["signedWireLength"]
    assert signed[wire.FLAGS_OFFSET] == signing["signedWireFlags"]
    view = wire.parse(signed)
    assert wire.signed_bytes(signed, view).hex() == signing["signingPreimage"]
    VerifyKey(bytes.fromhex(signing["publicKey"])).verify(
        bytes.fromhex(signing["signingPreimage"]), signature
    )
    assert decode_envelope(wire.payload_of(signed, view)) == vector_envelope()


# bitchat's CourierEnvelopeTests.swift: what a decoder refuses and what it tolerates.


def test_missing_ciphertext_is_refused() -> None:
    encoded = encode_envelope(CourierEnvelope(TAG, EXPIRY, CIPHERTEXT))
    with pytest.raises(MalformedEnvelope):
        decode_envelope(encoded[: 3 + 16 + 3 + 8])


def test_truncated_value_is_refused() -> None:
    with pytest.raises(MalformedEnvelope):
        decode_envelope(encode_envelope(CourierEnvelope(TAG, EXPIRY, CIPHERTEXT))[:-1])


@pytest.mark.parametrize(
    "bad",
    [bytes((0x01, 0, 8)) + bytes(8), bytes((0x02, 0, 4)) + bytes(4), bytes((0x04, 0, 2, 0, 4))],
)
def test_wrong_lengths_are_refused(bad: bytes) -> None:
    with pytest.raises(MalformedEnvelope):
        decode_envelope(encode_envelope(CourierEnvelope(TAG, EXPIRY, CIPHERTEXT)) + bad)


def test_unknown_tlvs_are_skipped() -> None:
    envelope = CourierEnvelope(TAG, EXPIRY, CIPHERTEXT)
    assert decode_envelope(encode_envelope(envelope) + bytes.fromhex("7f0002dead")) == envelope


def test_carry_only_envelope_has_no_copies_tlv() -> None:
    plain = encode_envelope(CourierEnvelope(TAG, EXPIRY, CIPHERTEXT))
    assert plain == encode_envelope(CourierEnvelope(TAG, EXPIRY, CIPHERTEXT, 1))
    assert len(plain) == 3 + 16 + 3 + 8 + 3 + len(CIPHERTEXT)


def test_ciphertext_bounds() -> None:
    biggest = CourierEnvelope(TAG, EXPIRY, b"\x01" * 16 * 1024)
    assert decode_envelope(encode_envelope(biggest)) == biggest
    for bad in (CourierEnvelope(TAG, EXPIRY, b""), CourierEnvelope(TAG, EXPIRY, bytes(16385))):
        with pytest.raises(LocalError):
            encode_envelope(bad)
    with pytest.raises(LocalError):
        encode_envelope(CourierEnvelope(bytes(8), EXPIRY, CIPHERTEXT))


def test_receipt_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(MalformedEnvelope):
        decode_receipt(bytes(15))
