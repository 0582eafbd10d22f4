"""Holds: a node tells a new neighbour what it carries, and neither sends the other a copy of it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pigeon.mesh.errors import MalformedPacket
from pigeon.mesh.events import FrameReceived
from pigeon.mesh.fragment import Reassembler, fragment
from pigeon.mesh.packet import (
    ACK_ID_LEN,
    MAX_HOLDS_IDS,
    PacketType,
    decode_holds,
    decode_packet,
    encode_packet,
    make_holds,
)
from pigeon.mesh.policy import DEFAULT_WAIT_TTL
from pigeon.mesh.router import RouterConfig

from .router_net import FRAME_LIMIT, START_S, Net

_IDS = st.lists(st.binary(min_size=16, max_size=16), max_size=MAX_HOLDS_IDS)


@given(_IDS)
def test_holds_round_trip_as_id_prefixes(ids: list[bytes]) -> None:
    packet = decode_packet(encode_packet(make_holds(ids, 1_000)))
    assert packet.type is PacketType.HOLDS
    assert packet.ttl == 0
    assert decode_holds(packet.payload) == [pid[:ACK_ID_LEN] for pid in ids]


@given(st.binary(max_size=ACK_ID_LEN * (MAX_HOLDS_IDS + 2)))
def test_a_holds_payload_is_whole_ids_and_not_too_many(payload: bytes) -> None:
    count, rest = divmod(len(payload), ACK_ID_LEN)
    if not rest and count <= MAX_HOLDS_IDS:
        assert len(decode_holds(payload)) == count
    else:
        try:
            decode_holds(payload)
        except MalformedPacket:
            return
        raise AssertionError("accepted a malformed holds payload")


class _Recorder:
    """The packets each (sender, receiver) pair put on the air."""

    def __init__(self, net: Net) -> None:
        self.packets: list[tuple[str, str, PacketType]] = []
        self._reassembler = Reassembler()
        net.lose = self._saw

    def _saw(self, src: str, dst: str, frame: bytes) -> bool:
        data = self._reassembler.add(f"{src}>{dst}", frame, START_S)
        if data is not None:
            self.packets.append((src, dst, decode_packet(data).type))
        return False

    def between(self, a: str, b: str) -> list[PacketType]:
        return [t for s, d, t in self.packets if {s, d} == {a, b}]


def test_neighbours_that_carry_the_same_envelope_send_each_other_no_copy() -> None:
    net = Net(["src", "a", "b", "far"], RouterConfig())
    for name in net.routers:
        net.serve(name)
    envelope, _ = net.envelope("far")  # "far" is never in range: everyone carries it
    net.link("src", "a")
    net.link("src", "b")
    net.send("src", envelope)
    assert sorted(net.holding(envelope.packet_id)) == ["a", "b", "src"]
    budgets = {name: _budget(net, name, envelope.packet_id) for name in ("a", "b")}
    recorder = _Recorder(net)
    net.link("a", "b")
    net.tick(1)
    assert PacketType.HOLDS in recorder.between("a", "b")
    assert PacketType.ENVELOPE not in recorder.between("a", "b")
    # The copies queued before the holds came are not sent, and their budget stays.
    assert {name: _budget(net, name, envelope.packet_id) for name in ("a", "b")} == budgets


def test_only_a_links_first_holds_is_heeded() -> None:
    """Each holds costs a walk over all a node carries: a neighbour repeating them makes no
    more work, and what a repeat names is not taken as held."""
    net = Net(["a", "b", "far"], RouterConfig())
    net.link("a", "b")  # each heeds the other's holds, empty
    # At the wait level: `a` keeps it for its recipient and gives `b` no copy.
    envelope, _ = net.envelope("far", ttl=DEFAULT_WAIT_TTL)
    net.send("a", envelope)
    holds = make_holds([envelope.packet_id], int(net.now) + 60)
    for frame in fragment(encode_packet(holds), FRAME_LIMIT, 1):
        net.feed("a", FrameReceived("b", frame))
    router = net.routers["a"]
    assert router.metrics["holds_ignored"] == 1
    carried = next(c for c in router.carried_packets() if c.packet == envelope)
    assert "b" not in carried.holders


def test_flooding_sends_no_holds() -> None:
    net = Net(["a", "b", "far"], RouterConfig(routing="flood"))
    envelope, _ = net.envelope("far")
    net.send("a", envelope)
    recorder = _Recorder(net)
    net.link("a", "b")
    assert PacketType.HOLDS not in recorder.between("a", "b")
    assert PacketType.ENVELOPE in recorder.between("a", "b")


def _budget(net: Net, name: str, packet_id: bytes) -> int:
    return next(
        c.ttl for c in net.routers[name].carried_packets() if c.packet.packet_id == packet_id
    )
