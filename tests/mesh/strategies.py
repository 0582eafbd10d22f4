"""Hypothesis strategies for valid mesh packets, shared by the mesh tests."""

from hypothesis import strategies as st

from pigeon.mesh.packet import (
    ACK_ID_LEN,
    MAX_ACK_IDS,
    MAX_HOLDS_IDS,
    MAX_MAILBOX_HINT_LEN,
    MAX_PAYLOAD_LEN,
    NOTICE_PAYLOAD_LEN,
    RECEIPT_PAYLOAD_LEN,
    ROUTE_MAX_DISTANCE,
    Flag,
    Packet,
    PacketType,
    encode_ack,
    encode_announce,
    encode_holds,
    encode_routes,
)
from pigeon.mesh.receipt import RECEIPT_HASH_LEN
from pigeon.mesh.routecodec import MAX_SEQ, RoutesUpdate, encode_routes_update

recipient_tags = st.binary(min_size=8, max_size=16)
expiries = st.integers(min_value=0, max_value=0xFFFF_FFFF)
ttls = st.integers(min_value=0, max_value=15)


@st.composite
def packets(draw: st.DrawFn, max_payload: int = MAX_PAYLOAD_LEN) -> Packet:
    """Any valid packet of any type."""
    ptype = draw(st.sampled_from(PacketType))
    flags, receipt_hash, hint = 0, b"", b""
    if ptype is PacketType.ENVELOPE:
        flags = draw(st.sampled_from([0, int(Flag.HANDSHAKE), int(Flag.BULK)]))
        hint = draw(st.just(b"") | st.binary(min_size=1, max_size=MAX_MAILBOX_HINT_LEN))
        flags |= int(Flag.MAILBOX_HINT) if hint else 0
        receipt_hash = draw(st.binary(min_size=RECEIPT_HASH_LEN, max_size=RECEIPT_HASH_LEN))
        tag = draw(recipient_tags)
        payload = draw(st.binary(min_size=1, max_size=max_payload))
    elif ptype is PacketType.RECEIPT:
        tag = draw(recipient_tags)
        payload = draw(st.binary(min_size=RECEIPT_PAYLOAD_LEN, max_size=RECEIPT_PAYLOAD_LEN))
    elif ptype is PacketType.NOTICE:
        tag = draw(recipient_tags)
        payload = draw(st.binary(min_size=NOTICE_PAYLOAD_LEN, max_size=NOTICE_PAYLOAD_LEN))
    elif ptype is PacketType.ACK:
        tag = b""
        ids = st.binary(min_size=ACK_ID_LEN, max_size=ACK_ID_LEN)
        payload = encode_ack(draw(st.lists(ids, min_size=1, max_size=MAX_ACK_IDS)))
    elif ptype is PacketType.ROUTES:
        tag = b""
        distances = st.integers(min_value=1, max_value=ROUTE_MAX_DISTANCE)
        payload = encode_routes(draw(st.lists(st.tuples(distances, recipient_tags), max_size=20)))
    elif ptype is PacketType.ROUTES2:
        tag = b""
        payload = encode_routes_update(draw(routes_updates()))
    elif ptype is PacketType.HOLDS:
        tag = b""
        ids = st.binary(min_size=ACK_ID_LEN, max_size=ACK_ID_LEN)
        payload = encode_holds(draw(st.lists(ids, max_size=MAX_HOLDS_IDS)))
    else:
        tag = b""
        payload = encode_announce(draw(st.lists(recipient_tags, max_size=20)))
    return Packet(
        type=ptype,
        ttl=draw(ttls),
        flags=flags,
        recipient_tag=tag,
        expires_at_s=draw(expiries),
        payload=payload,
        receipt_hash=receipt_hash,
        mailbox_hint=hint,
    )


@st.composite
def routes_updates(draw: st.DrawFn) -> RoutesUpdate:
    """Any valid routes version 2 update: a whole table or a delta (withdrawals included)."""
    full = draw(st.booleans())
    seq = draw(st.integers(min_value=2, max_value=MAX_SEQ))
    base = 0 if full else draw(st.integers(min_value=1, max_value=seq - 1))
    low = 1 if full else 0
    distances = st.integers(min_value=low, max_value=ROUTE_MAX_DISTANCE)
    table = draw(st.dictionaries(recipient_tags, distances, max_size=20))
    routes = tuple((distance, tag) for tag, distance in table.items())
    return RoutesUpdate(full, seq, base, routes)
