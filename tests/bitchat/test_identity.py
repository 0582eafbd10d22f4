"""The node's bitchat identity: peer id from its key, signed announces and messages that the
neighbourhood chat (and so a phone's rules) accepts, and refusals of forged ones."""

import random

import pytest

from pigeon.bitchat import packet as wire
from pigeon.bitchat.chat import PublicChat, PublicMessage
from pigeon.bitchat.errors import BadSignature, IdentityMismatch, LocalError, MalformedAnnounce
from pigeon.bitchat.identity import BitchatIdentity, encode_capabilities, peer_id_for
from tests.bitchat.helpers import NOW_MS


def _identity(seed: int) -> BitchatIdentity:
    return BitchatIdentity.generate(random.Random(seed).randbytes)


def test_state_round_trips_and_is_versioned() -> None:
    me = _identity(1)
    assert BitchatIdentity.from_bytes(me.to_bytes()) == me
    with pytest.raises(ValueError, match="version 1"):
        BitchatIdentity.from_bytes(b"\x02" + me.to_bytes()[1:])


def test_peer_id_is_sha256_prefix_of_noise_key() -> None:
    me = _identity(2)
    view = wire.parse(me.announce("node", NOW_MS))
    assert view.sender == me.peer_id == peer_id_for(me.noise_public)


def test_announce_is_signed_over_ttl_zero_and_stays_uncompressed() -> None:
    me = _identity(3)
    data = me.announce("x" * 24, NOW_MS)
    view = wire.parse(data)
    assert view.is_signed
    assert not view.flags & wire.FLAG_COMPRESSED
    assert wire.payload_of(data, view).endswith(b"\x05\x01\x00")  # capabilities TLV: none
    chat = PublicChat()
    chat.receive(wire.with_ttl(data, 3))  # a relay's TTL change keeps the signature valid
    assert chat.nickname_of(me.peer_id) == "x" * 24
    with pytest.raises(LocalError):
        me.announce("x" * 25, NOW_MS)


def test_public_messages_from_announced_peers_are_heard() -> None:
    me, chat = _identity(4), PublicChat()
    assert chat.receive(me.public_message("before announce", NOW_MS)) is None
    chat.receive(me.announce("anna", NOW_MS))
    for text in ("hi", "a long line that bitchat's encoder would compress, " * 5):
        heard = chat.receive(me.public_message(text, NOW_MS))
        assert heard == PublicMessage(me.peer_id, "anna", NOW_MS, text)


def test_forgeries_are_refused() -> None:
    me, other, chat = _identity(5), _identity(6), PublicChat()
    chat.receive(me.announce("anna", NOW_MS))
    forged = bytearray(other.public_message("i am anna", NOW_MS))
    forged[wire.V1_HEADER_SIZE : wire.V1_HEADER_SIZE + 8] = me.peer_id
    with pytest.raises(BadSignature):
        chat.receive(bytes(forged))
    stolen = bytearray(other.announce("anna", NOW_MS))
    stolen[wire.V1_HEADER_SIZE : wire.V1_HEADER_SIZE + 8] = me.peer_id
    with pytest.raises(IdentityMismatch):
        chat.receive(bytes(stolen))
    edited = bytearray(me.announce("anna", NOW_MS))
    edited[wire.V1_HEADER_SIZE + 8 + 2] ^= 1  # the nickname's first byte
    with pytest.raises(BadSignature):
        chat.receive(bytes(edited))


def test_announce_tlvs_cut_short_are_malformed() -> None:
    from pigeon.bitchat.chat import parse_announce

    with pytest.raises(MalformedAnnounce):
        parse_announce(b"\x01\x05ab")
    with pytest.raises(MalformedAnnounce):
        parse_announce(b"\x01\x02ab")


def test_capability_bits_encode_little_endian_shortest() -> None:
    assert [encode_capabilities(v) for v in (0, 1, 0x104)] == [b"\x00", b"\x01", b"\x04\x01"]
