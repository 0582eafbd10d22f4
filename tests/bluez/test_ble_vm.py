"""Real BlueZ tier: two Pigeon BLE transports in a QEMU VM (`make test-bluez`, root needed).

One VM boot runs tests/bluez/guest-ble.sh: node A on hci0 and node B on hci1 (two btvirt LE
controllers under a real bluetoothd 5.66) link on an L2CAP channel, exchange mesh envelopes and
receipts both ways, test the frame boundary, move 2.1 MB each way whole and in order, survive a
bluetoothd SIGKILL and restart, and pass the transport conformance check; then a node on hci2
(a third btvirt controller) with one link slot gives it to a neighbour on hci1 although a
silent central on hci0 holds it, and cuts and bans a central on hci0 that writes junk
(tests/bluez/guest_slots.py); then a node on hci2 relays the Pigeon app's packets between two
scripted app phones on hci0 and hci1, both ways, unchanged but for the TTL, in fragments of the
app's sizes (tests/bluez/guest_app.py); then the node relays bitchat's public chat between two
PyPI `bitchat-cli` clients on hci0 and hci1 and dials a scripted bitchat phone
(tests/bluez/guest_bitchat.py); then a hub on hci3 linked to nodes on hci0-2 sends texts beside
two bulk transfers, and each text must arrive (tests/bluez/guest_fairness.py); a last step fails
if any bluetoothd ended other than by that SIGKILL (bluetoothd runs as
config/bluetooth-pigeon.conf starts it on a Pi). All steps share one bluetoothd: one that dies is
recorded in the step it died in or before (results.json: bluetoothd_died, with its status, core
and log lines), started again with the controllers anew, and a self-contained step it broke is
run once more; so one crash fails that last step, not every step after it. Each step is one
test here; the goodput figures are copied to bench/results/ble.json. The guest's logs, dmesg
and any core file stay in build/bluez-vm/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
RIG = REPO / "tests" / "bluez"
OUT_DIR = REPO / "build" / "bluez-vm"
STEPS = (
    "two nodes link up",
    "envelopes and receipts both ways",
    "frame boundary at the link's limit",
    "throughput A->B",
    "throughput B->A",
    "a stalled reader loses nothing",
    "reconnect after bluetoothd restart",
    "packets after restart",
    "transport conformance check",
    "slots: an idle central cannot keep a neighbour out",
    "slots: a junk-writing central is cut and backed off",
    "app peers link through a node",
    "app packets cross a node both ways",
    "app transport conformance check (links it dials)",
    "bitchat clients link through a node",
    "bitchat public messages cross a node both ways",
    "bitchat: the node hears both and the owner's post reaches both",
    "bitchat: the node dials a bitchat phone",
    "fairness: texts on one link beside bulk transfers on two others",
    "air: one link's frames cost the air of one link, on a channel",
    "bluetoothd never crashed",
)

pytestmark = [pytest.mark.bluez, pytest.mark.timeout(2100)]


@pytest.fixture(scope="module")
def vm_results() -> dict[str, dict[str, Any]]:
    if not (RIG / "cache" / "root.img").exists():
        pytest.fail("no VM root filesystem: run `make test-bluez` (it builds one)")
    out = OUT_DIR  # kept after the run: guest.log, bluetoothd.log, console.log, results.json
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run = subprocess.run(
        ["bash", str(RIG / "run-vm.sh"), "tests/bluez/guest-ble.sh", str(out)],
        cwd=REPO,
        timeout=2000,
        check=False,
        # every step, the link slots', the app's and bitchat's included, under software
        # emulation: more than run-vm.sh's default 600 s for one guest script
        env={**os.environ, "VM_TIMEOUT_S": "1800"},
    )
    log = out / "guest.log"
    print(f"VM exit status {run.returncode}; guest log: {log}")
    results_file = out / "results.json"
    if not results_file.exists():
        pytest.fail(f"the guest wrote no results (exit {run.returncode}); see {out}")
    if (out / "ble.json").exists():
        target = REPO / "bench" / "results" / "ble.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "ble.json", target)
    return {step["name"]: step for step in json.loads(results_file.read_text())}


@pytest.mark.parametrize("name", STEPS)
def test_step(vm_results: dict[str, dict[str, Any]], name: str) -> None:
    step = vm_results.get(name)
    assert step is not None, f"the guest did not reach step {name!r}"
    for key in ("bluetoothd_died_before", "bluetoothd_died"):  # recovered from; the last step fails
        if key in step:
            print(f"!! {name}: {key.replace('_', ' ')}: {step[key]}")
    if "first_attempt" in step:
        first = step["first_attempt"]
        print(f"!! {name}: rerun once, bluetoothd died in its first attempt: {first}")
    assert step["ok"], step["detail"]
    print(f"{name}: {step['detail']} ({step['seconds']} s)")
