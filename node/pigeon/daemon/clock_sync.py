"""Whether the system clock is synchronized, as the kernel says (adjtimex, like `timedatectl`).

A Raspberry Pi 3, 4 or Zero 2 W has no real-time clock: after a power cut it boots at the time
systemd-timesyncd last saved (every 15 minutes in the image), so it runs behind by up to that
plus the outage until an uplink brings NTP. The kernel marks the clock unsynchronized
(STA_UNSYNC) until an NTP client steers it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable
from typing import Any, Final

_STA_UNSYNC: Final = 0x0040
_TIME_ERROR: Final = 5  # adjtimex's answer while the clock is unsynchronized


class _Timex(ctypes.Structure):
    """struct timex (linux/timex.h), read only: modes 0 changes nothing."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


@functools.cache
def _adjtimex() -> Callable[[Any], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    adjtimex: Callable[[Any], int] = ctypes.CDLL(name, use_errno=True).adjtimex
    return adjtimex


def system_clock_synchronized() -> bool:
    """True once an NTP client synchronized the clock; False before, or if it cannot be told."""
    adjtimex = _adjtimex()
    if adjtimex is None:
        return False
    timex = _Timex()
    state = adjtimex(ctypes.byref(timex))
    return state not in (-1, _TIME_ERROR) and not timex.status & _STA_UNSYNC
