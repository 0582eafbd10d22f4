"""The simulated radio's discrete-event core, driven directly on its virtual clock."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.transport.base import Broken, Busy, PeerId
from pigeon.transport.sim import Mobility, RadioParams, SimRadio


class Recorder:
    """A SimListener that logs (time, kind, peer, value)."""

    def __init__(self, radio: SimRadio) -> None:
        self.radio = radio
        self.log: list[tuple[float, str, PeerId, object]] = []

    def link_up(self, peer: PeerId, frame_limit: int) -> None:
        self.log.append((self.radio.now, "up", peer, frame_limit))

    def link_down(self, peer: PeerId, reason: str) -> None:
        self.log.append((self.radio.now, "down", peer, reason))

    def frame_received(self, peer: PeerId, frame: bytes) -> None:
        self.log.append((self.radio.now, "frame", peer, frame))

    def frame_sent(self, peer: PeerId) -> None:
        self.log.append((self.radio.now, "sent", peer, None))

    def kinds(self, kind: str) -> list[tuple[float, PeerId, object]]:
        return [(t, p, v) for t, k, p, v in self.log if k == kind]


def _radio(**params: float) -> tuple[SimRadio, dict[str, Recorder]]:
    radio = SimRadio(RadioParams(**params), random.Random(7))  # type: ignore[arg-type]
    return radio, {}


def _place(radio: SimRadio, rec: dict[str, Recorder], name: str, x: float, y: float = 0.0) -> None:
    rec[name] = Recorder(radio)
    radio.add_node(PeerId(name), x, y, rec[name])


A, B, C = PeerId("a"), PeerId("b"), PeerId("c")


def test_nodes_in_range_link_and_out_of_range_do_not() -> None:
    radio, rec = _radio(range_m=50.0)
    _place(radio, rec, "a", 0.0)
    _place(radio, rec, "b", 49.0)
    _place(radio, rec, "c", 120.0)
    radio.run_until(0.0)
    assert radio.peers(A) == [B]
    assert sorted(radio.peers(B)) == [A]
    assert radio.peers(C) == []
    assert rec["a"].kinds("up") == [(0.0, B, 244)]


def test_frames_take_bandwidth_time_plus_latency_in_order() -> None:
    radio, rec = _radio(bandwidth_bytes_s=1000.0, latency_s=0.01)
    _place(radio, rec, "a", 0.0)
    _place(radio, rec, "b", 10.0)
    radio.run_until(0.0)
    radio.send(A, B, b"x" * 100)
    radio.send(A, B, b"y" * 100)
    radio.run_until(10.0)
    frames = rec["b"].kinds("frame")
    assert [v for _, _, v in frames] == [b"x" * 100, b"y" * 100]
    assert frames[0][0] == pytest.approx(0.11)
    assert frames[1][0] == pytest.approx(0.21)
    assert len(rec["a"].kinds("sent")) == 2
    assert radio.stats().frames_transmitted == 2


def test_send_errors() -> None:
    radio, rec = _radio(queue_limit_frames=2)
    _place(radio, rec, "a", 0.0)
    _place(radio, rec, "b", 10.0)
    _place(radio, rec, "c", 500.0)
    radio.run_until(0.0)
    with pytest.raises(Broken):
        radio.send(A, C, b"x")
    with pytest.raises(ValueError, match="exceeds"):
        radio.send(A, B, bytes(245))
    radio.send(A, B, b"1")
    radio.send(A, B, b"2")
    with pytest.raises(Busy):
        radio.send(A, B, b"3")


def test_loss_rate_is_close_to_the_parameter() -> None:
    radio, rec = _radio(loss=0.3, queue_limit_frames=10_000)
    _place(radio, rec, "a", 0.0)
    _place(radio, rec, "b", 10.0)
    radio.run_until(0.0)
    for _ in range(2000):
        radio.send(A, B, b"z")
    radio.run_until(100.0)
    received = len(rec["b"].kinds("frame"))
    assert 1250 < received < 1550
    assert radio.stats().frames_lost == 2000 - received


def test_moving_out_of_range_breaks_the_link_and_drops_queued_frames() -> None:
    radio, rec = _radio(bandwidth_bytes_s=100.0)
    _place(radio, rec, "a", 0.0)
    _place(radio, rec, "b", 10.0)
    radio.run_until(0.0)
    radio.send(A, B, b"x" * 100)  # takes a second on air
    radio.run_until(0.5)
    radio.move_node(B, 300.0, 0.0)
    radio.run_until(5.0)
    assert rec["b"].kinds("frame") == []
    assert [p for _, p, _ in rec["a"].kinds("down")] == [B]
    assert [p for _, p, _ in rec["b"].kinds("down")] == [A]
    assert radio.stats().frames_transmitted == 0


def test_link_limit_per_node() -> None:
    radio, rec = _radio(max_links=2)
    for i in range(5):
        _place(radio, rec, f"n{i}", float(i))
    radio.run_until(0.0)
    assert all(len(radio.peers(PeerId(f"n{i}"))) <= 2 for i in range(5))
    assert sum(len(radio.peers(PeerId(f"n{i}"))) for i in range(5)) >= 4


def test_power_off_breaks_links_and_power_on_restores_them() -> None:
    radio, rec = _radio()
    _place(radio, rec, "a", 0.0)
    _place(radio, rec, "b", 10.0)
    radio.run_until(0.0)
    radio.set_power(B, False)
    radio.run_until(1.0)
    assert radio.peers(A) == []
    assert not radio.is_on(B)
    radio.set_power(B, True)
    radio.run_until(2.0)
    assert radio.peers(A) == [B]
    assert [k for _, k, _, _ in rec["a"].log] == ["up", "down", "up"]


def test_walkers_stay_in_their_area_and_meet() -> None:
    radio, rec = _radio(range_m=30.0)
    walk = Mobility(width_m=200.0, height_m=200.0, pause_max_s=5.0)
    for i in range(10):
        rec[f"w{i}"] = Recorder(radio)
        radio.add_node(PeerId(f"w{i}"), 20.0 * i, 100.0, rec[f"w{i}"], walk)
    radio.run_until(600.0)
    for i in range(10):
        x, y = radio.position(PeerId(f"w{i}"))
        assert 0.0 <= x <= 200.0
        assert 0.0 <= y <= 200.0
    assert radio.stats().links_up > 10


def test_callbacks_run_at_their_time() -> None:
    radio, _ = _radio()
    seen: list[float] = []
    radio.call_at(3.0, lambda: seen.append(radio.now))
    radio.call_at(1.0, lambda: seen.append(radio.now))
    radio.run_until(2.0)
    assert seen == [1.0]
    assert radio.now == 2.0
    radio.run_until(3.0)
    assert seen == [1.0, 3.0]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_same_seed_same_history(seed: int) -> None:
    def history() -> list[tuple[float, str, PeerId, object]]:
        radio = SimRadio(RadioParams(range_m=40.0, loss=0.2), random.Random(seed))
        recs = [Recorder(radio) for _ in range(6)]
        walk = Mobility(width_m=150.0, height_m=150.0, pause_max_s=2.0)
        for i, rec in enumerate(recs):
            radio.add_node(PeerId(f"n{i}"), 25.0 * i, 75.0, rec, walk)
        for step in range(1, 120):
            radio.run_until(float(step))
            for i in range(6):
                for peer in radio.peers(PeerId(f"n{i}")):
                    radio.send(PeerId(f"n{i}"), peer, bytes([step % 256]))
        return [entry for rec in recs for entry in rec.log]

    assert history() == history()


def test_links_form_only_between_nodes_offering_the_same_service() -> None:
    radio, rec = _radio(range_m=50.0)
    for name, service in (("ours", "pigeon"), ("app-1", "pigeon-app"), ("app-2", "pigeon-app")):
        rec[name] = Recorder(radio)
        radio.add_node(PeerId(name), 0.0, 0.0, rec[name], service=service)
    radio.run_until(0.0)
    assert radio.peers(PeerId("ours")) == []
    assert radio.peers(PeerId("app-1")) == [PeerId("app-2")]


def test_a_link_carries_the_smaller_frame_limit_of_its_ends() -> None:
    radio, rec = _radio(range_m=50.0)
    for name, limit in (("phone", 182), ("node", 510)):
        rec[name] = Recorder(radio)
        radio.add_node(PeerId(name), 0.0, 0.0, rec[name], service="pigeon-app", frame_limit=limit)
    radio.run_until(0.0)
    assert rec["node"].kinds("up") == [(0.0, PeerId("phone"), 182)]
    assert radio.frame_limit(PeerId("node"), PeerId("phone")) == 182
    radio.send(PeerId("node"), PeerId("phone"), bytes(182))
    with pytest.raises(ValueError, match="exceeds the limit of 182"):
        radio.send(PeerId("node"), PeerId("phone"), bytes(183))


def test_a_node_frame_limit_under_the_ble_minimum_is_refused() -> None:
    radio, rec = _radio()
    rec["x"] = Recorder(radio)
    with pytest.raises(ValueError, match="frame_limit"):
        radio.add_node(PeerId("x"), 0.0, 0.0, rec["x"], frame_limit=19)
