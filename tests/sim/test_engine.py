"""Whole simulations on small scenarios: delivery, no duplicate deliveries, determinism."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from pigeon.sim.engine import SimResult, run_simulation
from pigeon.sim.scenario import Scenario, load_scenario, parse_scenario

CLIQUE = {
    "name": "clique",
    "duration_s": 120,
    "messages": 30,
    "send_window_s": 60,
    "payload_bytes": 568,
    "message_lifetime_s": 3600,
    "area_m": [30.0, 30.0],
    "radio": {"loss": 0.0},
    "groups": [{"name": "phone", "count": 6, "placement": "random"}],
}


def _check_sound(result: SimResult) -> None:
    assert result.duplicates_delivered == 0
    assert result.misdelivered == 0
    assert result.delivered <= result.messages
    assert result.transmissions > 0


@pytest.mark.parametrize("routing", ["default", "flood"])
def test_everyone_in_range_without_loss_gets_everything(routing: str) -> None:
    result = run_simulation(parse_scenario(CLIQUE), seed=3, routing=routing)
    _check_sound(result)
    assert result.delivery_ratio == 1.0
    assert result.receipts_returned == result.messages
    assert result.latency_p95_s is not None
    assert result.latency_p95_s < 1.0


def test_flooding_on_a_line_stops_at_the_ttl() -> None:
    scenario = load_scenario("line").with_overrides(messages=40, duration_s=120)
    result = run_simulation(scenario, seed=1, routing="flood")
    _check_sound(result)
    # TTL 7 cannot span a 14-hop chain: only pairs up to 7 hops apart can be served.
    assert 0.3 <= result.delivery_ratio <= 0.8


@pytest.mark.parametrize("loss", [0.0, 0.2])
def test_custody_walks_the_whole_line_beyond_the_ttl_despite_loss(loss: float) -> None:
    scenario = load_scenario("line").with_overrides(messages=40, duration_s=180, loss=loss)
    scenario = dataclasses.replace(scenario, send_window_s=60.0)  # time to arrive
    result = run_simulation(scenario, seed=1, routing="default")
    _check_sound(result)
    assert result.delivery_ratio == 1.0


@pytest.mark.parametrize(
    ("seed", "sessions_established"),
    [(1, False), (2, False), (3, False), (4, False), (5, False), (2, True), (3, True)],
)
def test_links_that_die_mid_transfer_and_overflowing_hosts_lose_nothing(
    seed: int, sessions_established: bool
) -> None:
    scenario = load_scenario("line").with_overrides(messages=30, duration_s=180, loss=0.0)
    radio = dataclasses.replace(
        scenario.radio, link_drop=0.02, host_buffer_frames=4, host_drain_frames_s=150.0
    )
    scenario = dataclasses.replace(scenario, radio=radio, send_window_s=60.0)
    result = run_simulation(scenario, seed=seed, sessions_established=sessions_established)
    _check_sound(result)
    assert result.delivery_ratio == 1.0


@pytest.mark.parametrize("routing", ["default", "flood"])
def test_walkers_carry_messages_across_a_partitioned_area(routing: str) -> None:
    scenario = load_scenario("default").with_overrides(
        nodes=30, duration_s=900, messages=20, loss=0.05
    )
    scenario = _shrink_area(scenario, 300.0)
    result = run_simulation(scenario, seed=2, routing=routing)
    _check_sound(result)
    assert result.delivery_ratio >= 0.8
    # Some pairs walk in range of each other by chance (the median depends on the pairs
    # the seed draws); the slowest messages must have been carried by walkers.
    assert result.latency_p95_s is not None
    assert result.latency_p95_s > 30.0


def test_churn_still_delivers() -> None:
    scenario = load_scenario("churn").with_overrides(nodes=16, duration_s=900, messages=20)
    result = run_simulation(scenario, seed=4)
    _check_sound(result)
    assert result.delivery_ratio >= 0.8


@pytest.mark.xfail(
    strict=True,
    reason="known regression (issue #14, open): at seed 5 spraying sends 179,315 frames, 1.26x "
    "flooding's 142,319 (before resends joined frames 195,033, 1.32x; before HOLDS and the "
    "32-copy budget 210,214, 1.41x, of which ROUTES 69,654: the distance vector churns as "
    "people walk, ENVELOPE 49,774, ACK 49,680 and NOTICE 23,414)",
)
def test_the_default_policy_sends_less_than_flooding() -> None:
    # Enough nodes that a copy budget of 32 is not the whole neighbourhood: in a handful of
    # nodes spraying degenerates into flooding plus announce overhead (see the bench notes).
    scenario = _shrink_area(
        load_scenario("default").with_overrides(nodes=60, duration_s=900, messages=100), 500.0
    )
    spray = run_simulation(scenario, seed=5, routing="default")
    flood = run_simulation(scenario, seed=5, routing="flood")
    assert spray.transmissions < 0.6 * flood.transmissions
    # Within 15 minutes a copy budget delivers a little later, so a little less (0.79 against
    # 0.87 on average over seeds 1-8); the full-length benchmark delivers 100% with either.
    assert spray.delivery_ratio >= flood.delivery_ratio - 0.15


def test_same_seed_same_result_bit_for_bit() -> None:
    scenario = load_scenario("churn").with_overrides(nodes=12, duration_s=300, messages=15)
    first = run_simulation(scenario, seed=9).to_dict()
    second = run_simulation(scenario, seed=9).to_dict()
    other = run_simulation(scenario, seed=10).to_dict()
    for result in (first, second, other):
        result.pop("wall_s")
    assert first == second
    assert first != other


_RUN_IN_CHILD = """
import json
from pigeon.sim.engine import run_simulation
from pigeon.sim.scenario import load_scenario
scenario = load_scenario("churn").with_overrides(nodes=12, duration_s=300, messages=15)
result = run_simulation(scenario, seed=9).to_dict()
result.pop("wall_s")
print(json.dumps(result, sort_keys=True))
"""


def test_same_seed_same_result_whatever_the_hash_seed() -> None:
    """A run must not depend on the process's string hashing: iterating a set of bytes or
    strings on the way to a decision would make it (one did, before any figure was recorded)."""
    runs = [
        subprocess.run(
            [sys.executable, "-c", _RUN_IN_CHILD],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in ("1", "2")
    ]
    assert runs[0] == runs[1]
    assert json.loads(runs[0])["delivered"] > 0


def _shrink_area(scenario: Scenario, side_m: float) -> Scenario:
    return dataclasses.replace(scenario, area_m=(side_m, side_m))


def test_first_messages_between_a_pair_are_first_contact_and_later_ones_not() -> None:
    """Six phones, 30 messages: 30 ordered pairs at most, so some pairs write twice; the first
    message of a pair is a first-contact (pre-key) message to the intro tag, delivered like any
    other, and once the recipient's answer came back later ones go to the session tag."""
    scenario = parse_scenario({**CLIQUE, "messages": 60, "duration_s": 240, "send_window_s": 200})
    result = run_simulation(scenario, seed=3)
    _check_sound(result)
    assert result.delivery_ratio == 1.0
    assert 0 < result.first_contact_messages < result.messages
    assert result.first_contact_latency_p50_s is not None
    assert result.ordinary_latency_p50_s is not None
    assert result.first_contact_latency_p95_s is not None
    assert result.first_contact_latency_p95_s < 1.0  # sent at once: no round trip first


def test_with_sessions_established_no_message_is_first_contact() -> None:
    scenario = parse_scenario({**CLIQUE, "messages": 60, "duration_s": 240, "send_window_s": 200})
    result = run_simulation(scenario, seed=3, sessions_established=True)
    _check_sound(result)
    assert result.first_contact_messages == 0
    assert result.first_contact_latency_p50_s is None
    assert result.ordinary_latency_p50_s == result.latency_p50_s
