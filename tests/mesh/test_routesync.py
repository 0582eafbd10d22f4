"""Routes by delta: the sender's and receiver's ends, the codec, and convergence under loss."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pigeon.mesh.errors import MalformedPacket
from pigeon.mesh.routecodec import (
    RoutesUpdate,
    decode_routes_update,
    encode_routes_update,
)
from pigeon.mesh.routesync import RouteReceiver, RouteSender, Verdict
from tests.mesh.strategies import routes_updates

TAGS = [bytes([i]) * 16 for i in range(6)]


@given(routes_updates())
def test_codec_round_trip(update: RoutesUpdate) -> None:
    assert decode_routes_update(encode_routes_update(update)) == update


def test_the_encoder_refuses_what_the_decoder_would() -> None:
    with pytest.raises(ValueError, match="delta base 3 outside"):
        encode_routes_update(RoutesUpdate(False, 3, 3, ()))
    with pytest.raises(MalformedPacket, match="trailing"):
        decode_routes_update(encode_routes_update(RoutesUpdate(True, 1, 0, ())) + b"\x00")


def test_first_a_whole_table_then_only_what_changed() -> None:
    sender, receiver = RouteSender(), RouteReceiver()
    assert sender.update({}) is None  # an empty table is what the neighbour assumes
    first = sender.update({TAGS[0]: 1, TAGS[1]: 2, TAGS[2]: 3})
    assert first is not None
    assert first.full
    assert receiver.accept(first) is Verdict.APPLIED
    sender.confirmed(first.seq)
    delta = sender.update({TAGS[0]: 1, TAGS[1]: 4, TAGS[3]: 2})
    assert delta == RoutesUpdate(False, 2, 1, ((0, TAGS[2]), (2, TAGS[3]), (4, TAGS[1])))
    assert receiver.accept(delta) is Verdict.APPLIED
    assert receiver.view == {TAGS[0]: 1, TAGS[1]: 4, TAGS[3]: 2}
    assert sender.update({TAGS[0]: 1, TAGS[1]: 4, TAGS[3]: 2}) is None


def test_a_delta_based_on_an_update_never_applied_is_a_gap_and_not_taken() -> None:
    receiver = RouteReceiver()
    assert receiver.accept(RoutesUpdate(False, 3, 2, ((1, TAGS[0]),))) is Verdict.GAP
    assert receiver.view == {}
    assert receiver.seq == 0
    assert receiver.accept(RoutesUpdate(True, 4, 0, ((2, TAGS[1]),))) is Verdict.APPLIED
    assert receiver.accept(RoutesUpdate(True, 3, 0, ((5, TAGS[2]),))) is Verdict.STALE
    assert receiver.view == {TAGS[1]: 2}


def test_after_a_resync_the_whole_table_goes_again() -> None:
    sender = RouteSender()
    first = sender.update({TAGS[0]: 1})
    assert first is not None
    sender.confirmed(first.seq)
    sender.resync()
    again = sender.update({TAGS[0]: 1})  # unchanged, but the neighbour did not take ours
    assert again is not None
    assert again.full
    assert again.routes == ((1, TAGS[0]),)


distances = st.integers(min_value=0, max_value=32)  # 0: the route is gone
operations = st.lists(
    st.one_of(
        st.tuples(st.just("change"), st.tuples(st.sampled_from(TAGS), distances)),  # then sent
        st.tuples(st.just("deliver"), st.integers(0, 7)),  # the i-th update in flight
        st.tuples(st.just("duplicate"), st.integers(0, 7)),  # delivered, and kept in flight
        st.tuples(st.just("lose"), st.integers(0, 7)),
        st.tuples(st.just("ack"), st.integers(0, 7)),  # the i-th ack in flight comes back
        st.tuples(st.just("lose_ack"), st.integers(0, 7)),
        st.tuples(st.just("resync"), st.just(0)),  # the sender gave up waiting for an ack
    ),
    max_size=80,
)


@settings(max_examples=1000)
@given(operations)
@example(  # a delta lost, the next one must carry its change too
    [
        ("change", (TAGS[0], 1)),
        ("deliver", 0),
        ("ack", 0),
        ("change", (TAGS[0], 2)),
        ("lose", 0),
        ("change", (TAGS[1], 1)),
        ("deliver", 0),
    ]
)
def test_the_neighbours_view_converges_to_the_senders_table_under_any_loss_and_order(
    ops: list[tuple[str, object]],
) -> None:
    sender, receiver = RouteSender(), RouteReceiver()
    table: dict[bytes, int] = {}
    told: dict[int, dict[bytes, int]] = {}  # seq -> the table that update was made from
    updates: list[RoutesUpdate] = []
    acks: list[int] = []
    made: list[RoutesUpdate] = []

    def send() -> None:
        update = sender.update(table)
        if update is not None:
            told[update.seq] = dict(table)
            updates.append(update)
            made.append(update)

    def deliver(update: RoutesUpdate) -> None:
        verdict = receiver.accept(update)
        # Whatever was lost or reordered, an update never finds the receiver behind its base.
        assert verdict is not Verdict.GAP
        if verdict is Verdict.APPLIED:
            assert receiver.view == told[update.seq]
        acks.append(update.seq)

    for op, arg in ops:
        if op == "change":
            assert isinstance(arg, tuple)
            tag, distance = arg
            if distance:
                table[tag] = distance
            else:
                table.pop(tag, None)
            send()
        elif op == "resync":
            sender.resync()
            send()
        elif op in ("deliver", "duplicate", "lose") and updates:
            assert isinstance(arg, int)
            update = updates[arg % len(updates)]
            if op != "duplicate":
                updates.remove(update)
            if op != "lose":
                deliver(update)
        elif op in ("ack", "lose_ack") and acks:
            assert isinstance(arg, int)
            seq = acks.pop(arg % len(acks))
            if op == "ack":
                sender.confirmed(seq)
    # Then the link works: the latest update (made now, or resent as hop acks resend the
    # last one not acked) and its ack get through.
    send()
    if made:
        deliver(made[-1])
        sender.confirmed(made[-1].seq)
    assert receiver.view == table
    assert sender.update(table) is None
