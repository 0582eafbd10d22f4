"""LiveQueue: bounded in envelopes and bytes, and never loses an envelope without saying so."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pigeon.relay.live import LiveQueue
from pigeon.relay.storage import StoredEnvelope

steps = st.lists(st.one_of(st.integers(1, 400), st.just(0)), max_size=200)  # 0: take


@given(steps)
def test_the_queue_stays_bounded_and_reports_every_drop(script: list[int]) -> None:
    queue = LiveQueue(max_envelopes=8, max_bytes=1000)
    offered: list[int] = []
    for seq, size in enumerate(script, start=1):
        if size:
            queue.offer(StoredEnvelope(seq, bytes(16), bytes(size)))
            offered.append(seq)
            assert len(queue) <= 8
            assert queue.held_bytes <= 1000
            continue
        items, dropped = queue.take()
        if not dropped:  # nothing was lost: exactly what was offered, in order
            assert [e.seq for e in items] == offered
        else:
            assert items == []  # the reader pages from the store instead
        offered = []


def test_overflow_drops_and_the_next_take_says_so() -> None:
    queue = LiveQueue(max_envelopes=2, max_bytes=100)
    for seq in (1, 2, 3):
        queue.offer(StoredEnvelope(seq, bytes(16), b"x"))
    assert queue.take() == ([], True)
    queue.offer(StoredEnvelope(4, bytes(16), b"y"))
    assert queue.take() == ([StoredEnvelope(4, bytes(16), b"y")], False)
