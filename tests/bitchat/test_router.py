"""bitchat's relay rules in the router: TTL and its clamp, dedup, freshness, fan-out, directed
packets and routes, fragments, rates and caps, typed drops."""

import random

import pytest

from pigeon.bitchat import packet as wire
from pigeon.bitchat.events import (
    Action,
    Addressed,
    Drop,
    DropReason,
    FrameReceived,
    Heard,
    LinkDown,
    LinkUp,
    SendFrame,
    Tick,
)
from pigeon.bitchat.router import BitchatRouter, BitchatRouterConfig, subset_size
from tests.bitchat.helpers import NOW_MS, NOW_S, packet

OWN = b"\x99" * 8


def _router(links: int, config: BitchatRouterConfig | None = None) -> BitchatRouter:
    router = BitchatRouter(OWN, random.Random(3), config)
    for i in range(links):
        router.handle(LinkUp(f"l{i}", 512), NOW_S)
    return router


def _sent(actions: list[Action]) -> dict[str, bytes]:
    return {a.link: a.frame for a in actions if isinstance(a, SendFrame)}


def _drops(actions: list[Action]) -> list[DropReason]:
    return [a.reason for a in actions if isinstance(a, Drop)]


def test_forwards_received_bytes_with_only_ttl_lowered() -> None:
    router = _router(2)
    data = packet(ttl=5)
    sent = _sent(router.handle(FrameReceived("l0", data), NOW_S))
    assert sent == {"l1": wire.with_ttl(data, 4)}


@pytest.mark.parametrize(
    ("links", "ttl", "out"), [(2, 7, 6), (4, 7, 5), (4, 3, 2), (6, 7, 4), (7, 9, 4)]
)
def test_ttl_cap_and_clamp_on_well_connected_nodes(links: int, ttl: int, out: int) -> None:
    router = _router(links)
    sent = _sent(router.handle(FrameReceived("l0", packet(ttl=ttl)), NOW_S))
    assert sent
    assert {frame[wire.TTL_OFFSET] for frame in sent.values()} == {out}


def test_ttl_one_is_not_relayed() -> None:
    router = _router(2)
    actions = router.handle(FrameReceived("l0", packet(ttl=1)), NOW_S)
    assert _drops(actions) == [DropReason.TTL]
    assert not _sent(actions)


def test_duplicates_are_dropped_even_with_another_ttl() -> None:
    router = _router(3)
    data = packet(ttl=6)
    assert _sent(router.handle(FrameReceived("l0", data), NOW_S))
    again = router.handle(FrameReceived("l1", wire.with_ttl(data, 5)), NOW_S)
    assert _drops(again) == [DropReason.DUPLICATE]


@pytest.mark.parametrize("skew_ms", [-120_001, 120_001])
def test_packets_outside_the_120_s_window_are_stale(skew_ms: int) -> None:
    router = _router(2)
    actions = router.handle(FrameReceived("l0", packet(timestamp_ms=NOW_MS + skew_ms)), NOW_S)
    assert _drops(actions) == [DropReason.STALE]
    fresh = packet(timestamp_ms=NOW_MS + (119_000 if skew_ms > 0 else -119_000))
    assert _sent(router.handle(FrameReceived("l0", fresh), NOW_S))


def test_an_unsynchronized_clock_leaves_freshness_to_the_phones() -> None:
    """A node booted after a power cut runs behind by the outage: it must keep relaying."""
    router = _router(2)
    router.judge_freshness = False
    hour_behind = NOW_S - 3600  # the packets are fresh; the node's clock is not
    sent = _sent(router.handle(FrameReceived("l0", packet(ttl=5)), hour_behind))
    assert sent == {"l1": wire.with_ttl(packet(ttl=5), 4)}


def test_an_unsynchronized_node_learns_the_linked_phones_clock_from_their_announces() -> None:
    router = _router(3)
    assert router.clock_offset_s() == 0.0  # synchronized: its own clock is the clock
    router.judge_freshness = False
    behind = NOW_S - 3600
    for link, ahead_ms, sender in (("l0", 3_600_000, b"\x01"), ("l1", 3_602_000, b"\x02")):
        announce = packet(type_=wire.ANNOUNCE, sender=sender * 8, timestamp_ms=NOW_MS)
        router.handle(FrameReceived(link, announce), NOW_S - ahead_ms / 1000 + 0.0)
    assert router.clock_offset_s() == pytest.approx(3601.0)
    liar = packet(type_=wire.ANNOUNCE, sender=b"\x03" * 8, timestamp_ms=NOW_MS - 10**9)
    router.handle(FrameReceived("l2", liar), behind)
    assert router.clock_offset_s() == pytest.approx(3600.0)  # the median: one liar of three
    router.handle(LinkDown("l0"), behind)
    router.handle(LinkDown("l2"), behind)
    assert router.clock_offset_s() == pytest.approx(3602.0)  # the phones still linked
    relayed = packet(type_=wire.ANNOUNCE, ttl=5, sender=b"\x04" * 8, timestamp_ms=0)
    router.handle(FrameReceived("l1", relayed), behind)  # relayed from afar: not a sample
    assert router.clock_offset_s() == pytest.approx(3602.0)
    router.judge_freshness = True
    assert router.clock_offset_s() == 0.0


def test_sync_requests_and_sync_responses_stay_local() -> None:
    router = _router(2)
    assert _drops(router.handle(FrameReceived("l0", packet(type_=wire.REQUEST_SYNC)), NOW_S)) == [
        DropReason.LOCAL_ONLY
    ]
    rsr = bytearray(packet(payload=b"x"))
    rsr[wire.FLAGS_OFFSET] |= wire.FLAG_RSR
    assert _drops(router.handle(FrameReceived("l0", bytes(rsr)), NOW_S)) == [DropReason.LOCAL_ONLY]


def test_broadcast_messages_go_to_a_subset_announces_and_fragments_to_all() -> None:
    router = _router(9)
    others = 8
    message = _sent(router.handle(FrameReceived("l0", packet(payload=b"m")), NOW_S))
    assert len(message) == subset_size(others) == 4
    announce = _sent(router.handle(FrameReceived("l0", packet(type_=wire.ANNOUNCE)), NOW_S))
    fragment_payload = b"\x01" * 8 + b"\x00\x00\x00\x02\x02" + b"chunk"
    fragment = packet(type_=wire.FRAGMENT, payload=fragment_payload, signature=None)
    fragments = _sent(router.handle(FrameReceived("l0", fragment), NOW_S))
    assert len(announce) == len(fragments) == others


def test_subset_sizes_follow_bitchat() -> None:
    assert [subset_size(n) for n in range(10)] == [0, 1, 2, 3, 3, 4, 4, 4, 4, 5]


def _announce_on(router: BitchatRouter, link: str, peer: bytes) -> None:
    router.handle(
        FrameReceived(link, packet(type_=wire.ANNOUNCE, sender=peer, payload=b"a" + peer)), NOW_S
    )


def test_directed_packets_go_to_the_recipients_link_when_known() -> None:
    router = _router(4)
    phone = b"\x42" * 8
    _announce_on(router, "l2", phone)
    dm = packet(type_=wire.NOISE_ENCRYPTED, recipient=phone, payload=b"sealed")
    assert set(_sent(router.handle(FrameReceived("l0", dm), NOW_S))) == {"l2"}
    stranger = packet(type_=wire.NOISE_ENCRYPTED, recipient=b"\x43" * 8, payload=b"x")
    assert set(_sent(router.handle(FrameReceived("l0", stranger), NOW_S))) == {"l1", "l2", "l3"}


def test_routes_are_honoured() -> None:
    router = _router(4)
    next_hop, last = b"\x42" * 8, b"\x43" * 8
    _announce_on(router, "l3", next_hop)
    routed = packet(
        version=2, type_=wire.NOISE_ENCRYPTED, recipient=last, route=[OWN, next_hop], payload=b"r"
    )
    sent = _sent(router.handle(FrameReceived("l0", routed), NOW_S))
    assert set(sent) == {"l3"}
    view = wire.parse(sent["l3"])
    assert list(view.route) == [OWN, next_hop]


def test_packets_for_us_or_from_us_are_not_relayed() -> None:
    router = _router(2)
    for data in (packet(sender=OWN), packet(type_=wire.NOISE_ENCRYPTED, recipient=OWN)):
        assert _drops(router.handle(FrameReceived("l0", data), NOW_S)) == [DropReason.FOR_US]


def test_malformed_and_oversized_are_dropped_typed() -> None:
    router = _router(2, BitchatRouterConfig(max_packet_bytes=300))
    assert _drops(router.handle(FrameReceived("l0", b"\x07junk" * 10), NOW_S)) == [
        DropReason.MALFORMED
    ]
    bad_fragment = packet(type_=wire.FRAGMENT, payload=b"\x00\x01\x02", signature=None)
    assert _drops(router.handle(FrameReceived("l0", bad_fragment), NOW_S)) == [DropReason.MALFORMED]
    big = packet(payload=random.Random(0).randbytes(400), padding=False)
    assert _drops(router.handle(FrameReceived("l0", big), NOW_S)) == [DropReason.TOO_BIG]
    assert _drops(router.handle(FrameReceived("nope", packet()), NOW_S)) == [DropReason.NO_LINK]


def test_inbound_rate_limit_per_link() -> None:
    router = _router(2, BitchatRouterConfig(in_packets_per_s=1.0, in_burst=2.0))
    reasons = [
        _drops(router.handle(FrameReceived("l0", packet(payload=bytes([i]))), NOW_S))
        for i in range(3)
    ]
    assert reasons == [[], [], [DropReason.RATE]]
    assert _sent(router.handle(FrameReceived("l0", packet(payload=b"later")), NOW_S + 1.0))


def test_a_frame_larger_than_a_links_limit_is_not_sent_there() -> None:
    router = _router(1)
    router.handle(LinkUp("tiny", 100), NOW_S)
    actions = router.handle(
        FrameReceived("l0", packet(payload=random.Random(1).randbytes(200))), NOW_S
    )
    assert _drops(actions) == [DropReason.LINK_TOO_SMALL]


def test_heard_carries_public_messages_and_announces_and_links_go_down() -> None:
    router = _router(2)
    message = packet(payload=b"public")
    assert Heard(message, "l0") in router.handle(FrameReceived("l0", message), NOW_S)
    router.handle(LinkDown("l1"), NOW_S)
    router.handle(Tick(), NOW_S + 1000)
    assert router.links() == ["l0"]
    assert len(router.seen) == 0


@pytest.mark.parametrize(
    "kind",
    [wire.COURIER_ENVELOPE, wire.COURIER_SPRAY_ACK, wire.COURIER_SPRAY_DECLINE, wire.NOSTR_CARRIER],
)
def test_courier_and_carrier_packets_addressed_to_us_go_up_once(kind: int) -> None:
    router = _router(2)
    data = packet(type_=kind, recipient=OWN)
    actions = router.handle(FrameReceived("l0", data), NOW_S)
    assert actions == [Addressed("l0", data)]
    assert _drops(router.handle(FrameReceived("l1", data), NOW_S)) == [DropReason.DUPLICATE]


def test_other_packets_addressed_to_us_are_still_dropped() -> None:
    router = _router(2)
    actions = router.handle(FrameReceived("l0", packet(type_=wire.MESSAGE, recipient=OWN)), NOW_S)
    assert _drops(actions) == [DropReason.FOR_US]
