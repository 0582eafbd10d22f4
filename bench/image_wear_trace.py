"""Who writes to the card in an idle window: the kernel's own trace events, read in the guest.

bench/image_wear_guest.py turns these on for an idle window (`--trace`) when the guest kernel
has tracefs. /proc/PID/io misses the writes of processes that exited in the window and the
kernel's writeback of metadata (the ext4 journal's checkpoints), so the events say instead:
- block:block_rq_issue: each write request that reached the root partition, with the task that
  issued it (a flusher kworker, jbd2, or the process itself) and its bytes;
- ext4:ext4_mark_inode_dirty: which task changed which inode's on-disk metadata (each such
  change goes through the ext4 journal);
- ext4:ext4_da_write_begin / ext4_write_begin: buffered data written, by task and inode;
- ext4:ext4_sync_file_enter: fsync and fdatasync, by task and inode;
- jbd2:jbd2_run_stats: each journal commit and the blocks it logged;
- sched:sched_process_exec: the programs started in the window (timers, scripts).
The parsing is pure (`parse`); the tracefs switching and the inode-to-path lookup do the IO.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TRACEFS = Path("/sys/kernel/tracing")
SECTOR_BYTES = 512
EVENTS = (
    "block/block_rq_issue",
    "ext4/ext4_mark_inode_dirty",
    "ext4/ext4_da_write_begin",
    "ext4/ext4_write_begin",
    "ext4/ext4_sync_file_enter",
    "jbd2/jbd2_run_stats",
    "sched/sched_process_exec",
)
BUFFER_KB = 8192
TOP = 12  # entries kept per table in the summary

_HEADER = re.compile(
    r"^\s*(?P<comm>.+?)-(?P<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[\d+\]\s+(?:\S+\s+)?"
    r"(?P<ts>\d+\.\d+):\s+(?P<event>\w+):\s+(?P<body>.*)$"
)
_RQ = re.compile(r"^(\d+),(\d+) (\S+) \d+ \(.*?\) (\d+) \+ (\d+)")
_EXT4_INODE = re.compile(r"^dev (\d+),(\d+) ino (\d+)")
_RUN_STATS = re.compile(r"^dev (\d+),(\d+) tid \d+ .*blocks_logged (\d+)")
_EXEC = re.compile(r"^filename=(\S+)")


@dataclass(frozen=True, slots=True)
class Target:
    """The root partition: the whole disk's device number, its own, and its sectors."""

    disk: tuple[int, int]
    partition: tuple[int, int]
    first_sector: int
    sectors: int

    def holds(self, disk: tuple[int, int], sector: int) -> bool:
        """Whether a request to `disk` at `sector` falls in the root partition."""
        return disk == self.disk and self.first_sector <= sector < self.first_sector + self.sectors


@dataclass(slots=True)
class WindowTrace:
    """The events of one window, counted."""

    written_by: Counter[str] = field(default_factory=Counter)  # bytes, by issuing task
    write_requests: int = 0
    metadata: Counter[tuple[str, int]] = field(default_factory=Counter)  # (task, inode)
    data: Counter[tuple[str, int]] = field(default_factory=Counter)
    fsyncs: Counter[tuple[str, int]] = field(default_factory=Counter)
    commits: int = 0
    journal_blocks: int = 0
    execs: Counter[str] = field(default_factory=Counter)

    def inodes(self) -> set[int]:
        """Every inode the window names."""
        return {ino for table in (self.metadata, self.data, self.fsyncs) for _, ino in table}


def _task(comm: str) -> str:
    """A task's name without the per-instance parts (kworker/u4:2 -> kworker/u4)."""
    return comm.split(":")[0] if comm.startswith("kworker/") else comm


def parse(lines: Iterable[str], target: Target) -> WindowTrace:
    """Count the events of a tracefs `trace` listing that concern the root partition."""
    window = WindowTrace()
    inode_tables = {
        "ext4_mark_inode_dirty": window.metadata,
        "ext4_da_write_begin": window.data,
        "ext4_write_begin": window.data,
        "ext4_sync_file_enter": window.fsyncs,
    }
    for line in lines:
        header = _HEADER.match(line)
        if header is None:
            continue
        task, event, body = _task(header["comm"]), header["event"], header["body"]
        if event == "block_rq_issue" and (rq := _RQ.match(body)) is not None:
            disk = (int(rq[1]), int(rq[2]))
            writes = "W" in rq[3] or rq[3].startswith("N")  # N: write-zeroes (ext4lazyinit)
            if writes and target.holds(disk, int(rq[4])) and int(rq[5]) > 0:
                window.written_by[task] += int(rq[5]) * SECTOR_BYTES
                window.write_requests += 1
        elif event in inode_tables and (ext4 := _EXT4_INODE.match(body)) is not None:
            if (int(ext4[1]), int(ext4[2])) == target.partition:
                inode_tables[event][(task, int(ext4[3]))] += 1
        elif event == "jbd2_run_stats" and (stats := _RUN_STATS.match(body)) is not None:
            if (int(stats[1]), int(stats[2])) == target.partition:
                window.commits += 1
                window.journal_blocks += int(stats[3])
        elif event == "sched_process_exec" and (program := _EXEC.match(body)) is not None:
            window.execs[program[1]] += 1
    return window


def summary(window: WindowTrace, paths: dict[int, str]) -> dict[str, object]:
    """The window as JSON-ready tables, inodes named by `paths` where found."""

    def table(counts: Counter[tuple[str, int]]) -> dict[str, int]:
        top = counts.most_common(TOP)
        return {f"{task} {paths.get(ino, f'inode {ino}')}": n for (task, ino), n in top}

    return {
        "block_writes_bytes_by_task": dict(window.written_by.most_common(TOP)),
        "write_requests": window.write_requests,
        "journal_commits": window.commits,
        "journal_blocks_logged": window.journal_blocks,
        "inode_metadata_changes": table(window.metadata),
        "data_writes": table(window.data),
        "fsyncs": table(window.fsyncs),
        "programs_started": dict(window.execs.most_common(TOP)),
    }


def target_of(path: Path) -> Target:
    """The partition holding `path`, from sysfs."""
    dev = os.stat(path).st_dev
    block = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}").resolve()
    disk_devt = (block.parent / "dev").read_text().strip().split(":")
    return Target(
        disk=(int(disk_devt[0]), int(disk_devt[1])),
        partition=(os.major(dev), os.minor(dev)),
        first_sector=int((block / "start").read_text()),
        sectors=int((block / "size").read_text()),
    )


def available() -> bool:
    """Whether the kernel's trace events can be used here (mounting tracefs if needed)."""
    if not (TRACEFS / "events").is_dir():
        os.system(f"mount -t tracefs nodev {TRACEFS} 2>/dev/null")
    return all((TRACEFS / "events" / event / "enable").exists() for event in EVENTS[:3])


def start() -> None:
    """Clear the trace buffer and turn the events on."""
    (TRACEFS / "tracing_on").write_text("0")
    (TRACEFS / "buffer_size_kb").write_text(str(BUFFER_KB))
    (TRACEFS / "trace").write_text("")
    for event in EVENTS:
        enable = TRACEFS / "events" / event / "enable"
        if enable.exists():
            enable.write_text("1")
    (TRACEFS / "tracing_on").write_text("1")


def stop() -> list[str]:
    """Turn the events off and return the buffer's lines."""
    (TRACEFS / "tracing_on").write_text("0")
    for event in EVENTS:
        enable = TRACEFS / "events" / event / "enable"
        if enable.exists():
            enable.write_text("0")
    lines = (TRACEFS / "trace").read_text(errors="replace").splitlines()
    (TRACEFS / "trace").write_text("")
    return lines


def _same_device(path: Path, dev: int) -> bool:
    """Whether `path` is on device `dev` (False if it vanished)."""
    try:
        return os.lstat(path).st_dev == dev
    except OSError:
        return False


def paths_of(root: Path, inodes: set[int]) -> dict[int, str]:
    """Paths of `inodes` on `root`'s file system (one each); inodes not found are left out."""
    dev, found, wanted = os.stat(root).st_dev, {}, set(inodes)
    for directory, dirnames, filenames in os.walk(root):
        here = Path(directory)
        for name in dirnames + filenames:
            try:
                st = os.lstat(here / name)
            except OSError:
                continue
            if st.st_ino in wanted and st.st_dev == dev:
                found[st.st_ino] = str(here / name)
                wanted.discard(st.st_ino)
        dirnames[:] = [d for d in dirnames if _same_device(here / d, dev)]
        if not wanted:
            break
    if os.stat(root).st_ino in wanted:
        found[os.stat(root).st_ino] = str(root)
    return found
