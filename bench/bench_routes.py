"""Routes benchmark: each scenario's delivery, latency and frames by packet type, per run.

Judges a routing change on every scenario, not one: for each (scenario, seed, loss, policy) it
runs the simulator and counts the frames on air by the type of packet they carry, appending one
JSON line per run to a file (so a long matrix can be stopped and resumed, and the same script
run against an older tree exported with `git archive` gives the "before"). `--table BEFORE
AFTER` prints the comparison (means over seeds), with flooding's runs from either file.
Run: PYTHONPATH=<tree>/node .venv/bin/python bench/bench_routes.py --out FILE
         [--scenarios line,grid,...] [--seeds 1-3] [--losses 0,0.05,0.2] [--routing default]
     .venv/bin/python bench/bench_routes.py --table BEFORE.jsonl AFTER.jsonl
     .venv/bin/python bench/bench_routes.py --merge BEFORE.jsonl AFTER.jsonl  (into mesh.json)
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import Counter
from pathlib import Path

from pigeon.mesh.packet import PacketType
from pigeon.sim.engine import Simulation
from pigeon.sim.scenario import load_scenario
from pigeon.transport.base import PeerId

HERE = Path(__file__).resolve().parent
SCENARIOS = ("line", "grid", "street", "dense", "churn", "default", "backbone")
_FIRST_TAG = 0x10
_CONTINUATION_TAG = 0x11
_FIRST_HEADER_LEN = 15  # tag u8, message id u16, count u16, total length u16, digest 8


def _scenario_path(name: str) -> str:
    local = HERE / "scenarios" / f"{name}.toml"
    return str(local) if local.exists() else name


def _type_name(value: int) -> str:
    try:
        return PacketType(value).name.lower()
    except ValueError:
        return f"type{value}"


def run_one(name: str, seed: int, loss: float, routing: str) -> dict[str, object]:
    """One run, with the frames it put on air counted by packet type."""
    scenario = load_scenario(_scenario_path(name)).with_overrides(loss=loss)
    simulation = Simulation(scenario, seed, routing)
    radio = simulation.radio
    send = radio.send
    kinds: dict[tuple[str, str, bytes], int] = {}
    by_type: Counter[str] = Counter()

    def counting_send(src: PeerId, dst: PeerId, frame: bytes) -> None:
        send(src, dst, frame)  # raises (not counted) when the link is busy or broken
        key = (src, dst, frame[1:3])
        if frame[0] == _FIRST_TAG:
            kind = frame[_FIRST_HEADER_LEN + 1]
            kinds[key] = kind
        else:
            kind = kinds.get(key, 0)
        by_type[_type_name(kind)] += 1

    radio.send = counting_send  # type: ignore[method-assign]
    result = simulation.run().to_dict()
    result["loss"] = loss
    result["frames_by_type"] = dict(sorted(by_type.items()))
    return result


def _parse_seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def _option(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def _load(path: str) -> dict[tuple[str, str, float, int], dict[str, object]]:
    runs = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        run = json.loads(line)
        runs[(run["scenario"], run["routing"], run["loss"], run["seed"])] = run
    return runs


def _mean(runs: list[dict[str, object]], key: str) -> float:
    values = [float(r[key]) for r in runs if r.get(key) is not None]  # type: ignore[arg-type]
    return statistics.fmean(values) if values else float("nan")


def _routes_frames(run: dict[str, object]) -> int:
    frames = run["frames_by_type"]
    assert isinstance(frames, dict)
    return sum(v for k, v in frames.items() if k.startswith("routes") or k == "type8")


def _seed_range(seeds: list[int]) -> str:
    return (
        f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else str(seeds)
    )


def table(before_path: str, after_path: str) -> str:
    """Before/after per scenario and loss (means over the seeds both files have)."""
    before, after = _load(before_path), _load(after_path)
    flood = {k: v for k, v in (*before.items(), *after.items()) if k[1] == "flood"}
    groups = sorted({(k[0], k[2]) for k in after if k[1] == "default"})
    lines = [
        "| scenario | loss | seeds | delivered before/after (flood) | frames vs flood "
        "before/after | ROUTES frames before/after | p95 s before/after (flood) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, loss in groups:
        seeds = sorted(
            k[3]
            for k in after
            if k[:3] == (name, "default", loss) and (name, "default", loss, k[3]) in before
        )
        if not seeds:
            continue
        old = [before[(name, "default", loss, s)] for s in seeds]
        new = [after[(name, "default", loss, s)] for s in seeds]
        # Flooding's runs are the same for both trees; where fewer seeds have one, its mean
        # over those seeds stands in (the table says which).
        fl = [flood[(name, "flood", loss, s)] for s in seeds if (name, "flood", loss, s) in flood]
        f_frames = _mean(fl, "transmissions")
        lines.append(
            f"| {name} | {loss} | {_seed_range(seeds)} (flood {len(fl)}) "
            f"| {_mean(old, 'delivery_ratio'):.3f}/{_mean(new, 'delivery_ratio'):.3f} "
            f"({_mean(fl, 'delivery_ratio'):.3f}) "
            f"| {_mean(old, 'transmissions') / f_frames:.3f}x/"
            f"{_mean(new, 'transmissions') / f_frames:.3f}x "
            f"| {statistics.fmean(map(_routes_frames, old)):.0f}/"
            f"{statistics.fmean(map(_routes_frames, new)):.0f} "
            f"| {_mean(old, 'latency_p95_s'):.2f}/{_mean(new, 'latency_p95_s'):.2f} "
            f"({_mean(fl, 'latency_p95_s'):.2f}) |"
        )
    return "\n".join(lines)


def summary(before_path: str, after_path: str) -> dict[str, object]:
    """The comparison as JSON: per scenario and loss, means over the seeds both files have."""
    before, after = _load(before_path), _load(after_path)
    flood = {k: v for k, v in (*before.items(), *after.items()) if k[1] == "flood"}
    out: dict[str, object] = {}
    for name, loss in sorted({(k[0], k[2]) for k in after if k[1] == "default"}):
        seeds = sorted(
            k[3] for k in after if k[:3] == (name, "default", loss) and (*k[:3], k[3]) in before
        )
        if not seeds:
            continue
        row: dict[str, object] = {"seeds": _seed_range(seeds)}
        for label, runs in (
            ("before", [before[(name, "default", loss, s)] for s in seeds]),
            ("after", [after[(name, "default", loss, s)] for s in seeds]),
            (
                "flood",
                [
                    flood[(name, "flood", loss, s)]
                    for s in seeds
                    if (name, "flood", loss, s) in flood
                ],
            ),
        ):
            if not runs:
                continue
            row[label] = {
                "delivery_ratio": round(_mean(runs, "delivery_ratio"), 4),
                "latency_p95_s": round(_mean(runs, "latency_p95_s"), 2),
                "transmissions": round(_mean(runs, "transmissions")),
                "routes_frames": round(statistics.fmean(map(_routes_frames, runs))),
            }
        out[f"{name} loss={loss}"] = row
    return out


def main() -> None:
    """Run the matrix, print the table, or merge the comparison into mesh.json."""
    if "--table" in sys.argv:
        at = sys.argv.index("--table")
        print(table(sys.argv[at + 1], sys.argv[at + 2]))
        return
    if "--merge" in sys.argv:
        at = sys.argv.index("--merge")
        results = HERE / "results" / "mesh.json"
        report = json.loads(results.read_text(encoding="utf-8"))
        report["routes_v2"] = {
            "what": "routes version 2 (deltas, one update in flight, 5 s hold) against main "
            "e82d112, same seeds; means over seeds; frames counted by packet type",
            "runs": summary(sys.argv[at + 1], sys.argv[at + 2]),
        }
        results.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        return
    out = Path(_option("--out", "routes.jsonl"))
    done = set(_load(str(out))) if out.exists() else set()
    names = _option("--scenarios", ",".join(SCENARIOS)).split(",")
    seeds = _parse_seeds(_option("--seeds", "1-3"))
    losses = [float(v) for v in _option("--losses", "0,0.05,0.2").split(",")]
    routing = _option("--routing", "default")
    for name in names:
        for loss in losses:
            for seed in seeds:
                if (name, routing, loss, seed) in done:
                    continue
                run = run_one(name, seed, loss, routing)
                with out.open("a", encoding="utf-8") as stream:
                    stream.write(json.dumps(run, sort_keys=True) + "\n")
                print(
                    f"{name} loss {loss} seed {seed} {routing}: "
                    f"{run['delivery_ratio']} p95 {run['latency_p95_s']} "
                    f"frames {run['transmissions']} by type {run['frames_by_type']} "
                    f"({run['wall_s']} s)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
