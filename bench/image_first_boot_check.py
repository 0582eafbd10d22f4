"""Judge the first-boot power-cut test (image/first-boot-plugs.sh) from its console logs.

Each killed boot's console says how far it got: the first-boot service (growing the root, SSH
host keys) starting and finishing, the node starting and active (READY). The last boot, never
killed, must come up by itself: the node active and never restarted, its self-test passing,
every SSH host key readable, no failed unit (`FIRSTBOOT:` lines from
image/guest-first-boot.sh). Records bench/results/image.json (`first_boot_plugs`).
Usage: python3 bench/image_first_boot_check.py LOG_DIR SECONDS KILL_S...
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

# In the order a first boot reaches them: systemd's console lines (names may be cut with "…";
# it stops writing them once the login prompt is up) and image/guest-first-boot.sh's markers.
STAGES = (
    ("first-boot service started", re.compile(r"Starting .*pigeon-firstb")),
    ("first-boot service done", re.compile(r"Finished .*pigeon-firstb|FIRSTBOOT: FIRSTBOOT_DONE")),
    ("node starting", re.compile(r"Starting .*pigeon-node")),
    ("node READY", re.compile(r"FIRSTBOOT: NODE_ACTIVE")),
)
_LINE = re.compile(r"FIRSTBOOT: (.*?)\r?$")


def reached(text: str) -> str:
    """The furthest stage a boot's console shows ("kernel" if none)."""
    furthest = "kernel"
    for name, pattern in STAGES:
        if pattern.search(text):
            furthest = name
    return furthest


def final_facts(text: str) -> dict[str, str]:
    """The last boot's FIRSTBOOT lines, by their first word."""
    facts: dict[str, str] = {}
    for raw in text.split("\n"):
        match = _LINE.search(raw)
        if match is not None:
            word, _, rest = match.group(1).partition(" ")
            if word not in ("KERNEL", "FSCK", "JOURNAL"):
                facts[word] = rest
    return facts


def judge(facts: dict[str, str]) -> list[str]:
    """Why the last boot did not come up by itself (none: it did)."""
    faults = []
    if "FINAL" not in facts:
        faults.append("the last boot did not finish its check")
    if facts.get("SERVICE") != "active restarts=0":
        faults.append(f"node: {facts.get('SERVICE', 'never reported')}")
    if not facts.get("SELFTEST", "").startswith("ok"):
        faults.append(f"self-test: {facts.get('SELFTEST', 'not run')}")
    if "broken" in facts.get("SSH_HOST_KEYS", "broken"):
        faults.append(f"SSH host keys: {facts.get('SSH_HOST_KEYS', 'not checked')}")
    if facts.get("FAILED_UNITS", "") != "[]":
        faults.append(f"failed units: {facts.get('FAILED_UNITS', 'not listed')}")
    return faults


def main(argv: list[str]) -> int:
    """Judge LOG_DIR's boots and record the verdict."""
    logs = sorted(Path(argv[0]).glob("boot-*.log"))
    texts = [path.read_text(errors="replace") for path in logs]
    killed = [
        {"killed_s": float(kill), "reached": reached(text)}
        for kill, text in zip(argv[2:], texts[:-1], strict=True)
    ]
    facts = final_facts(texts[-1]) if texts else {}
    faults = judge(facts)
    for fault in faults:
        print(f"FAULT {fault}")
    verdict = {
        "passed": not faults,
        "faults": faults,
        "killed_boots": killed,
        "last_boot": {key: facts[key] for key in ("SERVICE", "STATUS", "SELFTEST") if key in facts},
        "failed_units": facts.get("FAILED_UNITS"),
        "ssh_host_keys": facts.get("SSH_HOST_KEYS"),
        "seconds": int(argv[1]),
    }
    print(json.dumps(verdict, indent=1))
    from image_record import record  # beside this file (run as a script: bench/ on the path)

    record("first_boot_plugs", verdict)
    return 0 if not faults else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
