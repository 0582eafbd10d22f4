"""The `pigeon` command as a user runs it."""

import subprocess
import sys

import pytest

from pigeon.cli import COMMANDS, load, main


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


def _help(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pigeon.cli", *args, "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_top_help_says_what_each_subcommand_does() -> None:
    text = _help()
    assert "see `pigeon" not in text
    assert "implemented by the room" not in text
    for name, entry in COMMANDS.items():
        line = next(line for line in text.splitlines() if line.strip().startswith(name + " "))
        assert entry.summary.split()[0] in line, line


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_summary_is_the_modules_own_help(name: str) -> None:
    assert COMMANDS[name].summary == load(name).HELP


def test_demo_help_shows_the_defaults() -> None:
    text = " ".join(_help("demo").split())
    for default in ("build/demo", "8443", "8080", "8765"):
        assert f"(default: {default})" in text


def test_card_new_has_a_description() -> None:
    text = _help("card", "new")
    assert "throwaway identity" in text.lower()
    assert "secret key is forgotten" in text
