"""`pigeon sim` as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from pigeon.cli import main

REQUIRED = {
    "delivery_ratio",
    "latency_p50_s",
    "latency_p95_s",
    "first_contact_latency_p50_s",
    "first_contact_latency_p95_s",
    "ordinary_latency_p50_s",
    "transmissions",
    "transmissions_per_delivery",
    "duplicates_delivered",
    "peak_spool_envelopes",
    "wall_s",
}
SHORT = ["--scenario", "line", "--messages", "10", "--duration-s", "60", "--seed", "3"]


def test_json_has_the_promised_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", *SHORT, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result.keys() >= REQUIRED
    assert result["duplicates_delivered"] == 0
    assert result["messages"] == 10
    assert result["routing"] == "default"


def test_summary_is_readable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", *SHORT, "--routing", "flood", "--loss", "0"]) == 0
    out = capsys.readouterr().out
    assert "routing flood" in out
    assert "delivered" in out
    assert "duplicates delivered 0" in out


def test_a_scenario_file_and_its_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "pair.toml"
    good.write_text(
        'name = "pair"\nduration_s = 30\nmessages = 4\nsend_window_s = 10\npayload_bytes = 100\n'
        "message_lifetime_s = 600\narea_m = [20.0, 20.0]\n"
        '[[groups]]\nname = "phone"\ncount = 2\nplacement = "random"\n'
    )
    assert main(["sim", "--scenario", str(good), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["delivery_ratio"] > 0
    bad = tmp_path / "bad.toml"
    bad.write_text(good.read_text().replace("count = 2", "count = 2\ncolour = 3"))
    assert main(["sim", "--scenario", str(bad)]) == 2
    assert "groups[0].colour: unknown key" in capsys.readouterr().err
    assert main(["sim", "--scenario", str(tmp_path / "missing.toml")]) == 2
    assert "no scenario" in capsys.readouterr().err


def test_same_seed_same_json_across_processes() -> None:
    """Different hash seeds must not change anything (no iteration over sets of bytes/str)."""
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pigeon.cli",
                "sim",
                "--scenario",
                "churn",
                "--nodes",
                "12",
                "--duration-s",
                "300",
                "--messages",
                "15",
                "--seed",
                "5",
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        result = json.loads(done.stdout)
        result.pop("wall_s")
        outputs.append(result)
    assert outputs[0] == outputs[1]


def test_a_sweep_prints_a_table_per_policy_and_draws_both_curves(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plot = tmp_path / "line.svg"
    args = ["sim", *SHORT, "--sweep", "loss=0,0.2", "--seeds", "1-2", "--plot", str(plot)]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in out[2:]]
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("0", "default", "2"),
        ("0", "flood", "2"),
        ("0.2", "default", "2"),
        ("0.2", "flood", "2"),
    ]
    svg = ElementTree.fromstring(plot.read_text(encoding="utf-8"))
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 4  # two panels, two policies each
    assert all(len(line.get("points", "").split()) == 2 for line in lines)


@pytest.mark.parametrize(
    ("sweep", "seeds", "fault"),
    [
        ("speed=1,2", "1", "cannot be swept"),
        ("loss=", "1", "at least one value"),
        ("loss=0", "x-y", "--seeds"),
        ("loss=1.5", "1", "loss"),
    ],
)
def test_a_bad_sweep_is_named(
    capsys: pytest.CaptureFixture[str], sweep: str, seeds: str, fault: str
) -> None:
    assert main(["sim", *SHORT, "--sweep", sweep, "--seeds", seeds]) == 2
    assert fault in capsys.readouterr().err
