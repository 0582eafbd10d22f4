"""bench/image_wear_trace.py counts the trace events of an idle window on the root partition."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

TRACE = Path(__file__).resolve().parents[1] / "bench" / "image_wear_trace.py"
ROOT_START, ROOT_SECTORS = 526336, 3000000


@pytest.fixture(scope="module")
def trace() -> ModuleType:
    spec = importlib.util.spec_from_file_location("image_wear_trace", TRACE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["image_wear_trace"] = module
    spec.loader.exec_module(module)
    return module


def target(trace: ModuleType) -> object:
    return trace.Target((254, 0), (254, 2), ROOT_START, ROOT_SECTORS)


def request(comm: str, rwbs: str, sector: int, sectors: int, disk: str = "254,0") -> str:
    """A block_rq_issue line as tracefs prints it."""
    return (
        f"     {comm}-55     [000] .....   100.300000: block_rq_issue: "
        f"{disk} {rwbs} {sectors * 512} () {sector} + {sectors} [{comm}]"
    )


def test_a_window_is_told_by_task_and_file(trace: ModuleType) -> None:
    lines = [
        "# tracer: nop",
        "#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION",
        " systemd-timesyn-301     [001] .....   100.123456: ext4_mark_inode_dirty: "
        "dev 254,2 ino 1234 caller ext4_setattr+0x1d0/0x8a0",
        " systemd-timesyn-301     [001] .....   100.123457: ext4_mark_inode_dirty: "
        "dev 254,1 ino 99 caller ext4_setattr+0x1d0/0x8a0",
        "          pigeon-700     [000] .....   100.2: ext4_sync_file_enter: "
        "dev 254,2 ino 77 parent 12 datasync 0",
        "          pigeon-700     [000] .....   100.2: ext4_da_write_begin: "
        "dev 254,2 ino 77 pos 4096 len 1024",
        request("jbd2/vda2-8", "WS", ROOT_START + 1000, 24),
        request("kworker/u4:2", "W", ROOT_START + 5, 8),
        request("kworker/u4:3", "W", ROOT_START + 9, 8),
        "     jbd2/vda2-8-123     [000] .....   100.4: jbd2_run_stats: dev 254,2 tid 55 wait 0 "
        "request_delay 0 running 5000 locked 0 flushing 0 logging 10 handle_count 2 blocks 1 "
        "blocks_logged 3",
        "              sh-900     [001] .....   101.0: sched_process_exec: "
        "filename=/usr/lib/apt/apt.systemd.daily pid=900 old_pid=900",
    ]
    window = trace.parse(lines, target(trace))
    summary = trace.summary(window, {1234: "/var/lib/systemd/timesync/clock"})
    assert summary["block_writes_bytes_by_task"] == {"jbd2/vda2-8": 12288, "kworker/u4": 8192}
    assert summary["write_requests"] == 3
    assert (summary["journal_commits"], summary["journal_blocks_logged"]) == (1, 3)
    assert summary["inode_metadata_changes"] == {
        "systemd-timesyn /var/lib/systemd/timesync/clock": 1
    }
    assert summary["data_writes"] == {"pigeon inode 77": 1}
    assert summary["fsyncs"] == {"pigeon inode 77": 1}
    assert summary["programs_started"] == {"/usr/lib/apt/apt.systemd.daily": 1}
    assert window.inodes() == {1234, 77}


requests = st.lists(
    st.tuples(
        st.sampled_from(["W", "WS", "WM", "WFS", "FWS", "N", "R", "RA", "D", "FF"]),
        st.integers(min_value=0, max_value=ROOT_START + ROOT_SECTORS + 100),
        st.integers(min_value=0, max_value=256),
        st.sampled_from(["254,0", "254,16"]),
    ),
    max_size=30,
)


@given(requests)
def test_only_writes_to_the_root_partition_are_counted(
    trace: ModuleType, reqs: list[tuple[str, int, int, str]]
) -> None:
    lines = [request("kworker/u4:1", rwbs, sector, n, disk) for rwbs, sector, n, disk in reqs]
    expected = [
        n * 512
        for rwbs, sector, n, disk in reqs
        if ("W" in rwbs or rwbs == "N")
        and disk == "254,0"
        and ROOT_START <= sector < ROOT_START + ROOT_SECTORS
        and n > 0
    ]
    window = trace.parse(lines, target(trace))
    assert sum(window.written_by.values()) == sum(expected)
    assert window.write_requests == len(expected)
