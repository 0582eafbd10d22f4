"""A node that boots on a card already read-only comes up anyway, says so, and writes nothing.

A whole node on a tmpfs remounted read-only inside a user and mount namespace (`unshare -rm`),
in tests/daemon/read_only_start_child.py: real SQLCipher vault and spool, real web page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pigeon.daemon.card import CARD_PROBLEMS, CardState

from .test_card import namespaces_available

CHILD = "tests.daemon.read_only_start_child"
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not namespaces_available(), reason="no user and mount namespaces (unshare)")
def test_a_node_on_a_read_only_card_starts_relays_and_writes_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        ["unshare", "-rm", sys.executable, "-m", CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.splitlines()[-1])
    problem = CARD_PROBLEMS[CardState.READ_ONLY]
    assert out["card_problem"] == problem  # the page's status, from the start
    assert out["oled_error"] == problem
    assert "SD card read-only" in out["summary"]  # systemd's STATUS
    assert out["page"] in (200, 303)  # the page answers
    assert not out["locked"]  # the device-bound vault opened: the owner reads the history
    assert out["texts"] == ["stored before the card locked"]
    assert out["send"] == "StorageFailed"  # a new text is refused, and the page says why
    assert out["relaying_from_memory"]
    assert not any(out["failures"].values()), out["failures"]  # no part fails on the card
    assert out["exit"] == 0, out["stop_reason"]
    assert out["unchanged"]  # not a byte written to the card
