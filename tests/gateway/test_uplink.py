"""The gateway's uplink policy: what it publishes for mesh-only phones, and what it refuses."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.bitchat import packet as wire
from pigeon.bitchat.carrier import Direction, NostrCarrier, encode_carrier
from pigeon.bitchat.events import Addressed, FrameReceived, LinkUp
from pigeon.bitchat.fragment import split
from pigeon.bitchat.identity import BitchatIdentity
from pigeon.bitchat.router import BitchatRouter
from pigeon.gateway.uplink import (
    MAX_QUEUED_PER_DEPOSITOR,
    PER_DEPOSITOR_PER_MINUTE,
    UplinkPolicy,
    valid_geohash,
)
from pigeon.nostr.event import Event, sign

NOW = 1_800_000_000.0
NODE = BitchatIdentity(b"\x01" * 32, b"\x02" * 32)
LEE = BitchatIdentity(b"\x03" * 32, b"\x04" * 32)
KAI = BitchatIdentity(b"\x05" * 32, b"\x06" * 32)
RNG = random.Random(7)


def event(text: str, *, kind: int = 20_000, geohash: str = "u4pruy", at: float = NOW) -> Event:
    tags = (("g", geohash), ("n", "lee"))
    return sign(RNG.randbytes(32), int(at), kind, tags, text, RNG.randbytes)


def deposit(
    who: BitchatIdentity,
    ev: Event,
    *,
    direction: Direction = Direction.TO_GATEWAY,
    geohash: str = "u4pruy",
    at: float = NOW,
    recipient: bytes = NODE.peer_id,
) -> bytes:
    body = json.dumps(ev.to_json()).encode()
    payload = encode_carrier(NostrCarrier(direction, geohash, body))
    return who.directed(wire.NOSTR_CARRIER, recipient, payload, int(at * 1000))


def policy() -> UplinkPolicy:
    keys = {LEE.peer_id: LEE.signing_public, KAI.peer_id: KAI.signing_public}
    return UplinkPolicy(keys.get)


def test_a_signed_fresh_carrier_is_queued_then_published_once() -> None:
    uplink = policy()
    ev = event("hello")
    queued = uplink.deposit(deposit(LEE, ev), NOW)
    assert queued is not None
    assert (queued.event, queued.depositor, queued.geohash) == (ev, LEE.peer_id, "u4pruy")
    assert uplink.deposit(deposit(LEE, ev), NOW + 1) is None  # a repeat while queued
    assert [q.event for q in uplink.take()] == [ev]
    uplink.settle(ev.id, True, NOW + 2)
    assert uplink.deposit(deposit(KAI, ev), NOW + 3) is None  # published: never again
    assert uplink.counters["published"] == 1
    assert uplink.counters["duplicate"] == 2


@pytest.mark.parametrize(
    ("packet", "counter"),
    [
        (deposit(LEE, event("x"), direction=Direction.FROM_GATEWAY), "refused_shape"),
        (deposit(LEE, event("x"), direction=Direction.TO_BRIDGE), "refused_shape"),
        (deposit(LEE, event("x", kind=1)), "refused_shape"),
        (deposit(LEE, event("x", geohash="u4pruz")), "refused_shape"),  # the g tag differs
        (deposit(LEE, event("x", geohash="U4"), geohash="U4"), "refused_shape"),  # not a geohash
        (deposit(LEE, event("x", at=NOW - 901)), "refused_shape"),  # stale
        (deposit(LEE, event("x", at=NOW + 901)), "refused_shape"),
        (deposit(BitchatIdentity(b"\x09" * 32, b"\x0a" * 32), event("x")), "refused_unannounced"),
    ],
)
def test_refused_shapes(packet: bytes, counter: str) -> None:
    uplink = policy()
    assert uplink.deposit(packet, NOW) is None
    assert uplink.counters[counter] == 1
    assert uplink.take() == []


def test_a_forged_event_or_packet_is_never_published() -> None:
    uplink = policy()
    good = event("real")
    forged = Event(good.id, good.pubkey, good.created_at, good.kind, good.tags, "fake", good.sig)
    assert uplink.deposit(deposit(LEE, forged), NOW) is None
    resigned = Event(good.id, good.pubkey, good.created_at, good.kind, good.tags, good.content,
                     good.sig[:-2] + ("00" if good.sig[-2:] != "00" else "11"))  # fmt: skip
    assert uplink.deposit(deposit(LEE, resigned), NOW) is None
    as_kai = deposit(LEE, good)  # signed by lee, claimed by... kai's key below
    assert UplinkPolicy({LEE.peer_id: KAI.signing_public}.get).deposit(as_kai, NOW) is None
    assert uplink.counters["refused_BadEventId"] == 1
    assert uplink.counters["refused_BadEventSignature"] == 1
    assert uplink.take() == []


def test_rate_per_depositor_per_minute() -> None:
    uplink = policy()
    for n in range(PER_DEPOSITOR_PER_MINUTE + 1):
        uplink.deposit(deposit(LEE, event(f"m{n}")), NOW + n)
        for q in uplink.take():
            uplink.settle(q.event.id, True, NOW + n)
    assert uplink.counters["published"] == PER_DEPOSITOR_PER_MINUTE
    assert uplink.counters["refused_rate"] == 1
    assert uplink.deposit(deposit(KAI, event("kai")), NOW + 11) is not None  # others unaffected
    assert uplink.deposit(deposit(LEE, event("later", at=NOW + 61)), NOW + 61) is not None


def test_offline_queue_is_bounded_per_depositor() -> None:
    uplink = policy()
    for n in range(MAX_QUEUED_PER_DEPOSITOR + 2):
        uplink.deposit(deposit(LEE, event(f"q{n}")), NOW)
    assert uplink.queued == MAX_QUEUED_PER_DEPOSITOR
    assert uplink.counters["refused_full"] == 2


def test_unanswered_events_go_back_and_refused_ones_do_not() -> None:
    uplink = policy()
    a, b = event("a"), event("b")
    uplink.deposit(deposit(LEE, a), NOW)
    uplink.deposit(deposit(LEE, b), NOW)
    taken = uplink.take()
    assert uplink.take() == []  # in flight: not handed out twice
    uplink.settle(taken[0].event.id, None, NOW)  # the relay went away
    uplink.settle(taken[1].event.id, False, NOW)  # a relay said no: final
    assert [q.event for q in uplink.take()] == [a]
    assert uplink.counters["relay_refused"] == 1


def test_geohash_alphabet() -> None:
    assert valid_geohash("u4pruydqqvj")
    assert not valid_geohash("a")  # not in the base32 alphabet
    assert not valid_geohash("")
    assert not valid_geohash("u" * 13)


@given(st.binary(max_size=200))
def test_any_payload_never_raises(payload: bytes) -> None:
    packet = LEE.directed(wire.NOSTR_CARRIER, NODE.peer_id, payload, int(NOW * 1000))
    assert policy().deposit(packet, NOW) is None


def test_a_carrier_too_big_for_one_write_arrives_in_fragments_and_is_taken() -> None:
    router = BitchatRouter(NODE.peer_id, random.Random(1))
    router.handle(LinkUp("a", 512), NOW)
    ev = event("a long post " + "".join(chr(0x41 + RNG.randrange(26)) for _ in range(3000)))
    whole = deposit(LEE, ev)
    frames = split(whole, NODE.peer_id, 512, b"\x07" * 8)
    assert len(frames) > 2
    actions = [a for f in reversed(frames) for a in router.handle(FrameReceived("a", f), NOW)]
    [addressed] = [a for a in actions if isinstance(a, Addressed)]
    assert addressed.packet == whole
    uplink = policy()
    queued = uplink.deposit(addressed.packet, NOW)
    assert queued is not None
    assert queued.event == ev
