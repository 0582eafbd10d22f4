"""Whether the system clock is synchronized: systemd-timesyncd's word on it.

A Raspberry Pi 3, 4 or Zero 2 W has no real-time clock: after a power cut it boots at the time
systemd-timesyncd last saved (every 15 minutes in the image), so it runs behind by up to that
plus the outage until an uplink brings NTP. timesyncd creates `/run/systemd/timesync/synchronized`
once it has synchronized the clock in this boot (`/run` is emptied at each boot).

Not the kernel's own state (adjtimex, as `timedatectl` reads it): the node's unit has
`ProtectClock=yes`, whose seccomp filter kills the process on `clock_adjtime`, even one that only
reads; `make image-read-only` caught a node restarting in a loop on SIGSYS that way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

TIMESYNCD_SYNCHRONIZED: Final = Path("/run/systemd/timesync/synchronized")


def system_clock_synchronized(flag: Path = TIMESYNCD_SYNCHRONIZED) -> bool:
    """True once systemd-timesyncd synchronized the clock in this boot; False before, or on a
    machine without it (the node then leaves freshness to the phones, which is safe)."""
    return flag.exists()
