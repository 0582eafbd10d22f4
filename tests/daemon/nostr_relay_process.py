"""A real Nostr relay (PyPI's nostr-relay) in its own process on loopback, for the gateway's
tests: started on a free port over a SQLite file that outlives a stop, so a restart keeps what
the relay stored, as a relay restarting in production does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path

READY_TIMEOUT_S = 60.0


class NostrRelayProcess:
    """`start`, `stop` (SIGTERM, as a service manager does), `kill` (SIGKILL to its process
    group, as a power cut or the OOM killer) and `url`."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self._process: asyncio.subprocess.Process | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "config.yaml"
        self.config.write_text(
            f"""
DEBUG: false
relay_name: pigeon-test
storage:
  sqlalchemy.url: sqlite+aiosqlite:///{directory / "relay.sqlite3"}
  num_concurrent_reqs: 4
  num_concurrent_adds: 1
  validators:
    - nostr_relay.validators.is_not_too_large
    - nostr_relay.validators.is_signed
    - nostr_relay.validators.is_recent
verification:
  nip05_verification: disabled
gunicorn:
  bind: 127.0.0.1:{port}
  workers: 1
  loglevel: warning
  reload: false
authentication:
  enabled: false
message_timeout: 1800
subscription_limit: 32
max_limit: 6000
"""
        )

    @property
    def url(self) -> str:
        """The relay's WebSocket URL."""
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Run the relay and wait until it takes connections."""
        script = Path(sys.executable).parent / "nostr-relay"
        self._process = await asyncio.create_subprocess_exec(
            str(script), "-c", str(self.config), "serve",
            cwd=self.directory,
            stdout=(self.directory / "relay.log").open("ab"),
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # its own process group: `kill` takes gunicorn's workers too
        )  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _listening(self.port):
            if self._process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nostr-relay did not start: see {self.directory}/relay.log")
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        """Stop the relay and wait until it is gone."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def kill(self) -> None:
        """SIGKILL the relay and its workers at once, and wait until its port is free."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while _listening(self.port):  # a worker may outlive the group leader for a moment
            if time.monotonic() > deadline:
                raise RuntimeError("nostr-relay's port is still taken after SIGKILL")
            await asyncio.sleep(0.1)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0
