"""The messenger's stored records round-trip; the event stream keeps order and bounds."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.messenger.errors import MalformedEnvelope
from pigeon.messenger.events import ContactsChanged, EventHub, LockChanged, Resync
from pigeon.messenger.records import (
    MAX_SESSIONS,
    PEER_RECORD_V1,
    PEER_RECORD_V2,
    PeerRecord,
    Transfer,
    upgrade_peer_record,
)

b16 = st.binary(min_size=16, max_size=16)
b32 = st.binary(min_size=32, max_size=32)
ids = st.lists(st.text("0123456789abcdef", min_size=32, max_size=32), max_size=5)
sessions = st.lists(st.binary(max_size=300), max_size=MAX_SESSIONS).map(tuple)


@given(b32, st.none() | b32, st.binary(max_size=300), st.floats(0, 1e10), st.booleans(), sessions)
def test_peer_record_round_trip(
    inbound: bytes,
    outbound: bytes | None,
    prekey: bytes,
    requested: float,
    confirmed: bool,
    kept: tuple[bytes, ...],
) -> None:
    record = PeerRecord(inbound, outbound, prekey, requested, confirmed, kept)
    assert PeerRecord.from_bytes(record.to_bytes()) == record
    with pytest.raises(MalformedEnvelope):
        PeerRecord.from_bytes(record.to_bytes() + b"x")


@given(b32, st.none() | b32, st.binary(max_size=300), b16, b32, st.floats(0, 1e10), ids)
def test_noise_era_records_upgrade_keeping_tag_keys_and_dropping_the_session(
    inbound: bytes,
    outbound: bytes | None,
    session: bytes,
    handshake_id: bytes,
    reply: bytes,
    started: float,
    waiting: list[str],
) -> None:
    # Version 2: version | inbound | has_out | outbound | u32 len | handshake id | reply key |
    # f64 started | session. Version 1 appended u32 length | waiting ids joined by newlines.
    head = (
        inbound
        + bytes([outbound is not None])
        + (outbound or bytes(32))
        + len(session).to_bytes(4, "big")
        + handshake_id
        + reply
        + struct.pack(">d", started)
    )
    version_2 = bytes([PEER_RECORD_V2]) + head + session
    expected = PeerRecord(inbound, outbound)
    assert upgrade_peer_record(version_2) == (expected, ())
    listed = "\n".join(waiting).encode()
    version_1 = bytes([PEER_RECORD_V1]) + head + session + len(listed).to_bytes(4, "big") + listed
    assert upgrade_peer_record(version_1) == (expected, tuple(waiting))
    for old in (version_1, version_2):
        with pytest.raises(MalformedEnvelope):
            PeerRecord.from_bytes(old)  # only the upgrade reads them
    with pytest.raises(MalformedEnvelope):
        upgrade_peer_record(version_1 + b"x")
    with pytest.raises(MalformedEnvelope):
        upgrade_peer_record(version_2 + b"x")


def test_sessions_are_kept_current_first_and_bounded() -> None:
    record = PeerRecord(bytes(32))
    for n in range(MAX_SESSIONS + 2):
        record = record.with_current(bytes([n]), confirmed=True)
    assert record.sessions == tuple(bytes([n]) for n in reversed(range(2, MAX_SESSIONS + 2)))
    behind = record.with_behind(b"old")
    assert behind.session == record.session
    assert behind.sessions[1] == b"old"
    assert len(behind.sessions) == MAX_SESSIONS


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
