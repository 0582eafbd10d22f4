"""bench/image_plug_ledger.py judges the pulled-plug rounds from their console logs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

LEDGER = Path(__file__).resolve().parents[1] / "bench" / "image_plug_ledger.py"


@pytest.fixture(scope="module")
def ledger() -> ModuleType:
    spec = importlib.util.spec_from_file_location("image_plug_ledger", LEDGER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["image_plug_ledger"] = module
    spec.loader.exec_module(module)
    return module


def boot(*lines: str, cut: str = "") -> str:
    """A console log: kernel noise, the given PLUG lines (CRLF, as a serial console), `cut`."""
    return "[    1.0] kernel\r\n" + "".join(f"PLUG: {line}\r\n" for line in lines) + cut


GOOD_CHECKS = (
    "CHECKED 0 texts 0 envelopes",
    "NODE active uptime=9",
    "FAILED_UNITS []",
    "INTEGRITY relay ok",
    "INTEGRITY spool ok",
    "INTEGRITY vault ok",
)


def test_every_acknowledged_item_found_once_and_whole_is_clean(ledger: ModuleType) -> None:
    first = boot(*GOOD_CHECKS, "ACK T b1-0", "ACK E aa", cut="PLUG: ACK E b")
    second = boot(*GOOD_CHECKS, "HAVE T b1-0 1 whole", "HAVE E aa 1 whole", "ACK T b2-0")
    third = boot(*GOOD_CHECKS, "HAVE T b1-0 1 whole", "HAVE E aa 1 whole", "HAVE T b2-0 1 whole")
    verdict = ledger.judge([ledger.parse_boot(t) for t in (first, second, third)])
    assert verdict.faults == []
    assert (verdict.rounds, verdict.acknowledged_texts, verdict.acknowledged_envelopes) == (2, 2, 1)


def test_a_lost_a_doubled_and_a_torn_item_are_each_faults(ledger: ModuleType) -> None:
    first = boot(*GOOD_CHECKS, "ACK T b1-0", "ACK T b1-1", "ACK E aa")
    second = boot(*GOOD_CHECKS, "HAVE T b1-0 2 whole", "HAVE E aa 1 torn")
    verdict = ledger.judge([ledger.parse_boot(first), ledger.parse_boot(second)])
    assert (verdict.lost, verdict.duplicated, verdict.torn) == (1, 1, 1)


def test_a_node_that_never_came_up_or_a_damaged_store_is_a_fault(ledger: ModuleType) -> None:
    first = boot(*GOOD_CHECKS)
    second = boot(
        "NODE activating uptime=900",
        "INTEGRITY relay ok",
        "INTEGRITY vault ok",
        "INTEGRITY spool page 3",
    )
    verdict = ledger.judge([ledger.parse_boot(first), ledger.parse_boot(second)])
    assert len(verdict.faults) == 2


def test_a_store_whose_check_never_ran_is_a_fault(ledger: ModuleType) -> None:
    checks = tuple(line for line in GOOD_CHECKS if line != "INTEGRITY relay ok")
    verdict = ledger.judge(
        [ledger.parse_boot(boot(*GOOD_CHECKS)), ledger.parse_boot(boot(*checks))]
    )
    assert verdict.faults == ["boot 2: relay integrity None"]


def test_a_line_after_the_login_prompt_still_counts(ledger: ModuleType) -> None:
    parsed = ledger.parse_boot("pigeon-c112 login: PLUG: NODE active uptime=211.95\r\n")
    assert parsed.node == "active"


def test_an_ack_cut_off_by_the_kill_is_no_acknowledgement(ledger: ModuleType) -> None:
    parsed = ledger.parse_boot(boot("ACK T b1-0", cut="PLUG: ACK T b1-1"))
    assert parsed.acked == [("T", "b1-0")]


def test_traffic_that_stopped_by_itself_is_a_fault(ledger: ModuleType) -> None:
    first = boot(*GOOD_CHECKS, "ACK T b1-0", "TRAFFIC ENDED: it runs until the host kills it")
    second = boot(*GOOD_CHECKS, "HAVE T b1-0 1 whole")
    verdict = ledger.judge([ledger.parse_boot(first), ledger.parse_boot(second)])
    assert verdict.faults == ["boot 1: the traffic stopped before the power cut"]
