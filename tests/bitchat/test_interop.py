"""An independent codec (PyPI bitchat-protocol) reads what we forward and originate, and we read
what it writes."""

import random

import bitchat_protocol as bp
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.bitchat import packet as wire
from pigeon.bitchat.events import FrameReceived, LinkUp, SendFrame
from pigeon.bitchat.identity import BitchatIdentity
from pigeon.bitchat.router import BitchatRouter
from tests.bitchat.helpers import NOW_MS, NOW_S, packet

IDS = st.binary(min_size=8, max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    version=st.sampled_from([1, 2]),
    type_=st.sampled_from([1, 2, 3, 0x10, 0x11, 0x22, 0x25]),
    ttl=st.integers(0, 255),
    sender=IDS,
    recipient=st.none() | IDS,
    route=st.lists(IDS, max_size=4),
    payload=st.binary(max_size=600),
    signature=st.none() | st.binary(min_size=64, max_size=64),
    padding=st.booleans(),
)
def test_we_read_what_it_writes(
    version: int,
    type_: int,
    ttl: int,
    sender: bytes,
    recipient: bytes | None,
    route: list[bytes],
    payload: bytes,
    signature: bytes | None,
    padding: bool,
) -> None:
    data = packet(
        version=version, type_=type_, ttl=ttl, sender=sender, recipient=recipient,
        route=route or None, payload=payload, signature=signature, padding=padding,
    )  # fmt: skip
    view = wire.parse(data)
    assert (view.version, view.type, view.ttl, view.sender) == (version, type_, ttl, sender)
    assert view.recipient == recipient
    assert list(view.route) == (route if version == 2 else [])
    assert wire.signature_of(data, view) == signature
    if not view.flags & wire.FLAG_COMPRESSED:
        assert wire.payload_of(data, view) == payload
    forwarded = wire.with_ttl(data, max(ttl - 1, 0))
    theirs = bp.decode(forwarded)
    assert theirs is not None
    assert (theirs.payload, theirs.signature, theirs.ttl) == (payload, signature, max(ttl - 1, 0))


def test_it_reads_what_our_router_forwards() -> None:
    router = BitchatRouter(b"\x99" * 8, random.Random(1))
    for link in ("a", "b"):
        router.handle(LinkUp(link, 512), NOW_S)
    sent = packet(type_=2, ttl=5, payload=b"hello mesh", route=None)
    actions = router.handle(FrameReceived("a", sent), NOW_S)
    (frame,) = [a.frame for a in actions if isinstance(a, SendFrame)]
    decoded = bp.decode(frame)
    assert decoded is not None
    assert (decoded.payload, decoded.ttl, decoded.timestamp) == (b"hello mesh", 4, NOW_MS)


def test_it_reads_our_announce_and_message() -> None:
    me = BitchatIdentity.generate(random.Random(7).randbytes)
    announce = bp.decode(me.announce("pigeon-ab12", NOW_MS))
    assert announce is not None
    assert announce.ttl == 7
    assert announce.type == bp.MessageType.ANNOUNCE
    assert announce.sender_id.hex() == bp.peer_id_from_noise_key(me.noise_public)
    tlv = bp.decode_announcement(announce.payload)
    assert tlv is not None
    assert (tlv.nickname, tlv.noise_public_key, tlv.signing_public_key) == (
        "pigeon-ab12",
        me.noise_public,
        me.signing_public,
    )
    for text in ("short", "a longer line of chat that bitchat compresses " * 4):
        message = bp.decode(me.public_message(text, NOW_MS))
        assert message is not None
        assert message.payload == text.encode()
        assert message.recipient_id is None
        assert message.signature is not None
