"""The `pigeon` command as a user runs it."""

import subprocess
import sys

from pigeon.cli import main


def test_selftest_passes(capsys: object) -> None:
    assert main(["selftest"]) == 0


def test_console_script_runs_selftest() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pigeon.cli", "selftest"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("0 failed")
