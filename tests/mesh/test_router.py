"""The router on small hand-built topologies, under both policies."""

import dataclasses
import random

import pytest

from pigeon.mesh.events import DropReason, FrameReceived, LinkUp, LocalSend, ServeTags, Tick
from pigeon.mesh.fragment import Reassembler, fragment
from pigeon.mesh.packet import Packet, PacketType, decode_announce, decode_packet, encode_packet
from pigeon.mesh.router import HOLDS_WAIT_S, Router, RouterConfig

from .router_net import FRAME_LIMIT, START_S, Net, tag_of

POLICIES = ["default", "flood"]


def _net(names: list[str], routing: str, **config: object) -> Net:
    net = Net(names, RouterConfig(routing=routing, **config))  # type: ignore[arg-type]
    for name in names:
        net.serve(name)
    return net


@pytest.mark.parametrize("routing", POLICIES)
def test_line_of_three_delivers_once_and_the_receipt_clears_the_relay(routing: str) -> None:
    net = _net(["a", "b", "c"], routing)
    net.link("a", "b")
    net.link("b", "c")
    envelope, secret = net.envelope("c")
    net.send("a", envelope)
    assert [p.packet_id for p in net.delivered["c"]] == [envelope.packet_id]
    assert net.delivered["c"][0].payload == envelope.payload
    assert net.holding(envelope.packet_id) == ["a", "b"]
    net.send("c", net.receipt(envelope, secret))
    net.send("c", net.notice(envelope, secret, "a"))
    assert net.holding(envelope.packet_id) == []
    # The receipt clears spools and is never delivered; the notice is, to the sender only.
    assert [p.type for p in net.delivered["a"]] == [PacketType.NOTICE]
    assert [p.type for p in net.delivered["c"]] == [PacketType.ENVELOPE]
    assert net.delivered["b"] == []


@pytest.mark.parametrize("routing", POLICIES)
def test_custody_ends_when_the_recipient_acks(routing: str) -> None:
    net = _net(["a", "b", "c", "d"], routing)
    net.link("a", "b")
    net.link("b", "c")
    envelope, secret = net.envelope("c")
    net.send("a", envelope)
    assert net.holding(envelope.packet_id) == ["a", "b"]  # c's ack waits for its tick
    net.tick(1)
    # b handed the envelope to c itself, which acked it: b carries it no further. a handed it
    # to b, not to its recipient, and keeps it until the receipt comes.
    assert net.holding(envelope.packet_id) == ["a"]
    notice = net.notice(envelope, secret, "a")
    net.send("c", notice)
    net.tick(1)
    assert [p.type for p in net.delivered["a"]] == [PacketType.NOTICE]
    assert net.holding(notice.packet_id) == ["c"]  # nothing would ever clear b's copy
    frames = net.frames_sent
    net.link("b", "d")  # a new neighbour is offered neither
    net.tick(1)
    assert not net.routers["d"].carried_packets()
    assert net.frames_sent - frames < 14  # holds, announces, routes and their acks only
    assert sum(r.metrics["custody_ended"] for r in net.routers.values()) == 2


@pytest.mark.parametrize("routing", POLICIES)
def test_star_delivers_between_leaves(routing: str) -> None:
    leaves = [f"l{i}" for i in range(5)]
    net = _net(["hub", *leaves], routing)
    for leaf in leaves:
        net.link("hub", leaf)
    envelope, _ = net.envelope("l3")
    net.send("l0", envelope)
    assert len(net.delivered["l3"]) == 1
    assert all(not net.delivered[leaf] for leaf in leaves if leaf != "l3")


@pytest.mark.parametrize("routing", POLICIES)
def test_partition_then_handover_when_the_recipient_announces(routing: str) -> None:
    net = _net(["a", "b", "c"], routing)
    net.link("a", "b")
    envelope, _ = net.envelope("c")
    net.send("a", envelope)
    assert "b" in net.holding(envelope.packet_id)
    net.unlink("a", "b")
    net.tick(60)
    net.link("b", "c")
    assert [p.packet_id for p in net.delivered["c"]] == [envelope.packet_id]


def test_flood_reaches_every_leaf_and_spray_stops_at_its_budget() -> None:
    leaves = [f"l{i}" for i in range(10)]
    holders = {}
    frames = {}  # relay copies queued, announces aside
    for routing in POLICIES:
        net = _net(["src", *leaves], routing, spray_wait_ttl=3)
        for leaf in leaves:
            net.link("src", leaf)
        envelope, _ = net.envelope("far")
        net.send("src", envelope)
        holders[routing] = net.holding(envelope.packet_id)
        frames[routing] = sum(r.metrics["copies_queued"] for r in net.routers.values())
    assert holders["flood"] == ["src", *leaves]
    # TTL 7, wait at 3: the source gives copies at TTL 6, 5, 4 and 3, then waits.
    assert holders["default"] == ["src", *leaves[:4]]
    assert frames["default"] < frames["flood"]


@pytest.mark.parametrize("routing", POLICIES)
def test_a_replayed_envelope_is_delivered_once(routing: str) -> None:
    net = _net(["a", "b"], routing)
    net.link("a", "b")
    envelope, _ = net.envelope("b")
    for message_id in (7, 8, 9):  # as relayed again under fresh frame message ids
        for frame in fragment(encode_packet(envelope), FRAME_LIMIT, message_id):
            net.feed("b", FrameReceived("a", frame))
    assert len(net.delivered["b"]) == 1
    assert net.drop_reasons("b").count("duplicate") == 2


def test_a_delivered_envelope_offered_again_is_answered_with_its_receipt() -> None:
    net = _net(["a", "b", "c"], "default")
    net.link("b", "c")
    envelope, secret = net.envelope("c")
    net.send("b", envelope)
    net.send("c", net.receipt(envelope, secret))
    assert net.holding(envelope.packet_id) == []
    # a carried a copy all along and meets c later: c answers with the receipt, a drops it.
    net.routers["a"].handle(LocalSend(envelope), net.now)
    net.link("a", "c")
    net.tick(20)
    assert net.holding(envelope.packet_id) == []
    assert len(net.delivered["c"]) == 1
    assert net.routers["c"].metrics["receipts_answered"] >= 1


@pytest.mark.parametrize("routing", POLICIES)
def test_hinted_envelopes_are_offered_to_the_uplink_once_per_hop(routing: str) -> None:
    net = _net(["a", "b", "c"], routing)
    net.link("a", "b")
    net.link("b", "c")
    hinted, _ = net.envelope("far", mailbox_hint=b"opaque hint")
    plain, _ = net.envelope("far")
    for packet in (hinted, plain, hinted):  # the second copy of `hinted` is a duplicate
        net.send("a", packet)
    net.tick(60)
    assert net.offered_uplink["a"] == []  # the origin deposits its own envelopes itself
    for hop in ("b", "c"):
        assert [p.packet_id for p in net.offered_uplink[hop]] == [hinted.packet_id]
        assert net.offered_uplink[hop][0].mailbox_hint == b"opaque hint"


def test_a_hinted_envelope_for_a_served_tag_is_delivered_not_offered() -> None:
    net = _net(["a", "b"], "default")
    net.link("a", "b")
    hinted, _ = net.envelope("b", mailbox_hint=b"opaque hint")
    net.send("a", hinted)
    assert [p.packet_id for p in net.delivered["b"]] == [hinted.packet_id]
    assert net.offered_uplink["b"] == []


def test_a_forged_receipt_clears_nothing() -> None:
    net = _net(["a", "b", "c"], "default")
    net.link("a", "b")
    envelope, _ = net.envelope("c")
    net.send("a", envelope)
    forged = net.receipt(envelope, bytes(16))  # the envelope's tag, not its secret
    net.feed("b", FrameReceived("a", fragment(encode_packet(forged), FRAME_LIMIT, 1)[0]))
    net.run()
    assert net.holding(envelope.packet_id) == ["a", "b"]
    assert net.routers["b"].metrics["receipts_cleared"] == 0


@pytest.mark.parametrize("routing", POLICIES)
def test_a_receipt_clears_every_copy_with_its_hash_and_keeps_them_out(routing: str) -> None:
    net = _net(["a", "b", "c"], routing)
    net.link("a", "b")
    envelope, secret = net.envelope("far")
    net.send("a", envelope)
    assert net.holding(envelope.packet_id) == ["a", "b"]
    net.send("b", net.receipt(envelope, secret))
    assert net.holding(envelope.packet_id) == []
    assert net.routers["b"].metrics["receipts_cleared"] == 1
    net.link("b", "c")
    net.send("c", envelope)  # a late copy: refused or answered with the receipt by b
    assert net.holding(envelope.packet_id) == []


def test_malformed_frames_are_dropped_and_counted() -> None:
    router = Router(RouterConfig(), random.Random(1))
    router.handle(LinkUp("x", FRAME_LIMIT), START_S)
    for junk in (b"", b"\xff" * 30, bytes(40)):
        actions = router.handle(FrameReceived("x", junk), START_S)
        assert [a.reason for a in actions] == [DropReason.MALFORMED]  # type: ignore[union-attr]
    assert router.metrics["drop_malformed"] == 3


def test_a_flooding_neighbour_is_throttled_and_named_in_metrics() -> None:
    net = _net(["a", "b"], "default")
    net.link("a", "b")
    for _ in range(700):
        envelope, _ = net.envelope("nobody")
        for frame in fragment(encode_packet(envelope), FRAME_LIMIT, 1):
            net.feed("b", FrameReceived("a", frame))
    assert "throttled" in net.drop_reasons("b")
    throttled = net.routers["b"].throttled_peers()
    assert list(throttled) == ["a"]
    assert throttled["a"].packets + throttled["a"].bytes > 0


def test_expired_packets_are_dropped_and_carried_ones_expire() -> None:
    net = _net(["a", "b", "c"], "default")
    net.link("a", "b")
    envelope, _ = net.envelope("c", lifetime_s=100)
    net.send("a", envelope)
    assert net.holding(envelope.packet_id) == ["a", "b"]
    net.tick(101)
    assert net.holding(envelope.packet_id) == []
    stale, _ = net.envelope("b", lifetime_s=1)
    net.now += 2
    for frame in fragment(encode_packet(stale), FRAME_LIMIT, 9):
        net.feed("b", FrameReceived("a", frame))
    assert net.delivered["b"] == []
    assert "expired" in net.drop_reasons("b")


def test_a_lost_handover_is_retried_while_the_recipient_stays() -> None:
    net = _net(["a", "b"], "default")
    envelope, _ = net.envelope("b")
    net.send("a", envelope)
    lost = {"count": 0}

    def lose_first_envelope(src: str, dst: str, frame: bytes) -> bool:
        if src == "a" and len(frame) > 60 and lost["count"] < 1:
            lost["count"] += 1
            return True
        return False

    net.lose = lose_first_envelope
    net.link("a", "b")
    assert net.delivered["b"] == []
    net.tick(20)
    assert len(net.delivered["b"]) == 1


def test_the_origin_sprays_again_when_no_receipt_comes() -> None:
    net = _net(["a", "b", "c"], "default", origin_retry_s=100.0)
    envelope, _ = net.envelope("far")
    net.send("a", envelope)
    net.link("a", "b")
    assert "b" in net.holding(envelope.packet_id)
    net.unlink("a", "b")
    net.routers["b"].handle(Tick(), net.now + 10_000)  # b forgets nothing, but we move on
    net.link("a", "c")
    queued_before = net.routers["a"].metrics["copies_queued"]
    net.tick(30)
    assert net.routers["a"].metrics["copies_queued"] == queued_before  # c has its share
    net.tick(200)
    assert net.routers["a"].metrics["origin_retries"] >= 1
    assert "c" in net.holding(envelope.packet_id)


def test_copies_queued_when_the_link_drops_are_given_back() -> None:
    net = _net(["a", "b"], "default", send_window_frames=1)
    for _ in range(3):
        envelope, _ = net.envelope("far")
        net.routers["a"].handle(LocalSend(envelope), net.now)
    net.links.add(frozenset(("a", "b")))
    net.feed("a", LinkUp("b", FRAME_LIMIT))
    net.now += HOLDS_WAIT_S  # b never says what it holds: a sprays after the wait
    net.feed("a", Tick())
    before = [c.ttl for c in net.routers["a"].carried_packets()]
    assert before == [6, 6, 6]
    net.unlink("a", "b")
    assert [c.ttl for c in net.routers["a"].carried_packets()] == [7, 7, 7]


def test_a_neighbour_gets_no_copy_of_what_it_said_it_holds_and_sends_none_back() -> None:
    net = _net(["a", "b"], "default", send_window_frames=1)
    envelopes = [net.envelope("far")[0] for _ in range(3)]
    for envelope in envelopes:
        net.routers["a"].handle(LocalSend(envelope), net.now)
    net.routers["b"].handle(LocalSend(envelopes[-1]), net.now)
    net.link("a", "b")
    # Each told the other what it holds before spraying: no copy went to one that had it.
    assert net.routers["a"].metrics["drop_duplicate"] == 0
    assert net.routers["b"].metrics["drop_duplicate"] == 0
    ids_b_got = {p.packet_id for p in (c.packet for c in net.routers["b"].carried_packets())}
    assert ids_b_got == {e.packet_id for e in envelopes}


def test_silent_tags_are_served_but_never_announced() -> None:
    net = _net(["a", "b"], "default")
    yesterday = b"yesterday-b-tag!"
    net.feed("b", ServeTags((tag_of("b"),), (yesterday,)))
    heard: list[Packet] = []
    reassembler = Reassembler()

    def overhear(src: str, dst: str, frame: bytes) -> bool:
        data = reassembler.add(src, frame, net.now)
        if data is not None:
            heard.append(decode_packet(data))
        return False

    net.lose = overhear
    net.link("a", "b")
    told = {t for p in heard if p.type is PacketType.ANNOUNCE for t in decode_announce(p.payload)}
    assert told == {tag_of("a"), tag_of("b")}
    # A sender whose clock is a day behind still reaches b, which never said it serves that tag.
    late, _ = net.envelope("b")
    late = dataclasses.replace(late, recipient_tag=yesterday)
    net.send("a", late)
    assert [p.packet_id for p in net.delivered["b"]] == [late.packet_id]
