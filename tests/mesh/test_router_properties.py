"""Properties of the router that hold for any input: no crash, payloads untouched, outbox order."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.mesh.events import Deliver, Drop, FrameReceived, LinkUp, SendFrame, Tick
from pigeon.mesh.fragment import fragment
from pigeon.mesh.outbox import Outbox
from pigeon.mesh.packet import Priority, encode_packet
from pigeon.mesh.router import Router, RouterConfig

from .router_net import FRAME_LIMIT, START_S, Net
from .strategies import packets


@settings(max_examples=200, deadline=None)
@given(frames=st.lists(st.binary(max_size=120), max_size=30))
def test_arbitrary_frames_only_ever_cause_drops(frames: list[bytes]) -> None:
    router = Router(RouterConfig(), random.Random(0))
    router.handle(LinkUp("x", FRAME_LIMIT), START_S)
    for frame in frames:
        for action in router.handle(FrameReceived("x", frame), START_S):
            assert isinstance(action, Drop | SendFrame | Deliver)
    router.handle(Tick(), START_S + 60)


@settings(max_examples=100, deadline=None)
@given(packet=packets(max_payload=1200), routing=st.sampled_from(["default", "flood"]))
def test_any_valid_packet_is_handled_without_error(packet: object, routing: str) -> None:
    router = Router(RouterConfig(routing=routing), random.Random(0))
    router.handle(LinkUp("x", FRAME_LIMIT), START_S)
    router.handle(LinkUp("y", FRAME_LIMIT), START_S)
    for frame in fragment(encode_packet(packet), FRAME_LIMIT, 1):  # type: ignore[arg-type]
        router.handle(FrameReceived("x", frame), START_S)
    router.handle(Tick(), START_S + 3600)


@settings(max_examples=50, deadline=None)
@given(payload=st.binary(min_size=1, max_size=2000), routing=st.sampled_from(["default", "flood"]))
def test_payloads_arrive_byte_for_byte(payload: bytes, routing: str) -> None:
    net = Net(["a", "b", "c"], RouterConfig(routing=routing))
    for name in ("a", "b", "c"):
        net.serve(name)
    net.link("a", "b")
    net.link("b", "c")
    envelope, _ = net.envelope("c")
    envelope = type(envelope)(
        type=envelope.type,
        recipient_tag=envelope.recipient_tag,
        expires_at_s=envelope.expires_at_s,
        payload=payload,
        receipt_hash=envelope.receipt_hash,
    )
    net.send("a", envelope)
    assert [p.payload for p in net.delivered["c"]] == [payload]


def test_outbox_sends_by_priority_within_its_window() -> None:
    outbox = Outbox(frame_limit=100, window=2, max_packets=10, first_message_id=0)
    assert outbox.put(b"bulk", b"B" * 250, Priority.BULK)
    assert outbox.put(b"text", b"T" * 50, Priority.INTERACTIVE)
    assert outbox.put(b"rcpt", b"R" * 30, Priority.CONTROL)
    assert not outbox.put(b"text", b"T" * 50, Priority.INTERACTIVE)
    first = outbox.pull()
    assert len(first) == 2  # the window
    assert first[0].endswith(b"R" * 30)
    assert first[1].endswith(b"T" * 50)
    assert outbox.pull() == []
    assert outbox.cancel(b"bulk")
    assert not outbox.sent()  # nothing left to pull: the router skips the pull
    assert not outbox.sent()
    assert outbox.pull() == []
    assert outbox.idle


def test_outbox_sent_says_when_more_frames_may_go() -> None:
    outbox = Outbox(frame_limit=100, window=1, max_packets=10, first_message_id=0)
    assert outbox.put(b"bulk", b"B" * 250, Priority.BULK)  # three frames
    assert len(outbox.pull()) == 1
    assert outbox.sent()  # two more frames of the packet wait
    assert len(outbox.pull()) == 1
    assert outbox.sent()
    assert len(outbox.pull()) == 1
    assert not outbox.sent()
    assert outbox.put(b"text", b"T" * 50, Priority.INTERACTIVE)
    assert outbox.sent()  # a queued packet counts too, even with nothing in flight


def test_outbox_urgent_lane_goes_first_and_the_cap_holds() -> None:
    outbox = Outbox(frame_limit=100, window=8, max_packets=2, first_message_id=65535)
    assert outbox.put(b"relay", b"r" * 10, Priority.INTERACTIVE)
    assert outbox.put(b"handover", b"h" * 10, Priority.INTERACTIVE, urgent=True)
    assert not outbox.put(b"more", b"m", Priority.CONTROL)
    frames = outbox.pull()
    assert [f[-10:] for f in frames] == [b"h" * 10, b"r" * 10]
    assert outbox.queued_ids() == []
