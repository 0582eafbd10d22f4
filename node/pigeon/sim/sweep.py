"""`pigeon sim --sweep`: one scenario run over a range of one parameter, several seeds, every
routing policy; the mean delivery, p50/p95 latency and transmissions per (value, policy)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pigeon.mesh.policy import POLICIES
from pigeon.sim.engine import SimResult, run_simulation
from pigeon.sim.scenario import Scenario, ScenarioError

# What a sweep may vary: each applies one value to a scenario.
SWEEPABLE: dict[str, Callable[[Scenario, float], Scenario]] = {
    "loss": lambda s, v: s.with_overrides(loss=v),
    "nodes": lambda s, v: s.with_overrides(nodes=int(v)),
    "messages": lambda s, v: s.with_overrides(messages=int(v)),
    "duration_s": lambda s, v: s.with_overrides(duration_s=v),
    "link_drop": lambda s, v: s.with_overrides(link_drop=v),
}


@dataclass(frozen=True, slots=True)
class SweepRow:
    """Means over the seeds of one (value, policy)."""

    value: float
    routing: str
    runs: int
    delivery_ratio: float
    latency_p50_s: float | None
    latency_p95_s: float | None
    transmissions: float


def parse_sweep(spec: str) -> tuple[str, list[float]]:
    """`loss=0,0.1,0.2` -> ("loss", [0.0, 0.1, 0.2]); raises ScenarioError."""
    name, _, values = spec.partition("=")
    if name not in SWEEPABLE:
        raise ScenarioError(f"--sweep: {name!r} cannot be swept; one of {', '.join(SWEEPABLE)}")
    try:
        parsed = [float(v) for v in values.split(",") if v.strip()]
    except ValueError as exc:
        raise ScenarioError(f"--sweep: values must be numbers: {values!r}") from exc
    if not parsed:
        raise ScenarioError("--sweep: give at least one value, e.g. loss=0,0.1,0.2")
    return name, parsed


def parse_seeds(spec: str) -> list[int]:
    """`1-10` or `1,3,5` -> seeds; raises ScenarioError."""
    try:
        if "-" in spec:
            first, last = (int(part) for part in spec.split("-", 1))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(part) for part in spec.split(",")]
    except ValueError as exc:
        raise ScenarioError(f"--seeds: expected 1-10 or 1,2,3, not {spec!r}") from exc
    if not seeds:
        raise ScenarioError("--seeds: no seeds")
    return seeds


def run_sweep(
    scenario: Scenario,
    name: str,
    values: Sequence[float],
    seeds: Sequence[int],
    policies: Sequence[str] = POLICIES,
    done: Callable[[SimResult], None] | None = None,
) -> list[SweepRow]:
    """Run every (value, policy, seed); `done` hears each result."""
    rows = []
    for value in values:
        varied = SWEEPABLE[name](scenario, value)
        for routing in policies:
            results = []
            for seed in seeds:
                result = run_simulation(varied, seed, routing)
                results.append(result)
                if done is not None:
                    done(result)
            rows.append(_row(value, routing, results))
    return rows


def _row(value: float, routing: str, results: list[SimResult]) -> SweepRow:
    p50s = [r.latency_p50_s for r in results if r.latency_p50_s is not None]
    p95s = [r.latency_p95_s for r in results if r.latency_p95_s is not None]
    return SweepRow(
        value=value,
        routing=routing,
        runs=len(results),
        delivery_ratio=round(statistics.fmean(r.delivery_ratio for r in results), 4),
        latency_p50_s=round(statistics.fmean(p50s), 2) if p50s else None,
        latency_p95_s=round(statistics.fmean(p95s), 2) if p95s else None,
        transmissions=round(statistics.fmean(r.transmissions for r in results), 1),
    )


def table(name: str, rows: Sequence[SweepRow]) -> str:
    """The rows as an aligned text table."""

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [
        f"{name:>10} {'routing':>8} {'runs':>5} {'delivery':>9} {'p50 s':>8} "
        f"{'p95 s':>8} {'transmissions':>14}"
    ]
    for row in rows:
        lines.append(
            f"{row.value:>10g} {row.routing:>8} {row.runs:>5} {row.delivery_ratio:>9.3f} "
            f"{cell(row.latency_p50_s):>8} {cell(row.latency_p95_s):>8} "
            f"{row.transmissions:>14.0f}"
        )
    return "\n".join(lines)
