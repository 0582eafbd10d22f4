"""The clock counts as synchronized once systemd-timesyncd says so in this boot."""

from __future__ import annotations

from pathlib import Path

from pigeon.daemon.clock_sync import system_clock_synchronized


def test_synchronized_once_timesyncd_made_its_flag(tmp_path: Path) -> None:
    flag = tmp_path / "synchronized"
    assert not system_clock_synchronized(flag)
    flag.touch()
    assert system_clock_synchronized(flag)
