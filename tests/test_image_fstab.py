"""The image's /etc/fstab, read from the Ansible task that writes it (no image is built).

Every mount but the root must be `nofail`: a slow or broken boot partition would otherwise drop
a headless node, whose root account is locked, into emergency mode for good. The emulation
tests' copy of the card waits for the boot partition instead (their scripts are on it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[1]
SYSTEM_TASKS = REPO / "ansible" / "roles" / "pigeon_node" / "tasks" / "system.yml"
EMULATION_FSTAB = REPO / "image" / "emulation-card.sh"
FIRSTBOOT_UNIT = REPO / "ansible" / "roles" / "pigeon_node" / "files" / "pigeon-firstboot.service"


class Mount(NamedTuple):
    source: str
    target: str
    kind: str
    options: tuple[str, ...]


def image_fstab_text() -> str:
    """The `content: |` block of the task that writes the image's /etc/fstab."""
    tasks = re.split(r"\n(?=- name: )", SYSTEM_TASKS.read_text())
    (task,) = [t for t in tasks if re.search(r"^\s+dest: /etc/fstab$", t, re.M)]
    lines = task.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "content: |") + 1
    indent = len(lines[start]) - len(lines[start].lstrip())
    block = []
    for line in lines[start:]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        block.append(line[indent:])
    return "\n".join(block) + "\n"


def mounts(fstab: str) -> list[Mount]:
    """The entries of an fstab text."""
    entries = []
    for line in fstab.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        source, target, kind, options, *_ = line.split()
        entries.append(Mount(source, target, kind, tuple(options.split(","))))
    return entries


def test_the_image_mounts_root_and_boot_partitions() -> None:
    targets = [m.target for m in mounts(image_fstab_text())]
    assert targets == ["/", "/boot/firmware"]


def test_every_mount_but_root_is_nofail() -> None:
    for mount in mounts(image_fstab_text()):
        assert "noatime" in mount.options, mount
        if mount.target == "/":
            assert "nofail" not in mount.options  # without its root the node is nothing
        else:
            assert "nofail" in mount.options, mount


def test_the_image_root_is_noatime_and_lazytime() -> None:
    root = {m.target: m for m in mounts(image_fstab_text())}["/"]
    assert {"noatime", "lazytime"} <= set(root.options)


def running_pi_edits() -> list[tuple[str, str]]:
    """(regexp, replace) of the tasks that edit a running Pi's own /etc/fstab, in order."""
    tasks = re.split(r"\n(?=- name: )", SYSTEM_TASKS.read_text())
    edits = []
    for task in tasks:
        if re.search(r"^\s+path: /etc/fstab$", task, re.M):
            regexp = re.search(r"^\s+regexp: '(.*)'$", task, re.M)
            replace = re.search(r"^\s+replace: '(.*)'$", task, re.M)
            assert regexp is not None, task
            assert replace is not None, task
            edits.append((regexp.group(1), replace.group(1)))
    return edits


def test_a_running_pi_root_gets_noatime_and_lazytime_once() -> None:
    fstab = (
        "proc            /proc           proc    defaults          0       0\n"
        "PARTUUID=ab-01  /boot/firmware  vfat    defaults          0       2\n"
        "PARTUUID=ab-02  /               ext4    defaults,noatime  0       1\n"
    )
    for _ in range(2):  # Ansible's replace: re.MULTILINE, all matches; a second run changes nothing
        for regexp, replace in running_pi_edits():
            fstab = re.compile(regexp, re.MULTILINE).sub(replace, fstab)
    by_target = {m.target: m for m in mounts(fstab)}
    assert by_target["/"].options == ("defaults", "noatime", "lazytime")
    assert by_target["/boot/firmware"].options == ("defaults",)


def test_first_boot_waits_for_the_boot_partition_it_reads() -> None:
    after = re.search(r"^After=(.*)$", FIRSTBOOT_UNIT.read_text(), re.M)
    assert after is not None
    assert "boot-firmware.mount" in after.group(1).split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_the_emulation_copy_waits_for_the_boot_partition(tmp_path: Path) -> None:
    fstab = tmp_path / "fstab"
    fstab.write_text(image_fstab_text())
    script = f'source "{EMULATION_FSTAB}" && sed -i "$SLOW_BOOT_PARTITION_SED" "{fstab}"'
    subprocess.run(["bash", "-c", script], check=True)
    boot = {m.target: m for m in mounts(fstab.read_text())}["/boot/firmware"]
    assert "nofail" not in boot.options
    assert "x-systemd.device-timeout=15min" in boot.options
    assert "noatime" in boot.options
