"""bench/image_first_boot_check.py judges the first-boot power-cut test from its console logs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

CHECK = Path(__file__).resolve().parents[1] / "bench" / "image_first_boot_check.py"


@pytest.fixture(scope="module")
def check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("image_first_boot_check", CHECK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["image_first_boot_check"] = module
    spec.loader.exec_module(module)
    return module


def last_boot(*lines: str) -> str:
    return "[    1.0] kernel\r\n" + "".join(f"FIRSTBOOT: {line}\r\n" for line in lines)


GOOD = (
    "BOOT uptime=30.1 root=rw",
    "SERVICE active restarts=0",
    "STATUS ready: 0 neighbours",
    "SELFTEST ok 8 passed, 0 failed",
    "SSH_HOST_KEYS       3 ok ",
    "FAILED_UNITS []",
    "FINAL",
)


def test_how_far_a_killed_boot_got_comes_from_systemds_lines(check: ModuleType) -> None:
    assert check.reached("[    2.1] Booting Linux\r\n") == "kernel"
    started = "         Starting \x1b[0;1;39mpigeon-firstboot.service\x1b[0m - First boot...\r\n"
    assert check.reached(started) == "first-boot service started"
    done = started + "[  OK  ] Finished \x1b[0;1;39mpigeon-firstb…\x1b[0m - First boot\r\n"
    assert check.reached(done) == "first-boot service done"
    node = done + "         Starting \x1b[0;1;39mpigeon-node.service\x1b[0m - Pigeon Node...\r\n"
    assert check.reached(node) == "node starting"
    assert check.reached(node + "login: FIRSTBOOT: NODE_ACTIVE uptime=62.4\r\n") == "node READY"


def test_a_last_boot_that_came_up_by_itself_passes(check: ModuleType) -> None:
    assert check.judge(check.final_facts(last_boot(*GOOD))) == []


@pytest.mark.parametrize(
    ("replace", "by", "fault"),
    [
        ("SERVICE active restarts=0", "SERVICE activating 3 ", "node: activating 3 "),
        ("SELFTEST ok 8 passed, 0 failed", "SELFTEST failed vault", "self-test: failed vault"),
        ("FAILED_UNITS []", "FAILED_UNITS [ssh.service ]", "failed units: [ssh.service ]"),
        ("FINAL", "", "the last boot did not finish its check"),
        (
            "SSH_HOST_KEYS       3 ok ",
            "SSH_HOST_KEYS 1 broken:/etc/ssh/ssh_host_rsa_key 2 ok",
            "SSH host keys: 1 broken:/etc/ssh/ssh_host_rsa_key 2 ok",
        ),
    ],
)
def test_a_last_boot_that_needs_its_owner_fails(
    check: ModuleType, replace: str, by: str, fault: str
) -> None:
    lines = [by if line == replace else line for line in GOOD]
    assert check.judge(check.final_facts(last_boot(*lines))) == [fault]
