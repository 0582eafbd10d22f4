"""The gateway's downlink policy: which relay events go onto the mesh, how many, in what form."""

from __future__ import annotations

import json
import random

from pigeon.bitchat.carrier import Direction, decode_carrier
from pigeon.gateway.downlink import CHANNEL_TTL_S, MAX_PENDING, PER_MINUTE, DownlinkPolicy
from pigeon.nostr.event import Event, from_json, sign, verify

NOW = 1_800_000_000.0
RNG = random.Random(3)


def event(text: str, *, geohash: str = "u4pruy", kind: int = 20_000, at: float = NOW) -> Event:
    return sign(RNG.randbytes(32), int(at), kind, (("g", geohash),), text, RNG.randbytes)


def carrying(*channels: str) -> DownlinkPolicy:
    policy = DownlinkPolicy()
    for channel in channels:
        policy.posted(channel, NOW)
    return policy


def test_a_relay_event_for_a_carried_channel_goes_out_as_a_from_gateway_carrier() -> None:
    policy = carrying("u4pruy")
    assert policy.subscription(NOW) == {"kinds": [20_000], "#g": ["u4pruy"], "since": int(NOW)}
    ev = event("hello mesh")
    policy.on_event(ev, False, NOW)
    [payload] = policy.drain(NOW)
    carrier = decode_carrier(payload)
    assert (carrier.direction, carrier.geohash) == (Direction.FROM_GATEWAY, "u4pruy")
    again = from_json(json.loads(carrier.event_json))
    assert again == ev
    verify(again)
    policy.on_event(ev, False, NOW + 1)  # a relay's redelivery
    assert policy.drain(NOW + 1) == []


def test_what_is_never_rebroadcast() -> None:
    policy = carrying("u4pruy")
    ev = event("x")
    forged = Event(ev.id, ev.pubkey, ev.created_at, ev.kind, ev.tags, "changed", ev.sig)
    for candidate, published in (
        (event("mine"), True),  # the node uplinked it: its own echo
        (event("other channel", geohash="u4pruz"), False),
        (event("a note", kind=1), False),
        (event("stale", at=NOW - 901), False),
        (forged, False),
    ):
        policy.on_event(candidate, published, NOW)
    assert policy.drain(NOW) == []
    assert policy.counters == {"skipped": 4, "refused": 1}


def test_budget_per_minute_and_bounded_backlog() -> None:
    policy = carrying("u4pruy")
    for n in range(MAX_PENDING + 10):
        policy.on_event(event(f"m{n}"), False, NOW)
    assert policy.counters["dropped"] == 10  # the oldest go first
    first = policy.drain(NOW)
    assert len(first) == PER_MINUTE
    assert from_json(json.loads(decode_carrier(first[0]).event_json)).content == "m10"
    later = [event(f"l{n}", at=NOW + 30) for n in range(5)]
    for ev in later:
        policy.on_event(ev, False, NOW + 30)
    assert policy.drain(NOW + 30) == []  # this minute's budget is spent: they wait
    out = policy.drain(NOW + 61)
    assert [from_json(json.loads(decode_carrier(p).event_json)) for p in out] == later


def test_channels_last_an_hour_after_the_last_post() -> None:
    policy = carrying("u4pruy")
    policy.posted("gcpvj", NOW + 100)
    assert policy.channels(NOW + CHANNEL_TTL_S - 1) == ["gcpvj", "u4pruy"]
    assert policy.channels(NOW + CHANNEL_TTL_S) == ["gcpvj"]
    assert policy.subscription(NOW + CHANNEL_TTL_S + 100) is None
