"""`pigeon sim`: run a simulated neighbourhood and report delivery, latency and cost."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Final, TextIO

from pigeon.mesh.policy import POLICIES
from pigeon.sim.engine import SimResult, run_simulation
from pigeon.sim.plot import sweep_svg
from pigeon.sim.scenario import BUNDLED, Scenario, ScenarioError, load_scenario
from pigeon.sim.sweep import SWEEPABLE, parse_seeds, parse_sweep, run_sweep, table

HELP: Final = "simulate a neighbourhood of mesh nodes and measure delivery"
PROGRESS_WIDTH: Final = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sim options."""
    parser.add_argument(
        "--scenario",
        default="default",
        metavar="NAME_OR_FILE",
        help=f"a bundled scenario ({', '.join(BUNDLED)}) or a TOML file (default: default)",
    )
    parser.add_argument("--seed", type=int, default=1, help="the run's seed (default: 1)")
    parser.add_argument("--routing", choices=POLICIES, default="default", help="routing policy")
    parser.add_argument("--nodes", type=int, help="override the node count (groups rescaled)")
    parser.add_argument("--loss", type=float, help="override the per-frame loss, 0..1")
    parser.add_argument("--duration-s", type=float, help="override the simulated duration")
    parser.add_argument("--messages", type=int, help="override the number of messages")
    parser.add_argument(
        "--sweep",
        metavar="NAME=V1,V2,...",
        help=f"run every policy over these values of one of: {', '.join(SWEEPABLE)}",
    )
    parser.add_argument("--seeds", default="1", help="seeds for --sweep: 1-10 or 1,2,3")
    parser.add_argument("--plot", metavar="FILE.svg", help="with --sweep: draw the curves")
    parser.add_argument(
        "--sessions-established",
        action="store_true",
        help="every pair has a session already: no first-contact messages (a reference)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args: argparse.Namespace) -> int:
    """Run the simulation; 0 on success, 2 on a bad scenario."""
    try:
        scenario = load_scenario(args.scenario).with_overrides(
            nodes=args.nodes, loss=args.loss, duration_s=args.duration_s, messages=args.messages
        )
    except ScenarioError as exc:
        print(f"pigeon sim: {exc}", file=sys.stderr)
        return 2
    if args.sweep:
        return _sweep(args, scenario)
    show_progress = not args.no_progress and sys.stderr.isatty()
    progress = _ProgressBar(sys.stderr) if show_progress else None
    result = run_simulation(
        scenario, args.seed, args.routing, progress, sessions_established=args.sessions_established
    )
    if progress is not None:
        progress.finish()
    if args.json:
        print(json.dumps(result.to_dict(), sort_keys=True))
    else:
        print(summary(result))
    return 0


def _sweep(args: argparse.Namespace, scenario: Scenario) -> int:
    try:
        name, values = parse_sweep(args.sweep)
        seeds = parse_seeds(args.seeds)
    except ScenarioError as exc:
        print(f"pigeon sim: {exc}", file=sys.stderr)
        return 2
    try:
        rows = run_sweep(scenario, name, values, seeds)
    except ScenarioError as exc:  # a swept value out of range
        print(f"pigeon sim: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([dataclasses.asdict(row) for row in rows], sort_keys=True))
    else:
        print(f"scenario {scenario.name}, seeds {args.seeds}")
        print(table(name, rows))
    if args.plot:
        title = f"{scenario.name}: seeds {args.seeds}"
        Path(args.plot).write_text(sweep_svg(title, name, rows), encoding="utf-8")
    return 0


def summary(result: SimResult) -> str:
    """A few readable lines about a run."""
    p50 = "-" if result.latency_p50_s is None else f"{result.latency_p50_s:.1f} s"
    p95 = "-" if result.latency_p95_s is None else f"{result.latency_p95_s:.1f} s"
    per = result.transmissions_per_delivery
    return "\n".join(
        (
            f"scenario {result.scenario}, routing {result.routing}, seed {result.seed}: "
            f"{result.nodes} nodes, {result.duration_s:.0f} s simulated in {result.wall_s:.1f} s",
            f"delivered {result.delivered} of {result.messages} "
            f"({result.delivery_ratio:.1%}), latency p50 {p50}, p95 {p95}, "
            f"receipts back to the sender {result.receipts_returned}",
            f"transmissions {result.transmissions} frames "
            f"({'-' if per is None else f'{per:.1f}'} per delivery), "
            f"{result.frames_lost} lost on air, duplicates delivered "
            f"{result.duplicates_delivered}",
            f"peak spool {result.peak_spool_envelopes} envelopes on one node, "
            f"{result.peak_spool_envelopes_total} in the whole neighbourhood",
        )
    )


class _ProgressBar:
    """A one-line bar redrawn in place on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._shown = -1

    def __call__(self, fraction: float) -> None:
        filled = min(PROGRESS_WIDTH, int(fraction * PROGRESS_WIDTH))
        if filled == self._shown:
            return
        self._shown = filled
        bar = "#" * filled + "." * (PROGRESS_WIDTH - filled)
        self._stream.write(f"\r[{bar}] {min(fraction, 1.0):4.0%}")
        self._stream.flush()

    def finish(self) -> None:
        self._stream.write("\r" + " " * (PROGRESS_WIDTH + 8) + "\r")
        self._stream.flush()
