"""Judge the pulled-plug rounds (image/pulled-plugs.sh) from their serial-console logs.

Round N's log holds what the guest acknowledged before QEMU was killed (`PLUG: ACK T|E ID`) and,
from the boot after round N-1's kill, what the card held (`PLUG: HAVE T|E ID COUNT whole|torn`),
the integrity checks, the node's state and the failed units. A round is clean when the node came
up active by itself with no failed unit, both integrity checks said ok, and every item
acknowledged in any earlier round is there exactly once and whole. An ACK line cut off by the
kill (no line end) is not an acknowledgement. Records the totals in bench/results/image.json.
Usage: python3 bench/image_plug_ledger.py LOG_DIR [SECONDS]
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

_ACK = re.compile(r"^PLUG: ACK ([TE]) (\S+)\r?$")
_HAVE = re.compile(r"^PLUG: HAVE ([TE]) (\S+) (\d+) (whole|torn)\r?$")
_INTEGRITY = re.compile(r"^PLUG: INTEGRITY (relay|spool|vault) (.*?)\r?$")
_NODE = re.compile(r"^PLUG: NODE (\S+)")
_FAILED = re.compile(r"^PLUG: FAILED_UNITS \[(.*)\]")
_CHECKED = re.compile(r"^PLUG: CHECKED ")
_ENDED = re.compile(r"^PLUG: TRAFFIC ENDED")


@dataclass(frozen=True, slots=True)
class Boot:
    """What one boot's log says: its checks of the card, then what it acknowledged."""

    node: str | None
    checked: bool  # the boot got as far as listing the card's contents
    failed_units: str | None
    integrity: dict[str, str]
    have: dict[tuple[str, str], tuple[int, bool]]
    acked: list[tuple[str, str]]
    traffic_ended: bool = False  # the traffic stopped by itself (an error) before the kill


@dataclass(slots=True)
class Verdict:
    """The rounds judged: the acknowledged items the boots checked, and each fault, by boot."""

    rounds: int = 0
    acknowledged_texts: int = 0
    acknowledged_envelopes: int = 0
    lost: int = 0
    duplicated: int = 0
    torn: int = 0
    faults: list[str] = field(default_factory=list)


def parse_boot(text: str) -> Boot:
    """The PLUG lines of one boot's console log; lines not ended by a newline are ignored."""
    node = failed = None
    checked = ended = False
    integrity: dict[str, str] = {}
    have: dict[tuple[str, str], tuple[int, bool]] = {}
    acked: list[tuple[str, str]] = []
    for raw in text.split("\n")[:-1]:  # the last piece has no line end
        # The guest's lines share the console with getty's prompt: start at the marker.
        line = raw[raw.find("PLUG: ") :] if "PLUG: " in raw else raw
        if m := _ACK.match(line):
            acked.append((m[1], m[2]))
        elif m := _HAVE.match(line):
            have[(m[1], m[2])] = (int(m[3]), m[4] == "whole")
        elif m := _INTEGRITY.match(line):
            integrity[m[1]] = m[2]
        elif m := _NODE.match(line):
            node = m[1]
        elif m := _FAILED.match(line):
            failed = m[1].strip()
        elif _CHECKED.match(line):
            checked = True
        elif _ENDED.match(line):
            ended = True
    return Boot(node, checked, failed, integrity, have, acked, ended)


def judge(boots: list[Boot]) -> Verdict:
    """Every boot after the first against everything acknowledged before it."""
    verdict = Verdict(rounds=max(0, len(boots) - 1))
    acknowledged: set[tuple[str, str]] = set()
    checked: set[tuple[str, str]] = set()  # acknowledged before the last boot looked
    for number, boot in enumerate(boots, start=1):
        if number > 1:
            _check(number, boot, acknowledged, verdict)
        if boot.traffic_ended:
            verdict.faults.append(f"boot {number}: the traffic stopped before the power cut")
        checked = set(acknowledged)
        acknowledged.update(boot.acked)
    verdict.acknowledged_texts = sum(1 for kind, _ in checked if kind == "T")
    verdict.acknowledged_envelopes = sum(1 for kind, _ in checked if kind == "E")
    return verdict


def _check(number: int, boot: Boot, acknowledged: set[tuple[str, str]], verdict: Verdict) -> None:
    if boot.node != "active":
        verdict.faults.append(f"boot {number}: node {boot.node or 'never reported'}")
    if boot.failed_units:
        verdict.faults.append(f"boot {number}: failed units {boot.failed_units}")
    for store in ("relay", "spool", "vault"):
        if boot.integrity.get(store) != "ok":
            verdict.faults.append(f"boot {number}: {store} integrity {boot.integrity.get(store)}")
    for item in sorted(acknowledged):
        count, whole = boot.have.get(item, (0, True))
        if count == 0:
            verdict.lost += 1
            verdict.faults.append(f"boot {number}: lost {item[0]} {item[1]}")
        elif count > 1:
            verdict.duplicated += 1
            verdict.faults.append(f"boot {number}: {item[0]} {item[1]} stored {count} times")
        if count and not whole:
            verdict.torn += 1
            verdict.faults.append(f"boot {number}: {item[0]} {item[1]} half-written")


def main(argv: list[str]) -> int:
    """Judge LOG_DIR's rounds, print and record the verdict; exit 1 on any fault."""
    logs = sorted(Path(argv[0]).glob("round-*.log"))
    boots = [parse_boot(p.read_text(errors="replace")) for p in logs]
    if boots and not boots[-1].checked:
        boots.pop()  # a run cut short: its last boot never got to look at the card
    verdict = judge(boots)
    for fault in verdict.faults[:50]:
        print(fault)
    summary = {
        "rounds": verdict.rounds,
        "acknowledged_texts": verdict.acknowledged_texts,
        "acknowledged_envelopes": verdict.acknowledged_envelopes,
        "lost": verdict.lost,
        "duplicated": verdict.duplicated,
        "half_written": verdict.torn,
        "faults": len(verdict.faults),
    }
    if len(argv) > 1:
        summary["seconds"] = int(argv[1])
    print(json.dumps(summary))
    from image_record import record  # beside this file (run as a script: bench/ on the path)

    record("pulled_plugs", summary)
    return 1 if verdict.faults or verdict.rounds == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
