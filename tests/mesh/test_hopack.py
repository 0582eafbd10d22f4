"""Hop-by-hop recovery: lost frames, dropped links and old neighbours that never ack."""

import itertools

import pytest

from pigeon.mesh.fragment import fragment
from pigeon.mesh.hopack import ACK_MAX_TRIES, HopAcks
from pigeon.mesh.packet import ACK_ID_LEN, MAX_ACK_IDS
from pigeon.mesh.policy import POLICIES
from pigeon.mesh.router import RouterConfig

from .router_net import FRAME_LIMIT, Net


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
    assert acks.acked([b"z" * ACK_ID_LEN]) == [b"z" * 16]
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
