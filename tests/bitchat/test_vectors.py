"""Our bitchat packet reader against layouts transcribed from bitchat's own tests."""

import json
from pathlib import Path
from typing import Any

import pytest

from pigeon.bitchat import packet as wire
from pigeon.bitchat.errors import MalformedFragment, RemoteError
from pigeon.bitchat.fragment import read_fragment_header
from pigeon.bitchat.padding import pad

DATA: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent / "vectors" / "packets.json").read_text()
)


def _ids(vector: dict[str, Any]) -> str:
    return str(vector["name"])


def test_every_vector_names_its_source_lines() -> None:
    assert len(DATA["about"]["commit"]) == 40
    for vector in DATA["packets"] + DATA["malformed"]:
        assert ".swift:" in vector["source"]


@pytest.mark.parametrize("vector", DATA["packets"], ids=_ids)
def test_packet_fields(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    expect = vector["expect"]
    for candidate in (data, pad(data)):  # bitchat sends padded; a relay reads both
        view = wire.parse(candidate)
        assert (view.version, view.type, view.ttl) == (
            expect["version"],
            expect["type"],
            expect["ttl"],
        )
        assert view.timestamp_ms == expect["timestamp_ms"]
        assert view.sender.hex() == expect["sender"]
        assert (view.recipient.hex() if view.recipient else None) == expect["recipient"]
        assert [hop.hex() for hop in view.route] == expect["route"]
        assert view.is_signed == expect["signed"]
        assert bool(view.flags & wire.FLAG_COMPRESSED) == expect["compressed"]
        assert view.end == len(data)
        if expect["payload"] is not None:
            assert wire.payload_of(candidate, view).hex() == expect["payload"]
        if expect["signed"]:
            assert wire.signature_of(candidate, view) == b"\xab" * 64


@pytest.mark.parametrize("vector", DATA["packets"], ids=_ids)
def test_forwarding_changes_only_the_ttl_byte(vector: dict[str, Any]) -> None:
    data = pad(bytes.fromhex(vector["hex"]))
    forwarded = wire.with_ttl(data, 1)
    assert [i for i, (a, b) in enumerate(zip(data, forwarded, strict=True)) if a != b] in ([], [2])
    assert wire.parse(forwarded).ttl == 1


def test_fragment_header() -> None:
    (vector,) = [v for v in DATA["packets"] if "fragment" in v["expect"]]
    data = bytes.fromhex(vector["hex"])
    header = read_fragment_header(wire.payload_of(data, wire.parse(data)))
    expect = vector["expect"]["fragment"]
    assert header.fragment_id.hex() == expect["id"]
    assert (header.index, header.total, header.original_type) == (
        expect["index"],
        expect["total"],
        expect["original_type"],
    )


@pytest.mark.parametrize("vector", DATA["malformed"], ids=_ids)
def test_malformed_is_refused(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    if vector.get("fragment"):
        with pytest.raises(MalformedFragment):
            read_fragment_header(wire.payload_of(data, wire.parse(data)))
    else:
        with pytest.raises(RemoteError):
            wire.parse(data)
