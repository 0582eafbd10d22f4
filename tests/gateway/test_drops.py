"""Courier drops (kind 1401): bitchat's event layout, what a reader refuses, and the planner."""

from __future__ import annotations

import base64
import contextlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.bitchat.courier import HeldEnvelope
from pigeon.bitchat.courier_wire import CourierEnvelope, encode_envelope, epoch_day, recipient_tag
from pigeon.gateway.drops import (
    COOLDOWN_S,
    DROP_KIND,
    MAX_WATCHED_PEERS,
    PARK_PER_ROUND,
    DropPlanner,
    Watched,
    drop_filter,
    make_drop,
    read_drop,
    watch_tags,
)
from pigeon.nostr.errors import BadEventSignature, MalformedEvent, RemoteError
from pigeon.nostr.event import Event, sign, verify

NOW = 1_800_000_000.0
BOB_KEY = b"\x42" * 32
TAG = recipient_tag(BOB_KEY, epoch_day(NOW))
ENVELOPE = CourierEnvelope(TAG, int((NOW + 3600) * 1000), b"sealed" * 10, copies=2)


def rand(n: int) -> bytes:
    return random.Random(n).randbytes(n)


def test_a_drop_is_bitchats_kind_1401() -> None:
    drop = make_drop(ENVELOPE, int(NOW), random.Random(1).randbytes)
    verify(drop)
    assert drop.kind == DROP_KIND == 1401
    assert drop.tags == (("x", TAG.hex()), ("expiration", str(int(NOW) + 3600)))
    assert base64.b64decode(drop.content) == encode_envelope(ENVELOPE)
    assert read_drop(drop, NOW) == ENVELOPE
    other = make_drop(ENVELOPE, int(NOW), random.Random(2).randbytes)
    assert other.pubkey != drop.pubkey  # a throwaway key per publish


def _drop(tags: tuple[tuple[str, ...], ...], content: str, kind: int = DROP_KIND) -> Event:
    return sign(b"\x07" * 32, int(NOW), kind, tags, content, rand)


GOOD = base64.b64encode(encode_envelope(ENVELOPE)).decode()


@pytest.mark.parametrize(
    "event",
    [
        _drop((("x", TAG.hex()),), GOOD, kind=1),
        _drop((("x", "00" * 16),), GOOD),  # the x tag is not the envelope's
        _drop((), GOOD),
        _drop((("x", TAG.hex()),), "not base64!"),
        _drop((("x", TAG.hex()),), base64.b64encode(b"\x01\x00").decode()),
        _drop((("x", TAG.hex()),), "A" * 30_000),
    ],
)
def test_malformed_drops_are_refused(event: Event) -> None:
    with pytest.raises(MalformedEvent):
        read_drop(event, NOW)


def test_expired_and_forged_drops_are_refused() -> None:
    drop = make_drop(ENVELOPE, int(NOW), rand)
    with pytest.raises(MalformedEvent):
        read_drop(drop, NOW + 3600)
    forged = Event(drop.id, drop.pubkey, drop.created_at, drop.kind, drop.tags, drop.content,
                   "00" * 64)  # fmt: skip
    with pytest.raises(BadEventSignature):
        read_drop(forged, NOW)


def test_filter_and_watch_tags() -> None:
    peers = [Watched(bytes((n,)) * 8, f"l{n}", bytes((n,)) * 32) for n in range(20)]
    tags = watch_tags(peers, NOW)
    assert len(tags) == 3 * MAX_WATCHED_PEERS
    assert tags[recipient_tag(peers[0].noise_key, epoch_day(NOW) + 1).hex()] == peers[0]
    assert drop_filter(["bb", "aa"], NOW) == {
        "kinds": [1401], "#x": ["aa", "bb"], "since": int(NOW) - 86_400, "limit": 100,
    }  # fmt: skip


def held(stored_at: float, n: int = 0) -> HeldEnvelope:
    envelope = CourierEnvelope(TAG, int((NOW + 7200) * 1000), b"c%d" % n)
    return HeldEnvelope(envelope, b"\x01" * 32, stored_at, NOW + 7200)


def test_planner_parks_after_a_while_once_per_cooldown() -> None:
    planner = DropPlanner(park_after_s=600)
    fresh, old = held(NOW - 10, 1), held(NOW - 700, 2)
    assert planner.to_park([fresh, old], NOW) == [old]
    assert planner.to_park([fresh, old], NOW + 1) == []  # in flight
    planner.parked(old.identity, False, NOW + 2)  # no relay answered: try again
    assert planner.to_park([old], NOW + 3) == [old]
    planner.parked(old.identity, True, NOW + 4)
    assert planner.to_park([old], NOW + 5) == []
    assert planner.to_park([old], NOW + 4 + COOLDOWN_S) == [old]


def test_a_planner_started_with_what_was_parked_keeps_its_cooldown() -> None:
    old = held(NOW - 700, 2)
    planner = DropPlanner(park_after_s=600, parked={old.identity: NOW - 60})  # from the ledger
    assert planner.to_park([old], NOW) == []
    assert planner.to_park([old], NOW - 60 + COOLDOWN_S) == [old]


def test_planner_remembers_drops_handed_over() -> None:
    planner = DropPlanner()
    assert planner.is_new("ab")
    planner.handed_over("ab", NOW)
    assert not planner.is_new("ab")


@given(st.text(max_size=300), st.lists(st.lists(st.text(max_size=40), max_size=3), max_size=3))
def test_any_drop_event_reads_or_raises_remote_errors(content: str, tags: list[list[str]]) -> None:
    try:
        event = _drop(tuple(map(tuple, tags)), content)
    except MalformedEvent:
        return
    with contextlib.suppress(RemoteError):
        read_drop(event, NOW)


def test_planner_parks_a_bounded_batch_per_round() -> None:
    planner = DropPlanner(park_after_s=0)
    many = [held(NOW - 10, n) for n in range(PARK_PER_ROUND * 2 + 5)]
    first = planner.to_park(many, NOW)
    assert len(first) == PARK_PER_ROUND  # a courier holding thousands must not flood a relay
    second = planner.to_park(many, NOW)
    assert len(second) == PARK_PER_ROUND
    assert not {h.identity for h in first} & {h.identity for h in second}


def test_drops_match_bitchats_format_filter_and_reading() -> None:
    """Our kind-1401 drops as bitchat writes, asks for and reads them, from bitchat's sources at
    9b84b361 (permissionlesstech/bitchat, re-read for this test):

    - bitchat/Nostr/NostrProtocol.swift:36 (`courierDrop = 1401`) and :404-423
      (`createCourierDropEvent`): tags exactly `[["x", tag hex], ["expiration",
      String(Int(expiry seconds))]]` in that order, content `envelope.base64EncodedString()`
      (standard alphabet, padded, no line breaks), `created_at` now, a throwaway key
      (BridgeCourierService.swift:361-367, :608-610).
    - bitchat/Services/Gateway/BridgeCourierService.swift:365 passes the expiry as
      `TimeInterval(envelope.expiry) / 1000`, and `Int(...)` truncates: an expiry of ...999 ms
      is tagged the second before, not rounded up.
    - bitchat/Nostr/NostrRelayManager.swift:1918-1925 (`courierDrops`) with
      ChatViewModelBootstrapper.swift:564-571: `{"kinds":[1401],"#x":tags,"since":now-24 h,
      "limit":100}`, the tags sorted (BridgeCourierService.swift:489).
    - BridgeCourierService.swift:554-588 (`handleDropEvent`): kind 1401, Base64 content of at
      most 20 KiB (:54) that decodes to an unexpired envelope (CourierEnvelope.swift:73-75,
      `now_ms >= expiry` is expired), and an `x` tag equal to the envelope's own tag in
      lowercase hex (:571).
    - Dedup, BridgeCourierService.swift:560, :583-586 and BridgeDropDedupStore.swift:60-74: a
      drop is consumed only once the hand-over to the peer's link succeeded, and the record
      persists across relaunches for the 24 h drop window. Ours persists too (the spool's drop
      ledger) but is keyed by the envelope's identity, not the event id: the same envelope
      parked twice (two throwaway keys) or handed over in person is still one delivery
      (tests/daemon/test_gateway_kill.py, test_bitchat_gateway.py).
    """
    expiry_ms = int(NOW * 1000) + 3_600_999
    envelope = CourierEnvelope(TAG, expiry_ms, b"\xfb\xff" * 40, copies=3)
    drop = make_drop(envelope, int(NOW), rand)
    assert drop.kind == 1401
    assert drop.created_at == int(NOW)
    assert [list(t) for t in drop.tags] == [["x", TAG.hex()], ["expiration", str(int(NOW) + 3600)]]
    assert TAG.hex() == TAG.hex().lower()
    raw = encode_envelope(envelope)
    assert drop.content == base64.standard_b64encode(raw).decode("ascii")
    assert not set(drop.content) & set("\n-_")  # not URL-safe, no line breaks

    tags = [recipient_tag(BOB_KEY, epoch_day(NOW) + d).hex() for d in (1, -1, 0)]
    assert drop_filter(tags, NOW) == {
        "kinds": [1401],
        "#x": sorted(tags),
        "since": int(NOW - 24 * 60 * 60),
        "limit": 100,
    }

    assert read_drop(drop, expiry_ms / 1000 - 0.002) == envelope
    with pytest.raises(MalformedEvent):
        read_drop(drop, expiry_ms / 1000)  # bitchat: expired once now_ms >= expiry
    upper = sign(b"\x09" * 32, int(NOW), DROP_KIND, (("x", TAG.hex().upper()),), drop.content, rand)
    with pytest.raises(MalformedEvent):
        read_drop(upper, NOW)  # bitchat compares the lowercase hex exactly
    big = CourierEnvelope(TAG, expiry_ms, b"\x01" * (16 * 1024))
    assert len(encode_envelope(big)) <= 20 * 1024  # bitchat's largest envelope fits a drop
    assert read_drop(make_drop(big, int(NOW), rand), NOW) == big
