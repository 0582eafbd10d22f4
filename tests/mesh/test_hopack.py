"""Hop-by-hop recovery: lost frames, dropped links and old neighbours that never ack."""

import itertools
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.mesh.fragment import Reassembler, fragment
from pigeon.mesh.hopack import (
    ACK_BATCH_S,
    ACK_LONE_MARGIN_S,
    ACK_MAX_BACKOFF_S,
    ACK_MAX_TRIES,
    ACK_MIN_TIMEOUT_S,
    ACK_TIMEOUT_S,
    HopAcks,
)
from pigeon.mesh.packet import ACK_ID_LEN, MAX_ACK_IDS, PacketType, encode_packet
from pigeon.mesh.policy import POLICIES
from pigeon.mesh.router import RouterConfig

from .router_net import FRAME_LIMIT, Net, tag_of


def _chain(names: list[str], routing: str) -> Net:
    net = Net(names, RouterConfig(routing=routing))
    for name in names:
        net.serve(name)
    for left, right in itertools.pairwise(names):
        net.link(left, right)
    return net


@pytest.mark.parametrize("routing", POLICIES)
def test_an_envelope_lost_between_static_neighbours_is_sent_again_while_the_link_lasts(
    routing: str,
) -> None:
    net = _chain(["a", "b"], routing)
    envelope, _ = net.envelope("b", ttl=1)
    budget = {"frames": 2}

    def lose_two(src: str, dst: str, frame: bytes) -> bool:
        if src == "a" and budget["frames"] and len(frame) > 40:
            budget["frames"] -= 1
            return True
        return False

    net.lose = lose_two
    net.send("a", envelope)
    assert net.delivered["b"] == []
    for _ in range(10):
        net.tick(1)
    assert [p.packet_id for p in net.delivered["b"]] == [envelope.packet_id]


def test_custody_outruns_the_ttl_along_a_long_static_chain() -> None:
    names = [f"n{i}" for i in range(12)]  # 11 hops: more than the TTL and the old horizon
    net = _chain(names, "default")
    for _ in range(30):
        net.tick(1)  # routes spread one hop a tick
    envelope, _ = net.envelope(names[-1], ttl=2)
    net.send(names[0], envelope)
    for _ in range(5):
        net.tick(1)
    assert [p.packet_id for p in net.delivered[names[-1]]] == [envelope.packet_id]


def test_what_was_in_flight_when_the_link_died_is_offered_at_the_next_meeting() -> None:
    net = _chain(["a", "b"], "default")
    envelope, _ = net.envelope("b", ttl=1)
    net.lose = lambda src, dst, frame: src == "a" and len(frame) > 40  # the link is dying
    net.send("a", envelope)
    net.unlink("a", "b")
    net.lose = lambda src, dst, frame: False
    net.tick(1)
    net.link("a", "b")
    net.tick(1)
    assert [p.packet_id for p in net.delivered["b"]] == [envelope.packet_id]


@pytest.mark.parametrize("drops", [1, 2, 3, 5])
def test_handovers_down_a_route_that_the_link_never_confirmed_do_not_use_up_the_route(
    drops: int,
) -> None:
    # The route budget once counted copies cut into frames: two links dying mid-transfer
    # spent it, and the envelope sat at `a` for good (lost 1 in 30 in the link-drop sim).
    net = _chain(["a", "b", "c"], "default")
    for _ in range(5):
        net.tick(1)  # b tells a its route to c
    envelope, _ = net.envelope("c", ttl=1)  # at the wait TTL: nothing sprays, routes only
    net.lose = lambda src, dst, frame: src == "a" and len(frame) > 40  # a-b dies in transfer
    net.send("a", envelope)
    for _ in range(drops):
        net.unlink("a", "b")
        net.tick(1)
        net.link("a", "b")
    net.unlink("a", "b")
    net.lose = lambda src, dst, frame: False
    net.tick(1)
    net.link("a", "b")
    for _ in range(3):
        net.tick(1)
    assert [p.packet_id for p in net.delivered["c"]] == [envelope.packet_id]


def test_a_neighbour_that_never_acks_is_no_longer_waited_for() -> None:
    acks = HopAcks()
    acks.started(b"x" * 16, b"\x02\x01", 1, now=0.0)
    now = 0.0
    for _ in range(ACK_MAX_TRIES + 3):
        now += 100.0
        for entry in acks.due(now):
            acks.started(entry.packet_id, entry.encoded, entry.priority, now)
    assert acks.silent
    assert len(acks) == 0
    acks.started(b"y" * 16, b"\x02\x01", 1, now=now)
    assert len(acks) == 0  # nothing more is awaited from it


def test_a_neighbour_that_acked_once_is_retried_for_as_long_as_the_link_lasts() -> None:
    acks = HopAcks()
    acks.started(b"z" * 16, b"\x02\x01", 1, now=0.0)
    assert acks.acked([b"z" * ACK_ID_LEN], now=0.1) == [b"z" * 16]
    acks.started(b"x" * 16, b"\x02\x01", 1, now=0.0)
    now = 0.0
    for _ in range(3 * ACK_MAX_TRIES):
        now += 100.0
        resent = acks.due(now)
        assert [e.packet_id for e in resent] == [b"x" * 16]
        acks.started(b"x" * 16, b"\x02\x01", 1, now)
    assert not acks.silent
    assert [e.packet_id for e in acks.give_up()] == [b"x" * 16]


def test_acks_of_a_burst_wait_for_full_batches_unless_everything_is_due() -> None:
    acks = HopAcks()
    acks.to_ack = [bytes([i]) * 16 for i in range(MAX_ACK_IDS + 3)]
    assert [len(batch) for batch in acks.take_acks(everything=False)] == [MAX_ACK_IDS]
    assert [len(batch) for batch in acks.take_acks(everything=True)] == [3]
    assert acks.to_ack == []


def test_a_duplicate_is_acked_too() -> None:
    net = _chain(["a", "b"], "flood")
    envelope, _ = net.envelope("c", ttl=3)
    net.send("a", envelope)
    net.tick(1)
    acks_before = net.routers["b"].metrics["acks_out"]
    data = net.routers["a"].carried_packets()[0].encoded
    for frame in fragment(data, FRAME_LIMIT, 7):
        net.queue.append(("a", "b", frame))  # the same packet again, as after a lost ack
    net.run()
    net.tick(1)
    assert net.routers["b"].metrics["acks_out"] > acks_before


def _quiet_link_that_acks_at_once() -> HopAcks:
    acks = HopAcks()
    for i in range(8):
        now = 10.0 * i
        acks.started(bytes([i]) * 16, b"\x02\x01", 1, now)
        acks.acked([bytes([i]) * ACK_ID_LEN], now + 0.03)
    return acks


def test_a_lone_packet_on_a_link_that_acks_at_once_is_resent_well_before_the_burst_timeout() -> (
    None
):
    acks = _quiet_link_that_acks_at_once()
    assert acks.timeout_s < 0.5
    acks.started(b"x" * 16, b"\x02\x01", 1, now=100.0)
    assert [e.packet_id for e in acks.due(100.0 + 0.5)] == [b"x" * 16]


def test_a_packet_of_a_burst_waits_the_burst_timeout_for_the_receivers_tick() -> None:
    acks = _quiet_link_that_acks_at_once()
    acks.started(b"x" * 16, b"\x02\x01", 1, now=100.0)
    acks.started(b"y" * 16, b"\x02\x01", 1, now=100.2)  # acked at b's tick, maybe
    assert [e.packet_id for e in acks.due(100.2 + ACK_TIMEOUT_S - 0.01)] == [b"x" * 16]
    assert b"y" * 16 in [e.packet_id for e in acks.due(100.2 + ACK_TIMEOUT_S)]


def test_acks_a_burst_waited_for_and_acks_of_resent_packets_do_not_lengthen_the_timeout() -> None:
    acks = _quiet_link_that_acks_at_once()
    lone_timeout = acks.timeout_s
    for i in range(20):  # a burst: the first acked at once, the rest at the receiver's tick
        acks.started(bytes([100 + i]) * 16, b"\x02\x01", 1, now=100.0 + i * 0.05)
        if i == 0:
            acks.acked([bytes([100]) * ACK_ID_LEN], now=100.03)
    acks.acked([bytes([100 + i]) * ACK_ID_LEN for i in range(1, 20)], now=101.9)
    acks.started(b"x" * 16, b"\x02\x01", 1, now=110.0)
    acks.started(b"x" * 16, b"\x02\x01", 1, now=111.0)  # sent again: its ack is ambiguous
    acks.acked([b"x" * ACK_ID_LEN], now=111.9)
    assert acks.timeout_s == lone_timeout


def test_a_routes_update_waits_the_longer_timeout() -> None:
    acks = _quiet_link_that_acks_at_once()
    acks.started(b"r" * 16, b"\x08\x00", 1, now=100.0, at_once=True)
    assert acks.due(100.0 + ACK_TIMEOUT_S - 0.01) == []
    assert [e.packet_id for e in acks.due(100.0 + ACK_TIMEOUT_S)] == [b"r" * 16]


def test_a_routes_update_does_not_make_the_next_packet_part_of_a_burst() -> None:
    acks = _quiet_link_that_acks_at_once()
    acks.started(b"r" * 16, b"\x08\x00", 1, now=100.0, at_once=True)
    acks.acked([b"r" * ACK_ID_LEN], 100.03)
    acks.started(b"x" * 16, b"\x02\x01", 1, now=100.1)
    assert [e.packet_id for e in acks.due(100.6)] == [b"x" * 16]


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=3.0),  # gap since the previous packet
            st.booleans(),  # at once (a routes update)
            st.one_of(st.none(), st.floats(min_value=0.0, max_value=2.0)),  # its ack's delay
        ),
        max_size=40,
    )
)
def test_no_packet_is_resent_before_the_receiver_could_have_acked_it(
    sends: list[tuple[float, bool, float | None]],
) -> None:
    # A packet of a burst is acked at the receiver's tick, up to a second later: it must not
    # be due before ACK_TIMEOUT_S. None is due before ACK_MIN_TIMEOUT_S, and whatever was
    # measured, the timeout stays between the two.
    acks = HopAcks()
    now, last_other = 0.0, -1e9
    for i, (gap, at_once, ack_delay) in enumerate(sends):
        now += gap
        packet_id = i.to_bytes(2, "big") * 8
        acks.started(packet_id, b"\x02\x01", 1, now, at_once=at_once)
        burst = not at_once and now < last_other + ACK_BATCH_S + ACK_LONE_MARGIN_S
        if not at_once:
            last_other = now
        earliest = ACK_TIMEOUT_S if burst else ACK_MIN_TIMEOUT_S
        due = [e.packet_id for e in acks.due(now + earliest - 1e-6)]
        assert packet_id not in due
        for entry_id in due:  # what was due went out again
            acks.started(entry_id, b"\x02\x01", 1, now + earliest - 1e-6)
        if ack_delay is not None:
            acks.acked([packet_id[:ACK_ID_LEN]], now + ack_delay)
        assert ACK_MIN_TIMEOUT_S <= acks.timeout_s <= ACK_TIMEOUT_S
    for entry in acks.due(now + 1e6):
        assert entry.due - (now + 1e6) <= ACK_MAX_BACKOFF_S


def test_an_envelope_after_a_routes_update_is_still_acked_at_once() -> None:
    # A routes update is acked at once; that ack must not make the next packet wait for the
    # tick, or its sender, which expects an ack at once, sends it again for nothing.
    net = Net(["a", "b", "c"], RouterConfig(routing="default"))
    for name in ("a", "b", "c"):
        net.serve(name)
    net.link("a", "b")
    net.tick(2)
    a, b = net.routers["a"], net.routers["b"]
    routes_before = a.metrics["routes_out"]
    net.link("a", "c")  # a learns c's tag and tells b at once (a routes update)
    assert a.metrics["routes_out"] == routes_before + 2  # to b, and its first to c
    assert b.has_route(tag_of("c"))
    acks_before = b.metrics["acks_out"]
    envelope, _ = net.envelope("zz", ttl=3)  # no route: sprayed to b
    net.send("a", envelope)
    assert b.metrics["acks_out"] == acks_before + 1


def test_a_packet_sent_before_one_acked_now_is_due_at_once() -> None:
    acks = _quiet_link_that_acks_at_once()
    acks.started(b"x" * 16, b"\x02\x01", 1, now=100.0)
    acks.started(b"y" * 16, b"\x02\x01", 1, now=100.0)
    acks.started(b"z" * 16, b"\x02\x01", 1, now=100.0)
    assert acks.acked([b"y" * ACK_ID_LEN], now=100.05) == [b"y" * 16]
    assert [e.packet_id for e in acks.due(100.05)] == [b"x" * 16]  # z may still be acked


def test_a_packet_resent_after_the_one_acked_is_not_taken_for_lost_again() -> None:
    acks = _quiet_link_that_acks_at_once()
    acks.started(b"x" * 16, b"\x02\x01", 1, now=100.0)
    acks.started(b"y" * 16, b"\x02\x01", 1, now=100.0)
    acks.started(b"x" * 16, b"\x02\x01", 1, now=100.5)  # x went again, after y
    acks.acked([b"y" * ACK_ID_LEN], now=100.6)
    assert acks.due(100.6) == []


def test_the_first_of_two_envelopes_lost_on_a_quiet_link_goes_again_on_the_seconds_ack() -> None:
    net = _chain(["a", "b"], "default")
    net.tick(5)
    first, _ = net.envelope("b", ttl=1)
    second, _ = net.envelope("b", ttl=1)
    lost = {"frames": len(fragment(encode_packet(first), FRAME_LIMIT, 0))}

    def lose_the_first(src: str, dst: str, frame: bytes) -> bool:
        if src == "a" and lost["frames"] and len(frame) > 40:
            lost["frames"] -= 1
            return True
        return False

    net.lose = lose_the_first
    net.send("a", first)
    net.send("a", second)
    # No tick: b acked the second at once, which showed a that the first was lost.
    assert {p.packet_id for p in net.delivered["b"]} == {first.packet_id, second.packet_id}


def test_a_neighbour_taken_for_an_old_node_is_waited_for_again_once_it_acks() -> None:
    acks = HopAcks()
    acks.started(b"x" * 16, b"\x02\x01", 1, now=0.0)
    now = 0.0
    for _ in range(ACK_MAX_TRIES + 3):  # a link so lossy that no ack came through
        now += 100.0
        for entry in acks.due(now):
            acks.started(entry.packet_id, entry.encoded, entry.priority, now)
    assert acks.silent
    acks.acked([b"y" * ACK_ID_LEN], now)  # it acks a packet after all: it speaks acks
    assert not acks.silent
    acks.started(b"z" * 16, b"\x02\x01", 1, now=now)
    assert len(acks) == 1


def test_an_ack_of_several_is_sent_again_once_when_one_it_named_comes_again() -> None:
    acks = HopAcks()
    acks.to_ack = [b"a" * 16, b"b" * 16, b"c" * 16]
    assert acks.take_acks(everything=True) == [[b"a" * 16, b"b" * 16, b"c" * 16]]
    acks.to_ack.append(b"b" * 16)  # "b" came again: the ack naming it was lost
    assert acks.ack_again(b"b" * 16)
    assert acks.to_ack == [b"b" * 16, b"a" * 16, b"c" * 16]
    assert not acks.ack_again(b"b" * 16)  # once only
    acks.take_acks(everything=True)
    acks.to_ack = [b"d" * 16]
    acks.take_acks(everything=True)  # an ack of one packet: nothing to repeat but itself
    assert not acks.ack_again(b"d" * 16)


def _envelope_sends(net: Net, lost: list[set[int]]) -> list[int]:
    """Send `b` an envelope from `a`, losing frames `lost[k]` (by index) of its k-th send; return
    the message id of each send (the envelope is the only packet of three frames or more)."""
    sends: list[int] = []

    def lose(src: str, dst: str, frame: bytes) -> bool:
        if src != "a":
            return False
        message_id, field = struct.unpack_from(">HH", frame, 1)
        if frame[0] == 0x10 and field >= 3:
            sends.append(message_id)
            index = 0
        elif frame[0] == 0x11 and sends and message_id == sends[-1]:
            index = field
        else:
            return False
        return len(sends) <= len(lost) and index in lost[len(sends) - 1]

    net.lose = lose
    envelope, _ = net.envelope("b", ttl=1)
    net.send("a", envelope)
    for _ in range(12):
        net.tick(1)
    assert [p.packet_id for p in net.delivered["b"]] == [envelope.packet_id]
    return sends


def test_a_resend_goes_under_its_last_sends_id_and_completes_from_the_frames_of_both() -> None:
    sends = _envelope_sends(_chain(["a", "b"], "default"), [{1}, {2}])
    assert len(sends) == 2  # without joining, neither send was whole: a third was needed
    assert sends[0] == sends[1]


def test_every_other_resend_takes_a_new_id() -> None:
    # Frame 1 lost twice: only a third send completes it, under a new id (a node of the
    # previous version would ignore a message it completed if it came again under its id).
    sends = _envelope_sends(_chain(["a", "b"], "default"), [{1}, {1}])
    assert len(sends) == 3
    assert sends[0] == sends[1] != sends[2]


def test_a_resend_under_the_id_of_a_message_the_neighbour_completed_is_acked_again() -> None:
    net = _chain(["a", "b"], "default")
    envelope, _ = net.envelope("b", ttl=1)
    acks_lost: list[bytes] = []
    sends: list[int] = []

    def lose(src: str, dst: str, frame: bytes) -> bool:
        if src == "a" and frame[0] == 0x10 and struct.unpack_from(">H", frame, 3)[0] >= 3:
            sends.append(struct.unpack_from(">H", frame, 1)[0])
        is_ack = frame[0] == 0x10 and frame[16] == PacketType.ACK
        if src == "b" and is_ack and not acks_lost:
            acks_lost.append(frame)  # b's ack of the whole envelope
            return True
        return False

    net.lose = lose
    net.send("a", envelope)
    for _ in range(12):
        net.tick(1)
    assert acks_lost
    assert sends[0] == sends[1]
    assert len(sends) == 2  # the resend was acked: nothing more went
    assert len(net.routers["a"]._neighbours["b"].acks) == 0


class _PreviousVersionReassembler(Reassembler):
    """The reassembler of the previous version: a first frame under an id it completed is a
    duplicate, never a message started again."""

    def add(self, peer: str, frame: bytes, now: float) -> bytes | None:
        if (
            frame[:1] == b"\x10"
            and (peer, struct.unpack_from(">H", frame, 1)[0]) in self._completed
        ):
            return None
        return super().add(peer, frame, now)


def test_a_node_of_the_previous_version_acks_the_resend_under_a_new_id() -> None:
    net = _chain(["a", "b"], "default")
    net.routers["b"]._reassembler = _PreviousVersionReassembler()
    envelope, _ = net.envelope("b", ttl=1)
    acks_lost: list[bytes] = []
    sends: list[int] = []

    def lose(src: str, dst: str, frame: bytes) -> bool:
        if src == "a" and frame[0] == 0x10 and struct.unpack_from(">H", frame, 3)[0] >= 3:
            sends.append(struct.unpack_from(">H", frame, 1)[0])
        if src == "b" and frame[0] == 0x10 and frame[16] == PacketType.ACK and not acks_lost:
            acks_lost.append(frame)  # b's ack of the whole envelope
            return True
        return False

    net.lose = lose
    net.send("a", envelope)
    for _ in range(12):
        net.tick(1)
    assert len(sends) == 3  # the resend under the same id went unanswered, the next did not
    assert sends[0] == sends[1] != sends[2]
    assert len(net.routers["a"]._neighbours["b"].acks) == 0
