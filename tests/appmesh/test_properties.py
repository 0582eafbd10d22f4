"""Property tests: codec round trips, and forwarding that changes only the TTL byte."""

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from pigeon.appmesh.envelope import Envelope, EnvelopeType, decode_envelope, encode_envelope
from pigeon.appmesh.errors import AppMeshError
from pigeon.appmesh.events import Action, Drop, FrameReceived, LinkDown, LinkUp, SendFrame, Tick
from pigeon.appmesh.fragment import (
    HEADER_SIZE,
    Fragment,
    decode_fragment,
    encode_fragment,
    payload_size,
    split,
)
from pigeon.appmesh.packet import AppPacket, decode_packet, encode_packet
from pigeon.appmesh.reassembly import Reassembler
from pigeon.appmesh.router import AppRouter, AppRouterConfig

from .helpers import packets_sent

keys = st.binary(min_size=32, max_size=32)
envelopes = st.builds(Envelope, st.sampled_from(EnvelopeType), keys, keys, st.binary(max_size=600))
packets = st.builds(
    AppPacket,
    st.integers(0, 255),
    st.binary(min_size=16, max_size=16),
    envelopes.map(encode_envelope),
)


@given(st.integers(0, 0xFFFF), st.data(), st.binary(max_size=600))
def test_fragment_round_trip(message_id: int, data: st.DataObject, payload: bytes) -> None:
    count = data.draw(st.integers(1, 0xFFFF))
    index = data.draw(st.integers(0, count - 1))
    fragment = Fragment(message_id, index, count, payload)
    assert decode_fragment(encode_fragment(fragment)) == fragment


@given(st.binary(max_size=3000), st.integers(150, 503), st.randoms(use_true_random=False))
def test_split_then_reassemble_in_any_order(message: bytes, size: int, rng: object) -> None:
    frames = split(message, 42, size)
    assert all(len(frame) <= size + HEADER_SIZE for frame in frames)
    rng.shuffle(frames)  # type: ignore[attr-defined]
    reassembler = Reassembler()
    outputs = [reassembler.add("a", decode_fragment(frame), 0.0) for frame in frames]
    assert [out for out in outputs if out is not None] == [message]


@given(st.lists(st.integers(0, 1000), max_size=8))
def test_payload_size_stays_in_the_apps_bounds(lengths: list[int]) -> None:
    size = payload_size(lengths)
    assert 150 <= size <= 503
    if lengths and 157 <= min(lengths) <= 510:
        assert size == min(lengths) - HEADER_SIZE


@given(packets)
def test_packet_round_trip(packet: AppPacket) -> None:
    assert decode_packet(encode_packet(packet)) == packet


@given(envelopes)
def test_envelope_round_trip(envelope: Envelope) -> None:
    assert decode_envelope(encode_envelope(envelope)) == envelope


@given(packets, st.sampled_from([157, 185, 251, 517]))
def test_forwarding_changes_only_the_ttl_byte(packet: AppPacket, value_length: int) -> None:
    router = AppRouter()
    router.handle(LinkUp("in", 185), 0.0)
    router.handle(LinkUp("out", value_length), 0.0)
    data = encode_packet(packet)
    actions: list[Action] = []
    for frame in split(data, 9, payload_size([185])):
        actions += router.handle(FrameReceived("in", frame), 0.0)
    sent = packets_sent(actions)
    if packet.ttl <= 1:
        assert sent == {}
        return
    [forwarded] = sent["out"]
    assert forwarded[1] == min(packet.ttl, 8) - 1
    assert forwarded[:1] + forwarded[2:] == data[:1] + data[2:]


@given(st.binary(max_size=400))
def test_nothing_unparseable_is_forwarded(junk: bytes) -> None:
    router = AppRouter()
    router.handle(LinkUp("in", 517), 0.0)
    router.handle(LinkUp("out", 517), 0.0)
    sent = packets_sent(router.handle(FrameReceived("in", junk), 0.0))
    for forwarded in sent.get("out", []):
        decoded = decode_packet(forwarded)
        decode_envelope(decoded.payload)


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("up"), st.sampled_from("abcd")),
        st.tuples(st.just("down"), st.sampled_from("abcd")),
        st.tuples(st.just("tick"), st.integers(0, 40)),
        st.tuples(st.just("rx"), st.sampled_from("abcd"), st.integers(0, 5), st.integers(0, 9)),
    ),
    max_size=60,
)


@given(_ops)
def test_no_packet_goes_twice_into_a_link_or_back_where_it_came_from(
    ops: list[tuple[object, ...]],
) -> None:
    router = AppRouter(AppRouterConfig(in_burst=100.0, out_burst=100.0))
    now, reassembler = 0.0, Reassembler()
    came_from: dict[bytes, str] = {}
    every: list[Action] = []
    into: dict[str, list[bytes]] = {}
    for op in ops:
        if op[0] == "up":
            actions = router.handle(LinkUp(op[1], 185), now)
        elif op[0] == "down":
            actions = router.handle(LinkDown(op[1]), now)
        elif op[0] == "tick":
            now += op[1]
            actions = router.handle(Tick(), now)
        else:
            _, link, number, ttl = op
            data = encode_packet(
                AppPacket(
                    ttl,
                    number.to_bytes(16, "big"),
                    encode_envelope(
                        Envelope(EnvelopeType.MESSAGE, bytes(32), bytes([number]) * 32, b"x")
                    ),
                )
            )
            actions = []
            for frame in split(data, number, 150):
                actions += router.handle(FrameReceived(link, frame), now)
            if not any(isinstance(action, Drop) for action in actions):
                came_from.setdefault(data[2:18], link)  # the copy the router took on
        every += actions
        for action in actions:
            if isinstance(action, SendFrame):
                try:
                    whole = reassembler.add(action.link, decode_fragment(action.frame), now)
                except AppMeshError as exc:  # pragma: no cover - would be our bug
                    raise AssertionError("router sent a bad frame") from exc
                if whole is not None:
                    into.setdefault(action.link, []).append(whole[2:18])
    drops = Counter(a.reason.value for a in every if isinstance(a, Drop))
    assert all(router.counters[reason] == count for reason, count in drops.items())
    for link, ids in into.items():
        assert len(ids) == len(set(ids)), f"a packet went twice into {link}"
        assert not any(came_from[packet_id] == link for packet_id in ids), "sent back"
