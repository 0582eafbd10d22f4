"""A throwaway PostgreSQL server from the system's packages: initdb and pg_ctl into a temporary
directory, listening only on a Unix socket there. Used by the relay's tests and benchmarks.

PostgreSQL refuses to run as root; as root the server runs as the `postgres` user that
Debian's package creates. Tests run it with fsync off: they kill relay processes and the
database's processes, never the machine, and what a killed process wrote stays in the page
cache; benchmarks keep fsync on, as a relay's database must.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 60


def postgres_bin_dir() -> Path | None:
    """Where initdb and pg_ctl are (Debian keeps them off PATH), or None if not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _version(path: str) -> int:
    part = Path(path).parent.parent.name
    return int(part) if part.isdigit() else 0


MISSING = (
    "PostgreSQL is not installed (no initdb/pg_ctl): `make test` as root installs Debian's "
    "postgresql package; else run `apt-get install postgresql`"
)


class PgServer:
    """One PostgreSQL cluster in a temporary directory, reached on a Unix socket."""

    def __init__(self, bin_dir: Path, *, fsync: bool = True) -> None:
        self._bin = bin_dir
        self._fsync = fsync
        self.root = Path(tempfile.mkdtemp(prefix="pigeon-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.log = self.root / "server.log"
        self._user: dict[str, Any] = {}
        self._databases = 0
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [str(self._bin / tool), *args],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.root,
            **self._user,
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-k {self.socket_dir} -c listen_addresses='' -c fsync={'on' if self._fsync else 'off'}"
            " -c max_connections=200 -c shared_buffers=64MB"
        )
        self._run(
            "pg_ctl", "start", "-w", "-t", str(START_TIMEOUT_S), "-D", str(self.data),
            "-l", str(self.log), "-o", options,
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` (clean) or `immediate` (like a crash: no checkpoint)."""
        self._run("pg_ctl", "stop", "-w", "-D", str(self.data), "-m", mode)

    def dsn(self, database: str = "postgres") -> str:
        """A postgresql:// URL of `database` over the Unix socket."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        self._databases += 1
        name = f"relay{self._databases}"
        subprocess.run(
            [str(self._bin / "createdb"), "-h", str(self.socket_dir), "-U", "postgres", name],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        return self.dsn(name)

    def destroy(self) -> None:
        """Stop the server if it runs and delete its directory."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
