"""A full or read-only SD card: the node tells the owner, keeps relaying, and loses nothing stored.

The card is real where it can be without root: a tmpfs of 2 MiB inside a user and mount
namespace (`unshare -rm`) holds a real SQLCipher spool (tests/daemon/card_child.py)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pigeon.daemon.card import CARD_PROBLEMS, CardState, judge
from pigeon.daemon.mesh_driver import MeshDriver
from pigeon.daemon.status import NodeStatusBoard
from pigeon.mesh.router import Router, RouterConfig
from pigeon.store.errors import DiskFull, ReadOnlyStore, StoreError

CHILD = Path(__file__).with_name("card_child.py")


@pytest.fixture
def board() -> NodeStatusBoard:
    driver = MeshDriver(Router(RouterConfig(), random.Random(1)))
    return NodeStatusBoard("pigeon-test", "sim", "https://pigeon-test.local/", driver)


def namespaces_available() -> bool:
    """Whether `unshare -rm` (user and mount namespaces) works here."""
    unshare = shutil.which("unshare")
    return unshare is not None and subprocess.run([unshare, "-rm", "true"]).returncode == 0


@pytest.mark.skipif(
    not namespaces_available(), reason="no user and mount namespaces here (unshare -rm)"
)
def test_a_full_card_keeps_what_is_stored_and_relaying_goes_on(tmp_path: Path) -> None:
    done = subprocess.run(
        ["unshare", "-rm", sys.executable, str(CHILD), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    first, second = out["ids"]
    assert out["before"] == "ok"
    assert out["full"] == "full"
    assert out["stored_while_full"] == [first]  # what was stored stays; nothing half-written
    assert out["integrity_while_full"] == ["ok"]
    assert sorted(out["carried_while_full"]) == sorted([first, second])  # relayed from memory
    assert out["after"] == "ok"  # room again: the next persist saves what waited in memory
    assert sorted(out["stored_after"]) == sorted([first, second])
    assert out["probe_read_only"] == "read-only"
    assert out["idle_read_only"] == "read-only"  # an idle persist writes nothing, yet it is told


def test_the_card_state_comes_from_the_probe_and_the_write() -> None:
    assert judge(CardState.OK, None) is CardState.OK
    assert judge(CardState.OK, DiskFull("x")) is CardState.FULL
    assert judge(CardState.OK, ReadOnlyStore("x")) is CardState.READ_ONLY
    assert judge(CardState.FULL, None) is CardState.FULL
    assert judge(CardState.READ_ONLY, DiskFull("x")) is CardState.READ_ONLY
    assert judge(CardState.OK, StoreError("x")) is CardState.OK  # not the card's: raised


def test_the_board_tells_the_card_on_the_oled_the_page_and_status(board: NodeStatusBoard) -> None:
    assert board.note_card(CardState.READ_ONLY)
    assert board.view_state(0.0).error == CARD_PROBLEMS[CardState.READ_ONLY]
    assert board.status().card_problem == CARD_PROBLEMS[CardState.READ_ONLY]
    # First: systemd's STATUS is clipped to 200 characters, and the figures of both phones'
    # meshes (on in the image) ran past that and cut the card's problem off.
    assert board.summary().startswith("SD card read-only; ")
    assert not board.note_card(CardState.READ_ONLY)
    assert board.note_card(CardState.OK)
    assert board.view_state(0.0).error is None
    assert board.status().card_problem is None


def test_a_card_problem_does_not_hide_another_error(board: NodeStatusBoard) -> None:
    board.owner.error = "Reset failed: vault. Hold both buttons to retry."
    board.note_card(CardState.FULL)
    assert board.owner.error.startswith("Reset failed")
    assert board.status().card_problem == CARD_PROBLEMS[CardState.FULL]
    board.note_card(CardState.OK)
    assert board.owner.error.startswith("Reset failed")
