"""First-contact latency in `pigeon sim`, written to bench/results/first_contact.json.

The `default` scenario at seed 1, twice on the same traffic: as the node now works (each pair's
first messages are Olm pre-key messages, 248 bytes larger, to the recipient's intro tag, sent at
once), and with every pair's session established beforehand (every message ordinary). The
figure: the first texts' p50 latency beside the ordinary messages' p50 of the reference run
(ratio goal: at most 1.1). Simulated time, so the figures do not depend on the machine.
Run: .venv/bin/python bench/bench_first_contact.py [seed, default 1]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pigeon.sim.engine import run_simulation
from pigeon.sim.scenario import load_scenario

RESULTS = Path(__file__).resolve().parent / "results" / "first_contact.json"
GOAL_RATIO = 1.1


def main() -> None:
    """Both runs, the ratio, and the JSON file."""
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    scenario = load_scenario("default")
    olm = run_simulation(scenario, seed).to_dict()
    reference = run_simulation(scenario, seed, sessions_established=True).to_dict()
    first_p50 = olm["first_contact_latency_p50_s"]
    ordinary_p50 = reference["ordinary_latency_p50_s"]
    if not isinstance(first_p50, float) or not isinstance(ordinary_p50, float):
        raise RuntimeError("a run delivered no message of its kind")
    ratio = round(first_p50 / ordinary_p50, 3)
    keys = (
        "messages",
        "delivered",
        "first_contact_messages",
        "first_contact_latency_p50_s",
        "first_contact_latency_p95_s",
        "ordinary_latency_p50_s",
        "ordinary_latency_p95_s",
        "latency_p50_s",
        "latency_p95_s",
    )
    result = {
        "scenario": "default",
        "seed": seed,
        "first_contact_run": {key: olm[key] for key in keys},
        "sessions_established_run": {key: reference[key] for key in keys},
        "first_text_p50_s": first_p50,
        "ordinary_p50_s": ordinary_p50,
        "ratio_first_to_ordinary_p50": ratio,
        "goal_ratio": GOAL_RATIO,
        "goal_met": ratio <= GOAL_RATIO,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
