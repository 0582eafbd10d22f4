"""bench/image_read_only_check.py judges the read-only card test from its console logs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

CHECK = Path(__file__).resolve().parents[1] / "bench" / "image_read_only_check.py"
PROBLEM = "SD card read-only: new messages are not saved. Relaying from memory."
STATUS = "ready: 0 neighbours; SD card read-only"


@pytest.fixture(scope="module")
def check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("image_read_only_check", CHECK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["image_read_only_check"] = module
    spec.loader.exec_module(module)
    return module


def log(*lines: str) -> str:
    """A console log: kernel noise and the given CARD lines (CRLF, as a serial console)."""
    return "[    1.0] kernel\r\n" + "".join(f"CARD: {line}\r\n" for line in lines)


def have(*idents: str) -> tuple[str, ...]:
    return (*(f"HAVE T {ident} 1 whole" for ident in idents), f"HAVE ALL {len(idents)}")


def tail(status: str) -> tuple[str, ...]:
    return ("NODE active restarts=0", f"STATUS {status}", "PAGE 303", "FAILED_UNITS []", "DONE")


TEXTS = ("ro1-0", "ro1-1")
GOOD = (
    log(
        "BOOT phase=1",
        *(f"ACK T {ident}" for ident in TEXTS),
        "CARD none after 0",
        f"CARD {PROBLEM} after 41",
        "REFUSED 503 read-only; nothing was written",
        *have(*TEXTS),
        *tail(STATUS),
    ),
    log(f"CARD {PROBLEM} after 0", "REFUSED 503 read-only", *have(*TEXTS), *tail(STATUS)),
    log("CARD none after 0", "ACK T ro3-0", *have(*TEXTS, "ro3-0"), *tail("ready")),
)


def judge(check: ModuleType, logs: tuple[str, ...]) -> list[str]:
    faults: list[str] = check.judge([check.parse_boot(text) for text in logs])
    return faults


def test_three_good_boots_pass(check: ModuleType) -> None:
    assert judge(check, GOOD) == []


def test_a_text_stored_on_the_read_only_card_fails(check: ModuleType) -> None:
    stored = GOOD[1].replace("REFUSED 503 read-only", "ACK T ro2-refused")
    assert judge(check, (GOOD[0], stored, GOOD[2])) == [
        "boot 2: a text was stored on the read-only card"
    ]


def test_a_status_that_never_names_the_card_fails(check: ModuleType) -> None:
    silent = GOOD[0].replace(f"CARD {PROBLEM} after 41", "CARD TIMEOUT none")
    assert judge(check, (silent, *GOOD[1:])) == ["boot 1: the page's status said TIMEOUT none"]


def test_a_lost_or_doubled_text_fails(check: ModuleType) -> None:
    lost = GOOD[2].replace("HAVE T ro1-1 1 whole", "")
    doubled = GOOD[1].replace("HAVE T ro1-0 1 whole", "HAVE T ro1-0 2 whole")
    assert judge(check, (GOOD[0], doubled, lost)) == [
        "boot 2: text ro1-0 stored 2 times",
        "boot 3: text ro1-1 stored 0 times",
    ]


def test_a_restarted_node_or_an_unfinished_boot_fails(check: ModuleType) -> None:
    restarted = GOOD[1].replace("restarts=0", "restarts=1")
    unfinished = GOOD[2].replace("CARD: DONE\r\n", "")
    assert judge(check, (GOOD[0], restarted, unfinished)) == [
        "boot 2: node active restarts=1",
        "boot 3 did not finish",
    ]


def test_a_problem_named_on_the_writable_card_fails(check: ModuleType) -> None:
    wrong = GOOD[2].replace("CARD none after 0", f"CARD TIMEOUT {PROBLEM}")
    assert judge(check, (*GOOD[:2], wrong)) == [f"boot 3: the page's status said TIMEOUT {PROBLEM}"]
