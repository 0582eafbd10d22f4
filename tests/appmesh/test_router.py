"""The app router: flooding, drops by reason, rate and size caps, short custody."""

import json
from pathlib import Path

import pytest

from pigeon.appmesh.events import (
    Action,
    Drop,
    DropReason,
    FrameReceived,
    LinkDown,
    LinkUp,
    OfferUplink,
    SendFrame,
    Tick,
)
from pigeon.appmesh.fragment import split
from pigeon.appmesh.packet import with_ttl
from pigeon.appmesh.router import AppRouter, AppRouterConfig

from .helpers import ALICE, BOB, CAROL, app_packet, packets_sent

VECTORS = Path(__file__).resolve().parent.parent / "pigeon_app" / "vectors"


def _router(*links: str, config: AppRouterConfig | None = None) -> AppRouter:
    router = AppRouter(config)
    for link in links:
        router.handle(LinkUp(link, 185), 0.0)
    return router


def _receive(router: AppRouter, link: str, packet: bytes, now: float = 0.0) -> list[Action]:
    actions: list[Action] = []
    for frame in split(packet, 1, 150):
        actions += router.handle(FrameReceived(link, frame), now)
    return actions


def _drops(actions: list[Action]) -> list[DropReason]:
    return [a.reason for a in actions if isinstance(a, Drop)]


def test_floods_to_every_other_link_with_ttl_lowered() -> None:
    router = _router("a", "b", "c")
    packet = app_packet(1, ttl=8)
    sent = packets_sent(_receive(router, "a", packet))
    assert sent == {"b": [with_ttl(packet, 7)], "c": [with_ttl(packet, 7)]}
    assert router.counters["relayed"] == 1


@pytest.mark.parametrize(
    "vector", json.loads((VECTORS / "envelopes.json").read_text())["packets"], ids=str
)
def test_forwarded_bytes_are_the_vectors(vector: dict[str, str]) -> None:
    router = _router("a", "b")
    sent = packets_sent(_receive(router, "a", bytes.fromhex(vector["hex"])))
    assert sent == {"b": [bytes.fromhex(vector["forwarded_hex"])]}


def test_a_duplicate_from_any_link_is_dropped() -> None:
    router = _router("a", "b", "c")
    packet = app_packet(2)
    _receive(router, "a", packet)
    again = _receive(router, "c", with_ttl(packet, 6))
    assert packets_sent(again) == {}
    assert _drops(again) == [DropReason.DUPLICATE]
    assert router.counters["duplicate"] == 1


@pytest.mark.parametrize("ttl", [0, 1])
def test_hop_limit_stops_relaying(ttl: int) -> None:
    router = _router("a", "b")
    actions = _receive(router, "a", app_packet(3, ttl=ttl))
    assert packets_sent(actions) == {}
    assert _drops(actions) == [DropReason.TTL]


def test_ttl_two_goes_on_as_one() -> None:
    router = _router("a", "b")
    packet = app_packet(4, ttl=2)
    assert packets_sent(_receive(router, "a", packet)) == {"b": [with_ttl(packet, 1)]}


def test_an_inflated_ttl_is_cut_to_the_apps_hop_limit() -> None:
    router = _router("a", "b")
    packet = app_packet(5, ttl=200)
    assert packets_sent(_receive(router, "a", packet)) == {"b": [with_ttl(packet, 7)]}


@pytest.mark.parametrize(
    "packet",
    [
        b"\x02" + app_packet(6)[1:],  # packet version
        app_packet(6)[:17],  # shorter than a packet header
        app_packet(6)[:18] + b"\x01\x02" + bytes(63),  # envelope shorter than its header
        app_packet(6)[:18] + b"\x09" + app_packet(6)[19:],  # envelope version
        app_packet(6)[:19] + b"\x07" + app_packet(6)[20:],  # envelope type
    ],
    ids=["packet-version", "packet-short", "envelope-short", "envelope-version", "type"],
)
def test_malformed_packets_are_dropped_never_forwarded(packet: bytes) -> None:
    router = _router("a", "b")
    actions = _receive(router, "a", packet)
    assert packets_sent(actions) == {}
    assert _drops(actions) == [DropReason.MALFORMED]
    assert len(router.seen) == 0


@pytest.mark.parametrize(
    "frame", [b"", b"\x01\x00", b"\x02" + bytes(6), b"\x01\x00\x00\x00\x01\x00\x01"]
)
def test_malformed_fragments_are_dropped(frame: bytes) -> None:
    router = _router("a", "b")
    assert router.handle(FrameReceived("a", frame), 0.0) == [Drop(DropReason.MALFORMED, "a")]


def test_packets_over_the_size_cap_are_dropped() -> None:
    router = _router("a", "b", config=AppRouterConfig(max_packet_bytes=400))
    actions = _receive(router, "a", app_packet(7, body=bytes(400)))
    assert packets_sent(actions) == {}
    assert _drops(actions) == [DropReason.TOO_BIG]
    assert router.counters["too_big"] == 1


def test_inbound_rate_cap_drops_without_marking_seen() -> None:
    router = _router("a", "b", "c", config=AppRouterConfig(in_packets_per_s=1.0, in_burst=2.0))
    for number in range(2):
        _receive(router, "a", app_packet(number))
    actions = _receive(router, "a", app_packet(99))
    assert _drops(actions) == [DropReason.RATE]
    later = _receive(router, "b", app_packet(99))  # another link's copy still goes on
    assert set(packets_sent(later)) == {"a", "c"}


def test_outbound_rate_cap_skips_a_link_and_custody_catches_up_on_tick() -> None:
    config = AppRouterConfig(out_packets_per_s=1.0, out_burst=1.0, in_burst=10.0)
    router = _router("a", "b", config=config)
    _receive(router, "a", app_packet(1))
    actions = _receive(router, "a", app_packet(2))
    assert actions[-1] == Drop(DropReason.RATE, "b")
    assert packets_sent(router.handle(Tick(), 1.0)) == {"b": [with_ttl(app_packet(2), 7)]}
    assert router.handle(Tick(), 2.0) == []


def test_a_link_that_sent_us_a_copy_is_owed_nothing() -> None:
    config = AppRouterConfig(out_packets_per_s=1.0, out_burst=1.0, in_burst=10.0)
    router = _router("a", "b", config=config)
    _receive(router, "a", app_packet(1))
    _receive(router, "a", app_packet(2))  # b is over its rate: missed
    assert _drops(_receive(router, "b", with_ttl(app_packet(2), 5))) == [DropReason.DUPLICATE]
    assert router.handle(Tick(), 5.0) == []


def test_a_link_under_157_bytes_is_refused() -> None:
    router = AppRouter()
    assert router.handle(LinkUp("tiny", 156), 0.0) == [Drop(DropReason.LINK_TOO_SMALL, "tiny")]
    assert router.handle(LinkUp("ok", 157), 0.0) == []
    assert router.links() == ["ok"]
    frame = split(app_packet(1), 1, 150)[0]
    assert router.handle(FrameReceived("tiny", frame), 0.0) == [Drop(DropReason.NO_LINK, "tiny")]


def test_frames_are_sized_for_the_smallest_target_link() -> None:
    router = AppRouter()
    for link, length in [("a", 517), ("b", 251), ("c", 185)]:
        router.handle(LinkUp(link, length), 0.0)
    actions = _receive(router, "a", app_packet(1, body=bytes(1000)))
    frames = [a.frame for a in actions if isinstance(a, SendFrame)]
    assert max(len(frame) for frame in frames) == 185


def test_custody_hands_a_fresh_packet_to_a_link_that_comes_up() -> None:
    router = _router("a", "b")
    packet = app_packet(1, recipient=CAROL)
    _receive(router, "a", packet, now=0.0)
    arrived = router.handle(LinkUp("carol", 185), 59.0)
    assert packets_sent(arrived) == {"carol": [with_ttl(packet, 7)]}
    router.handle(LinkDown("carol"), 59.5)
    assert router.handle(LinkUp("carol", 185), 59.6) == []  # never twice into one link
    assert router.counters["custody_handed_over"] == 1


def test_custody_ends_with_its_window() -> None:
    router = _router("a")
    _receive(router, "a", app_packet(1, recipient=CAROL), now=0.0)
    assert router.handle(LinkUp("late", 185), 60.0) == []
    router.handle(Tick(), 60.0)
    assert router.counters["custody_expired"] == 1
    assert len(router.custody) == 0


def test_no_custody_when_the_recipient_is_in_range() -> None:
    router = _router("a", "bob")
    _receive(router, "bob", app_packet(1, sender=BOB, recipient=CAROL))  # bob's phone, TTL 8
    _receive(router, "a", app_packet(2, sender=ALICE, recipient=BOB))
    assert router.counters["custody_held"] == 1  # only the packet for carol
    assert packets_sent(router.handle(LinkUp("c", 185), 1.0)) == {
        "c": [with_ttl(app_packet(1, sender=BOB, recipient=CAROL), 7)]
    }


def test_a_relayed_sender_is_not_taken_as_in_range() -> None:
    router = _router("a", "b")
    _receive(router, "b", app_packet(1, ttl=7, sender=BOB, recipient=ALICE))  # bob is hops away
    _receive(router, "a", app_packet(2, sender=ALICE, recipient=BOB))
    assert router.counters["custody_held"] == 2


def test_custody_handover_respects_the_outbound_rate() -> None:
    router = _router("a", config=AppRouterConfig(in_burst=40.0))
    for number in range(20):
        _receive(router, "a", app_packet(number, recipient=CAROL))
    first = packets_sent(router.handle(LinkUp("c", 185), 0.0))
    assert len(first["c"]) == 16
    later = packets_sent(router.handle(Tick(), 0.5))
    assert len(later["c"]) == 4


def test_stale_partial_messages_are_dropped_on_tick() -> None:
    router = _router("a", "b")
    frames = split(app_packet(1, body=bytes(500)), 1, 150)
    router.handle(FrameReceived("a", frames[0]), 0.0)
    assert _drops(router.handle(Tick(), 14.0)) == []
    assert router.handle(Tick(), 15.0) == [Drop(DropReason.STALE, None)]
    assert router.counters["stale"] == 1
    assert (
        packets_sent([a for f in frames[1:] for a in router.handle(FrameReceived("a", f), 16.0)])
        == {}
    )


def test_link_down_forgets_its_partial_messages() -> None:
    router = _router("a", "b")
    frames = split(app_packet(1, body=bytes(500)), 1, 150)
    router.handle(FrameReceived("a", frames[0]), 0.0)
    router.handle(LinkDown("a"), 1.0)
    router.handle(LinkUp("a", 185), 1.0)
    assert (
        packets_sent([a for f in frames[1:] for a in router.handle(FrameReceived("a", f), 2.0)])
        == {}
    )


def test_seen_ids_expire_after_the_seen_ttl() -> None:
    router = _router("a", "b", config=AppRouterConfig(seen_ttl_s=100.0))
    _receive(router, "a", app_packet(1), now=0.0)
    router.handle(Tick(), 100.0)
    assert router.counters["relayed"] == 1
    assert packets_sent(_receive(router, "a", app_packet(1), now=100.0)) == {
        "b": [with_ttl(app_packet(1), 7)]
    }


def test_a_packet_for_a_recipient_not_in_range_is_offered_to_the_uplink_once() -> None:
    router = _router("a", "bob")
    _receive(router, "bob", app_packet(1, sender=BOB, recipient=ALICE))  # bob's own phone
    for_carol = app_packet(2, sender=ALICE, recipient=CAROL)
    offers = [a for a in _receive(router, "a", for_carol) if isinstance(a, OfferUplink)]
    assert offers == [OfferUplink(ALICE, CAROL, for_carol)]  # as it arrived, TTL kept
    assert [a for a in _receive(router, "bob", for_carol) if isinstance(a, OfferUplink)] == []
    to_bob = _receive(router, "a", app_packet(3, sender=ALICE, recipient=BOB))
    assert [a for a in to_bob if isinstance(a, OfferUplink)] == []  # bob is in range


def test_a_packet_at_its_hop_limit_is_still_offered_to_the_uplink() -> None:
    router = _router("a", "b")
    packet = app_packet(4, ttl=1, recipient=CAROL)
    actions = _receive(router, "a", packet)
    assert [a for a in actions if isinstance(a, OfferUplink)] == [OfferUplink(ALICE, CAROL, packet)]
    assert _drops(actions) == [DropReason.TTL]
