"""Our codecs against the known-answer vectors in tests/pigeon_app/vectors/ (the app's layouts)."""

import json
from pathlib import Path
from typing import Any

import pytest

from pigeon.appmesh.envelope import Envelope, EnvelopeType, decode_envelope, encode_envelope
from pigeon.appmesh.errors import MalformedEnvelope, MalformedFragment, MalformedPacket
from pigeon.appmesh.fragment import Fragment, decode_fragment, encode_fragment, payload_size, split
from pigeon.appmesh.packet import AppPacket, decode_packet, encode_packet, with_ttl
from pigeon.appmesh.reassembly import MAX_MESSAGE_BYTES, MAX_PENDING, MAX_SOURCES
from pigeon.appmesh.seen import PHONE_SEEN_IDS

VECTORS = Path(__file__).resolve().parent.parent / "pigeon_app" / "vectors"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


FRAGMENTS = _load("fragments.json")
PACKETS = _load("packets.json")
ENVELOPES = _load("envelopes.json")


def _ids(vector: dict[str, Any]) -> str:
    return str(vector["name"])


def test_every_vector_names_its_source_lines() -> None:
    for data in (FRAGMENTS, PACKETS, ENVELOPES):
        assert len(data["about"]["commit"]) == 40
        for key, items in data.items():
            if isinstance(items, list):
                for vector in items:
                    assert ".rs:" in vector["source"] or ".swift:" in vector["source"], key


@pytest.mark.parametrize("vector", FRAGMENTS["fragments"], ids=_ids)
def test_fragment_vector(vector: dict[str, Any]) -> None:
    fragment = Fragment(
        vector["message_id"], vector["index"], vector["count"], bytes.fromhex(vector["payload_hex"])
    )
    assert encode_fragment(fragment).hex() == vector["hex"]
    assert decode_fragment(bytes.fromhex(vector["hex"])) == fragment


@pytest.mark.parametrize("vector", FRAGMENTS["malformed"], ids=_ids)
def test_malformed_fragment_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(MalformedFragment):
        decode_fragment(bytes.fromhex(vector["hex"]))


@pytest.mark.parametrize("vector", FRAGMENTS["splits"], ids=_ids)
def test_split_vector(vector: dict[str, Any]) -> None:
    message = bytes.fromhex(vector["message_hex"])
    frames = split(message, vector["message_id"], vector["size"])
    assert [frame.hex() for frame in frames] == vector["fragments"]


@pytest.mark.parametrize("vector", FRAGMENTS["payload_sizing"], ids=_ids)
def test_payload_sizing_vector(vector: dict[str, Any]) -> None:
    assert payload_size(vector["value_lengths"]) == vector["payload"]


def test_reassembly_caps_are_the_apps() -> None:
    caps = FRAGMENTS["reassembly_caps"]
    assert (
        caps["max_message_bytes"],
        caps["max_pending_per_source"],
        caps["max_sources"],
    ) == (MAX_MESSAGE_BYTES, MAX_PENDING, MAX_SOURCES)


@pytest.mark.parametrize("vector", PACKETS["packets"], ids=_ids)
def test_packet_vector(vector: dict[str, Any]) -> None:
    packet = AppPacket(
        vector["ttl"], bytes.fromhex(vector["packet_id_hex"]), bytes.fromhex(vector["payload_hex"])
    )
    assert encode_packet(packet).hex() == vector["hex"]
    assert decode_packet(bytes.fromhex(vector["hex"])) == packet


@pytest.mark.parametrize("vector", PACKETS["relays"], ids=_ids)
def test_relay_vector(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["in_hex"])
    ttl = decode_packet(data).ttl
    if vector["out_hex"] is None:
        assert ttl <= 1
    else:
        assert ttl > 1
        assert with_ttl(data, ttl - 1).hex() == vector["out_hex"]


@pytest.mark.parametrize("vector", PACKETS["malformed"], ids=_ids)
def test_malformed_packet_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(MalformedPacket):
        decode_packet(bytes.fromhex(vector["hex"]))


def test_phone_seen_cache_size_is_the_apps() -> None:
    assert PACKETS["defaults"]["phone_seen_ids"] == PHONE_SEEN_IDS


@pytest.mark.parametrize("vector", ENVELOPES["envelopes"], ids=_ids)
def test_envelope_vector(vector: dict[str, Any]) -> None:
    envelope = Envelope(
        EnvelopeType(vector["type"]),
        bytes.fromhex(vector["sender_hex"]),
        bytes.fromhex(vector["recipient_hex"]),
        bytes.fromhex(vector["payload_hex"]),
    )
    assert encode_envelope(envelope).hex() == vector["hex"]
    assert decode_envelope(bytes.fromhex(vector["hex"])) == envelope


def test_envelope_vectors_cover_every_type() -> None:
    assert sorted(v["type"] for v in ENVELOPES["envelopes"]) == [int(t) for t in EnvelopeType]


@pytest.mark.parametrize("vector", ENVELOPES["malformed"], ids=_ids)
def test_malformed_envelope_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(MalformedEnvelope):
        decode_envelope(bytes.fromhex(vector["hex"]))
