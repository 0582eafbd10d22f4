"""Judge the read-only card test (image/read-only.sh) from its three boots' console logs.

Boot 1 (writable, then the card turns read-only under the running node), boot 2 (the card
attached read-only) and boot 3 (writable again) each print `CARD:` lines (image/guest-read-only.sh
and bench/image_card_guest.py). The test passes when:
- every boot finished (`DONE`) with the node active, never restarted, and its page answering;
- in boots 1 and 2 the node's status named the read-only card (on the page's status and in
  systemd's STATUS) and the API refused a new text with an error rather than storing it;
- in boot 3 the status named no problem and a new text was stored;
- every text acknowledged in any boot is there, once and whole, in every later reading.
Records the verdict in bench/results/image.json (`read_only_card`).
Usage: python3 bench/image_read_only_check.py LOG_DIR [SECONDS]
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

_LINE = re.compile(r"CARD: (.*?)\r?$")  # a login prompt can share the line
READ_ONLY_STATUS = "SD card read-only"  # systemd's STATUS on a read-only card


@dataclass(slots=True)
class Boot:
    """The CARD lines of one boot."""

    acked: list[str] = field(default_factory=list)
    have: dict[str, int] = field(default_factory=dict)  # whole texts by id
    torn: int = 0
    have_read: bool = False
    card: list[str] = field(default_factory=list)  # what each wait for the status saw
    card_after_s: list[int] = field(default_factory=list)
    refused: str | None = None
    node: str = ""
    status: str = ""
    page: str = ""
    failed_units: str = ""
    errors: list[str] = field(default_factory=list)
    done: bool = False


def parse_boot(text: str) -> Boot:
    """One boot's CARD lines."""
    boot = Boot()
    for raw in text.split("\n"):
        match = _LINE.search(raw)
        if match is None:
            continue
        word, _, rest = match.group(1).partition(" ")
        if word == "ACK":
            boot.acked.append(rest.split(" ")[1])
        elif word == "HAVE" and rest.startswith("T "):
            _, ident, count, state = rest.split(" ")
            if state == "whole":
                boot.have[ident] = int(count)
            else:
                boot.torn += 1
        elif word == "HAVE" and rest.startswith("ALL "):
            boot.have_read = True
        elif word == "CARD":
            parts = rest.split(" ")
            boot.card.append(rest)
            if len(parts) >= 2 and parts[-2] == "after":
                boot.card_after_s.append(int(parts[-1]))
        elif word == "REFUSED":
            boot.refused = rest
        elif word == "NODE":
            boot.node = rest
        elif word == "STATUS":
            boot.status = rest
        elif word == "PAGE":
            boot.page = rest
        elif word == "FAILED_UNITS":
            boot.failed_units = rest
        elif word == "ERROR":
            boot.errors.append(rest)
        elif word == "DONE":
            boot.done = True
    return boot


def judge(boots: list[Boot]) -> list[str]:
    """Every fault of the three boots (none: the test passed)."""
    if len(boots) != 3:
        return [f"{len(boots)} boots, not 3"]
    faults: list[str] = []
    stored: list[str] = []
    for number, boot in enumerate(boots, start=1):
        where = f"boot {number}"
        if not boot.done:
            faults.append(f"{where} did not finish")
        if boot.node != "active restarts=0":
            faults.append(f"{where}: node {boot.node or 'never reported'}")
        if boot.page not in ("200", "303"):
            faults.append(f"{where}: page answered {boot.page or 'nothing'}")
        faults.extend(f"{where}: {error}" for error in boot.errors)
        read_only = number in (1, 2)
        last = boot.card[-1] if boot.card else "nothing"
        said_read_only = "read-only" in last and not last.startswith("TIMEOUT")
        if (read_only and not said_read_only) or (not read_only and not last.startswith("none ")):
            faults.append(f"{where}: the page's status said {last}")
        if number == 1 and not (boot.card and boot.card[0].startswith("none ")):
            faults.append(f"{where}: a problem was named before the card turned read-only")
        if read_only:
            if READ_ONLY_STATUS not in boot.status:
                faults.append(f"{where}: systemd STATUS {boot.status!r}")
            if boot.refused is None:
                faults.append(f"{where}: a text was stored on the read-only card")
        elif boot.refused is not None:
            faults.append(f"{where}: refused a text: {boot.refused}")
        stored.extend(ident for ident in boot.acked if not ident.endswith("-refused"))
        if not boot.have_read:
            faults.append(f"{where}: the texts were not read back")
        for ident in stored:
            count = boot.have.get(ident, 0)
            if count != 1:
                faults.append(f"{where}: text {ident} stored {count} times")
        if boot.torn:
            faults.append(f"{where}: {boot.torn} torn texts")
    return faults


def main(argv: list[str]) -> int:
    """Judge LOG_DIR's boot-1..3 logs and record the verdict."""
    logs = Path(argv[0])
    boots = [
        parse_boot(path.read_text(errors="replace")) for path in sorted(logs.glob("boot-*.log"))
    ]
    faults = judge(boots)
    for fault in faults:
        print(f"FAULT {fault}")
    facts = {
        "passed": not faults,
        "faults": faults,
        "texts_acknowledged": sum(len(boot.acked) for boot in boots),
        "status_read_only_after_s": boots[0].card_after_s[-1:] if boots else [],
        "refused": [boot.refused for boot in boots[:2]],
        "systemd_status": [boot.status for boot in boots],
        "failed_units": [boot.failed_units for boot in boots],
        "seconds": int(argv[1]) if len(argv) > 1 else None,
    }
    print(json.dumps(facts, indent=1))
    from image_record import record  # beside this file (run as a script: bench/ on the path)

    record("read_only_card", facts)
    return 0 if not faults else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
