"""Router invariants over generated traffic of valid bitchat packets (built by the independent
bitchat-protocol codec): what goes out is what came in with only the TTL byte lowered (at most
6), never to the link it came from, never twice to one link, and only to links that are up."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.bitchat import packet as wire
from pigeon.bitchat.events import FrameReceived, LinkDown, LinkUp, SendFrame
from pigeon.bitchat.router import BitchatRouter, BitchatRouterConfig
from tests.bitchat.helpers import NOW_MS, NOW_S, packet

LINKS = ("a", "b", "c", "d", "e", "f", "g")
IDS = st.sampled_from([bytes([i]) * 8 for i in range(1, 6)])
PACKETS = st.builds(
    lambda version, type_, ttl, sender, recipient, route, payload, skew: packet(
        version=version,
        type_=type_,
        ttl=ttl,
        sender=sender,
        recipient=recipient,
        route=route or None,
        payload=payload,
        timestamp_ms=NOW_MS + skew,
    ),
    st.sampled_from([1, 2]),
    st.sampled_from([0x01, 0x02, 0x03, 0x04, 0x10, 0x11, 0x21, 0x22, 0x26, 0x29, 0x7F]),
    st.integers(0, 12),
    IDS,
    st.none() | IDS,
    st.lists(IDS, max_size=3),
    st.binary(max_size=40),
    st.integers(-200_000, 200_000),
)
EVENTS = st.lists(
    st.tuples(st.sampled_from(["frame", "up", "down"]), st.sampled_from(LINKS), PACKETS),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(EVENTS)
def test_forwarding_invariants(events: list[tuple[str, str, bytes]]) -> None:
    router = BitchatRouter(b"\x05" * 8, random.Random(0), BitchatRouterConfig(in_burst=1000))
    up: set[str] = set()
    delivered: set[tuple[str, bytes]] = set()
    for n, (kind, link, data) in enumerate(events):
        now = NOW_S + n * 0.01
        if kind == "up":
            router.handle(LinkUp(link, 512), now)
            up.add(link)
            continue
        if kind == "down":
            router.handle(LinkDown(link), now)
            up.discard(link)
            continue
        for action in router.handle(FrameReceived(link, data), now):
            if not isinstance(action, SendFrame):
                continue
            assert action.link in up
            assert action.link != link
            sent = action.frame
            assert sent[:2] + sent[3:] == data[:2] + data[3:]
            assert sent[wire.TTL_OFFSET] <= min(6, data[wire.TTL_OFFSET] - 1)
            key = (action.link, sent[:2] + sent[3:])
            assert key not in delivered, "a packet went twice into one link"
            delivered.add(key)
