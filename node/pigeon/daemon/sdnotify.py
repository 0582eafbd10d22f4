"""systemd's sd_notify protocol by hand: newline-separated `KEY=value` datagrams to NOTIFY_SOCKET.

systemd passes the socket path in `NOTIFY_SOCKET` (a leading "@" names a Linux abstract-namespace
socket) and, with `WatchdogSec=`, the watchdog period in `WATCHDOG_USEC` (for the process named by
`WATCHDOG_PID`, when set). Outside systemd both are absent and every call is a no-op, so the same
daemon runs under systemd, in a terminal and in tests. Send failures are logged, never raised:
a supervisor that cannot hear us restarts us, which is the right outcome anyway.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Final

_LOGGER = logging.getLogger(__name__)

MAX_STATUS_CHARS: Final = 200


def parse_socket_address(value: str) -> str | None:
    """The AF_UNIX address of a NOTIFY_SOCKET value ("@x" becomes "\\0x"); None if unusable."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # systemd also allows vsock addresses; a node never runs in a VM that needs them


def watchdog_interval_s(env: Mapping[str, str], pid: int) -> float | None:
    """Half of WATCHDOG_USEC in seconds when the watchdog is meant for `pid`; else None."""
    usec = env.get("WATCHDOG_USEC", "")
    target = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if target and (not target.isdigit() or int(target) != pid):
        return None
    return int(usec) / 1_000_000 / 2


def encode_message(fields: Mapping[str, str]) -> bytes:
    """`KEY=value` lines; raises ValueError for a newline in a value or a bad key."""
    lines = []
    for key, value in fields.items():
        if not key or not key.replace("_", "").isalnum() or not key.isupper():
            raise ValueError(f"invalid sd_notify key {key!r}")
        if "\n" in value:
            raise ValueError("sd_notify values are single lines")
        lines.append(f"{key}={value}")
    return "\n".join(lines).encode()


class Notifier:
    """Talks to the service manager; every method is a no-op when not run by systemd."""

    def __init__(self, env: Mapping[str, str] | None = None, pid: int | None = None) -> None:
        env = os.environ if env is None else env
        pid = os.getpid() if pid is None else pid
        raw = env.get("NOTIFY_SOCKET", "")
        self._address = parse_socket_address(raw) if raw else None
        if raw and self._address is None:
            _LOGGER.warning("NOTIFY_SOCKET is not a unix socket path; not notifying systemd")
        self.watchdog_interval_s = watchdog_interval_s(env, pid)
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """Whether a service manager listens."""
        return self._address is not None

    def ready(self, status: str) -> None:
        """Start-up finished: READY=1 with a STATUS line."""
        self.send({"READY": "1", "STATUS": _clip(status)})

    def status(self, status: str) -> None:
        """Replace the one-line status `systemctl status` shows."""
        self.send({"STATUS": _clip(status)})

    def watchdog(self) -> None:
        """The main loop is healthy: WATCHDOG=1."""
        self.send({"WATCHDOG": "1"})

    def stopping(self, status: str) -> None:
        """Shutdown began: STOPPING=1 with a STATUS line."""
        self.send({"STOPPING": "1", "STATUS": _clip(status)})

    def send(self, fields: Mapping[str, str]) -> None:
        """Send one datagram of `fields`; logs (never raises) when the manager cannot be reached."""
        if self._address is None:
            return
        message = encode_message(fields)
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto(message, self._address)
        except OSError as exc:
            _LOGGER.warning("cannot notify the service manager: %s", exc.strerror or exc)

    def close(self) -> None:
        """Release the socket; idempotent."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _clip(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line[:MAX_STATUS_CHARS]
