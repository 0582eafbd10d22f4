"""The kernel's word on the clock (adjtimex), read without changing anything."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from pigeon.daemon import clock_sync


def test_the_real_call_answers_without_changing_the_clock() -> None:
    assert isinstance(clock_sync.system_clock_synchronized(), bool)


@pytest.mark.parametrize(
    ("state", "status", "synchronized"),
    [(0, 0x2001, True), (0, 0x0040, False), (5, 0x0040, False), (-1, 0, False)],
)
def test_synchronized_only_when_the_kernel_says_so(
    monkeypatch: pytest.MonkeyPatch, state: int, status: int, synchronized: bool
) -> None:
    def adjtimex(pointer: Any) -> int:
        timex = ctypes.cast(pointer, ctypes.POINTER(clock_sync._Timex)).contents
        assert timex.modes == 0  # reads only
        timex.status = status
        return state

    monkeypatch.setattr(clock_sync, "_adjtimex", lambda: adjtimex)
    assert clock_sync.system_clock_synchronized() is synchronized


def test_no_c_library_means_not_synchronized(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock_sync, "_adjtimex", lambda: None)
    assert not clock_sync.system_clock_synchronized()
