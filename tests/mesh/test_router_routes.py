"""Routes version 2 between routers: a whole table at link-up, deltas after, gaps and resyncs."""

from __future__ import annotations

import itertools

from pigeon.mesh.events import FrameReceived, FrameSent, LinkUp, SendFrame
from pigeon.mesh.fragment import Reassembler, fragment
from pigeon.mesh.packet import (
    Packet,
    PacketType,
    decode_ack,
    decode_packet,
    decode_routes,
    encode_packet,
    make_routes,
    make_routes_update,
)
from pigeon.mesh.routecodec import RoutesUpdate, decode_routes_update
from pigeon.mesh.router import ROUTES_RESYNC_TRIES, RouterConfig

from .router_net import FRAME_LIMIT, START_S, Net, tag_of

_FIRST_HEADER_LEN = 15


class Wire:
    """Every packet the net's frames carry, by (sender, receiver), reassembled on the side."""

    def __init__(self, net: Net) -> None:
        self.packets: list[tuple[str, str, Packet]] = []
        self._reassembler = Reassembler()
        self.drop_routes_from: str | None = None  # lose every routes update this node sends
        net.lose = self._saw

    def _saw(self, src: str, dst: str, frame: bytes) -> bool:
        data = self._reassembler.add(f"{src}>{dst}", frame, START_S)
        if data is not None:
            self.packets.append((src, dst, decode_packet(data)))
        first_type = frame[_FIRST_HEADER_LEN + 1] if frame[0] == 0x10 else None
        return src == self.drop_routes_from and first_type == PacketType.ROUTES2

    def updates(self, src: str, dst: str) -> list[RoutesUpdate]:
        return [
            decode_routes_update(p.payload)
            for s, d, p in self.packets
            if (s, d) == (src, dst) and p.type is PacketType.ROUTES2
        ]


def _chain(names: list[str], later: tuple[str, ...] = ()) -> Net:
    """Routers `names` in a chain, settled; routers `later` exist, serve, and have no link."""
    net = Net([*names, *later], RouterConfig())
    for name in (*names, *later):
        net.serve(name)
    for left, right in itertools.pairwise(names):
        net.link(left, right)
    for _ in range(5):
        net.tick(1)
    return net


def test_a_new_route_goes_as_a_delta_of_that_entry_alone() -> None:
    net = _chain(["a", "b", "c", "d"], later=("e",))
    wire = Wire(net)
    net.link("d", "e")
    for _ in range(5):
        net.tick(1)
    assert net.routers["a"].has_route(tag_of("e"))
    (update,) = wire.updates("b", "a")  # one entry, not b's whole table again
    assert not update.full
    assert update.routes == ((3, tag_of("e")),)


def test_the_first_update_on_a_link_is_the_whole_table() -> None:
    net = _chain(["a", "b", "c"], later=("z",))
    wire = Wire(net)
    net.link("b", "z")
    net.tick(1)
    (update,) = wire.updates("b", "z")
    assert update.full
    assert {tag: d for d, tag in update.routes} == {tag_of("a"): 1, tag_of("c"): 1}


def _frames_of(packet: Packet, message_id: int) -> list[bytes]:
    return fragment(encode_packet(packet), FRAME_LIMIT, message_id)


def _acks_to(actions: list[object], peer: str) -> list[bytes]:
    """The id prefixes acked to `peer` in `actions`."""
    prefixes = []
    reassembler = Reassembler()
    for action in actions:
        if isinstance(action, SendFrame) and action.peer == peer:
            data = reassembler.add(peer, action.frame, START_S)
            if data is not None and (packet := decode_packet(data)).type is PacketType.ACK:
                prefixes += decode_ack(packet.payload)
    return prefixes


def test_a_delta_based_on_an_update_never_received_is_not_taken_nor_acked() -> None:
    net = Net(["a"], RouterConfig())
    router = net.routers["a"]
    router.handle(LinkUp("x", FRAME_LIMIT), START_S)
    expires = int(START_S) + 600
    gap = make_routes_update(RoutesUpdate(False, 3, 2, ((2, tag_of("far")),)), expires)
    actions: list[object] = []
    for frame in _frames_of(gap, 1):
        actions += router.handle(FrameReceived("x", frame), START_S)
    assert not router.has_route(tag_of("far"))
    assert router.metrics["routes_gaps"] == 1
    assert gap.packet_id[:8] not in _acks_to(actions, "x")  # so its sender resyncs
    whole = make_routes_update(RoutesUpdate(True, 4, 0, ((2, tag_of("far")),)), expires)
    actions = []
    for frame in _frames_of(whole, 2):
        actions += router.handle(FrameReceived("x", frame), START_S + 1)
    assert router.has_route(tag_of("far"))
    assert whole.packet_id[:8] in _acks_to(actions, "x")


def test_a_delta_never_acked_is_followed_by_the_whole_table() -> None:
    net = _chain(["a", "b", "c"], later=("d",))
    wire = Wire(net)
    wire.drop_routes_from = "b"
    net.link("c", "d")
    for _ in range(20):
        net.tick(1)
        if any(update.full for update in wire.updates("b", "a")):
            break
    sent = wire.updates("b", "a")
    assert not sent[0].full
    assert len(sent) == ROUTES_RESYNC_TRIES + 1  # the delta, resent, then the whole table
    assert sent[-1].full
    assert net.routers["b"].metrics["routes_resyncs"] == 1
    wire.drop_routes_from = None
    for _ in range(5):
        net.tick(1)
    assert net.routers["a"].has_route(tag_of("d"))


def test_a_neighbour_that_sends_routes_version_1_is_told_in_version_1() -> None:
    net = _chain(["a", "b"])
    router = net.routers["a"]
    for action in router.handle(LinkUp("old", FRAME_LIMIT), net.now):  # version 2: dropped
        if isinstance(action, SendFrame):
            router.handle(FrameSent("old"), net.now)  # the link takes each frame
    old = make_routes(((1, tag_of("far")),), int(net.now) + 600)
    actions: list[object] = []
    for frame in _frames_of(old, 7):
        actions += router.handle(FrameReceived("old", frame), net.now)
    assert router.has_route(tag_of("far"))
    reassembler = Reassembler()
    told = []
    for action in actions:
        if isinstance(action, SendFrame) and action.peer == "old":
            data = reassembler.add("old", action.frame, START_S)
            if data is not None and (packet := decode_packet(data)).type is not PacketType.ACK:
                told.append(packet)
    assert [p.type for p in told] == [PacketType.ROUTES]
    assert decode_routes(told[0].payload) == [(1, tag_of("b"))]


def test_a_link_that_drops_and_comes_back_within_the_hold_costs_no_route_beyond_it() -> None:
    net = _chain(["a", "b", "c", "d"])
    net.tick(40)  # the routes interval is over: a withdrawal could go at once
    wire = Wire(net)
    net.unlink("c", "d")
    net.tick(1)
    net.link("c", "d")  # back within seconds, as BLE reconnects
    for _ in range(3):
        net.tick(1)
        assert net.routers["a"].has_route(tag_of("d"))
    assert wire.updates("b", "a") == []  # nothing to tell: the table is as it was
    assert wire.updates("c", "b") == []


def test_a_route_gone_for_longer_than_the_hold_is_withdrawn() -> None:
    net = _chain(["a", "b", "c", "d"])
    net.tick(40)
    net.unlink("c", "d")
    for _ in range(4):
        net.tick(1)
        assert not net.routers["c"].has_route(tag_of("d"))  # kept, but d is not linked
        assert net.routers["b"].has_route(tag_of("d"))  # nothing told yet
    # c keeps what d said for the hold, then each hop holds the withdrawal as long.
    for _ in range(13):
        net.tick(1)
    assert not net.routers["a"].has_route(tag_of("d"))


def test_a_lapsed_route_hands_down_what_waited_for_it_when_the_link_is_back() -> None:
    net = _chain(["a", "b", "c", "d"])
    wire = Wire(net)
    net.unlink("b", "c")
    envelope, _ = net.envelope("d", ttl=0)  # no copies to spray: only the route moves it
    net.send("a", envelope)
    assert not net.delivered["d"]
    wire.drop_routes_from = "c"  # its whole table is lost again and again after the reconnect
    net.link("b", "c")  # back within the hold: b still routes d's tag through c
    net.tick(1)
    assert [p.packet_id for p in net.delivered["d"]] == [envelope.packet_id]


def test_nearer_routes_go_at_once_then_at_most_one_update_a_second_per_neighbour() -> None:
    net = _chain(["a", "b"], later=("e", "f", "g"))
    wire = Wire(net)
    for name in ("e", "f", "g"):  # three new neighbours of b within the same second
        net.link("b", name)
    assert [u.routes for u in wire.updates("b", "a")] == [((1, tag_of("e")),)]
    net.tick(1)
    assert [u.routes for u in wire.updates("b", "a")][1:] == [((1, tag_of("f")), (1, tag_of("g")))]
