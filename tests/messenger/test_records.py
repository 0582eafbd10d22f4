"""The messenger's stored records round-trip; the event stream keeps order and bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.messenger.errors import MalformedEnvelope
from pigeon.messenger.events import ContactsChanged, EventHub, LockChanged, Resync
from pigeon.messenger.records import (
    PEER_RECORD_V1,
    PeerRecord,
    PendingResponder,
    Transfer,
    upgrade_peer_record,
)

b16 = st.binary(min_size=16, max_size=16)
b32 = st.binary(min_size=32, max_size=32)
ids = st.lists(st.text("0123456789abcdef", min_size=32, max_size=32), max_size=5)


@given(b32, st.none() | b32, st.binary(max_size=300), b16, b32, st.floats(0, 1e10), ids)
def test_peer_record_round_trip_and_upgrade_from_version_1(
    inbound: bytes,
    outbound: bytes | None,
    session: bytes,
    handshake_id: bytes,
    reply: bytes,
    started: float,
    waiting: list[str],
) -> None:
    record = PeerRecord(inbound, outbound, session, handshake_id, reply, started)
    assert PeerRecord.from_bytes(record.to_bytes()) == record
    with pytest.raises(MalformedEnvelope):
        PeerRecord.from_bytes(record.to_bytes() + b"x")
    # Version 1: the same head and session, then u32 length | waiting ids joined by newlines.
    listed = "\n".join(waiting).encode()
    version_1 = bytes([PEER_RECORD_V1]) + record.to_bytes()[1:] + len(listed).to_bytes(4, "big")
    version_1 += listed
    assert upgrade_peer_record(version_1) == (record, tuple(waiting))
    with pytest.raises(MalformedEnvelope):
        PeerRecord.from_bytes(version_1)  # only the upgrade reads version 1
    with pytest.raises(MalformedEnvelope):
        upgrade_peer_record(version_1 + b"x")


@given(st.binary(max_size=300), b32, st.floats(0, 1e10))
def test_pending_responder_round_trip(session: bytes, reply: bytes, created: float) -> None:
    record = PendingResponder(session, reply, created)
    assert PendingResponder.from_bytes(record.to_bytes()) == record


@given(st.dictionaries(b16, st.integers(0, 2**32 - 1), max_size=40), st.integers(0, 4000))
def test_transfer_round_trip(in_flight: dict[bytes, int], delivered: int) -> None:
    transfer = Transfer("ab" * 16, 4000, 17, delivered, in_flight)
    assert Transfer.from_bytes(transfer.to_bytes()) == transfer
    assert transfer.complete == (delivered >= 4000)


def test_records_refuse_truncation() -> None:
    with pytest.raises(MalformedEnvelope):
        PeerRecord.from_bytes(PeerRecord(bytes(32)).to_bytes()[:-5])
    with pytest.raises(MalformedEnvelope):
        Transfer.from_bytes(Transfer("x", 3, in_flight={bytes(16): 1}).to_bytes()[:20])
    with pytest.raises(MalformedEnvelope):
        PendingResponder.from_bytes(b"\x01")


def test_subscribers_get_events_in_order_and_a_resync_when_behind() -> None:
    hub = EventHub()
    woken: list[int] = []
    fast = hub.subscribe(maxlen=10, wakeup=lambda: woken.append(1))
    slow = hub.subscribe(maxlen=3)
    events = [LockChanged(locked=bool(i % 2)) for i in range(5)]
    for event in events:
        hub.publish(event)
    assert fast.drain() == events
    assert len(woken) == 5
    assert slow.drain() == [Resync(), events[4]]
    slow.close()
    hub.publish(ContactsChanged())
    assert fast.get() == ContactsChanged()
    assert fast.get() is None
    assert len(slow) == 0
    assert slow.closed
    with pytest.raises(ValueError):
        hub.subscribe(maxlen=0)
