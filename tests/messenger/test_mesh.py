"""Two owners exchange texts and files through routers and relays on the simulated radio."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from pigeon.messenger.api import MessageAdded, MessageUpdated
from pigeon.messenger.envelope import MAX_FILE_BYTES
from tests.messenger.helpers import befriend
from tests.messenger.meshnet import MeshNet


def _payload(size: int) -> bytes:
    blocks = (hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size // 32 + 1))
    return b"".join(blocks)[:size]


def test_text_and_file_through_relays_across_a_restart(tmp_path: Path) -> None:
    # No frame loss: BLE's link layer retransmits, and the mesh recovers a multi-frame packet
    # lost on one hop only by its origin's slow retry (a lossy radio is tested with texts).
    net = MeshNet(tmp_path, relays=3)
    net.start()
    alice, bob = net.a, net.b
    assert alice.endpoint is not None
    assert bob.endpoint is not None
    bob_id, alice_id = befriend(alice.endpoint, bob.endpoint, net.unix_now())
    hello = alice.endpoint.messenger.send_text(bob_id, "hello over five hops", net.unix_now())
    assert net.run_until(
        lambda: alice.endpoint.messenger.message(hello.id).state == "delivered", 900
    )
    texts = [m.text for m in bob.endpoint.messenger.conversation(alice_id)]
    assert texts == ["hello over five hops"]

    data = _payload(600_000)  # 84 chunks: three windows of 32
    sent = alice.endpoint.messenger.send_file(bob_id, "photo.jpg", data, net.unix_now())
    net.run_until(lambda: (alice.endpoint.messenger.message(sent.id).file_progress or 0) > 0.3, 900)
    progress = alice.endpoint.messenger.message(sent.id).file_progress or 0.0
    assert 0.3 < progress < 1.0  # restarted in the middle of the transfer
    alice.restart()
    reply = bob.endpoint.messenger.send_text(alice_id, "got part of it", net.unix_now())
    assert net.run_until(
        lambda: alice.endpoint.messenger.message(sent.id).state == "delivered", 3600
    )
    assert net.run_until(lambda: bob.endpoint.messenger.message(reply.id).state == "delivered", 900)
    [received] = [m for m in bob.endpoint.messenger.conversation(alice_id) if m.kind == "file"]
    assert bob.endpoint.messenger.file_data(received.id) == ("photo.jpg", data)
    for endpoint in (alice.endpoint, bob.endpoint):
        assert endpoint.messenger.outstanding_envelopes() == []


def test_texts_over_a_lossy_radio(tmp_path: Path) -> None:
    net = MeshNet(tmp_path, relays=2, loss=0.1, seed=3)
    net.start()
    assert net.a.endpoint is not None
    assert net.b.endpoint is not None
    alice, bob = net.a.endpoint.messenger, net.b.endpoint.messenger
    bob_id, alice_id = befriend(net.a.endpoint, net.b.endpoint, net.unix_now())
    sent = [alice.send_text(bob_id, f"message {i}", net.unix_now()) for i in range(5)]
    sent += [bob.send_text(alice_id, f"answer {i}", net.unix_now()) for i in range(5)]

    def delivered() -> bool:
        views = [alice.message(m.id) if m.contact_id == bob_id else bob.message(m.id) for m in sent]
        return all(v.state == "delivered" for v in views)

    assert net.run_until(delivered, 3600)
    assert sorted(m.text or "" for m in bob.conversation(alice_id) if m.direction == "in") == [
        f"message {i}" for i in range(5)
    ]


def test_states_move_queued_sent_delivered(tmp_path: Path) -> None:
    net = MeshNet(tmp_path, relays=2)
    net.start()
    assert net.a.endpoint is not None
    assert net.b.endpoint is not None
    messenger = net.a.endpoint.messenger
    bob_id, _ = befriend(net.a.endpoint, net.b.endpoint, net.unix_now())
    warm = messenger.send_text(bob_id, "session", net.unix_now())
    assert net.run_until(lambda: messenger.message(warm.id).state == "delivered", 900)
    events = messenger.subscribe()
    message = messenger.send_text(bob_id, "watch my states", net.unix_now())
    assert net.run_until(lambda: messenger.message(message.id).state == "delivered", 900)
    views = [e.message for e in events.drain() if isinstance(e, MessageAdded | MessageUpdated)]
    states = [view.state for view in views if view.id == message.id]
    assert states == ["queued", "sent", "delivered"]


@pytest.mark.slow
def test_25_mb_file_through_two_relays(tmp_path: Path) -> None:
    net = MeshNet(tmp_path, relays=2)
    net.start()
    assert net.a.endpoint is not None
    assert net.b.endpoint is not None
    alice, bob = net.a.endpoint.messenger, net.b.endpoint.messenger
    bob_id, alice_id = befriend(net.a.endpoint, net.b.endpoint, net.unix_now())
    data = _payload(MAX_FILE_BYTES)
    started = time.perf_counter()
    sent = alice.send_file(bob_id, "video.mp4", data, net.unix_now())
    assert net.run_until(lambda: alice.message(sent.id).state == "delivered", 6 * 3600, 60.0)
    [received] = [m for m in bob.conversation(alice_id) if m.kind == "file"]
    assert bob.file_data(received.id)[1] == data
    print(f"25 MB: {net.radio.now:.0f} s simulated, {time.perf_counter() - started:.1f} s wall")
