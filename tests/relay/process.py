"""`pigeon relay` as a real subprocess: start it on a free port and learn its URL from its log."""

from __future__ import annotations

import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path

LISTENING = re.compile(r"relay listening on ([\d.]+):(\d+)")
START_TIMEOUT_S = 20.0


@dataclass
class RelayProcess:
    process: asyncio.subprocess.Process
    url: str
    http: str
    log: Path


async def launch_relay(data_dir: Path, log: Path, *extra: str) -> RelayProcess:
    """Start `pigeon relay --listen 127.0.0.1:0 --data DATA_DIR ...` and wait until it listens."""
    start = _size(log)
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pigeon.cli",
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--data",
            str(data_dir),
            *extra,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_S
    while loop.time() < deadline:
        text = _text(log, start)
        found = list(LISTENING.finditer(text))
        if found:
            host, port = found[-1].groups()
            return RelayProcess(process, f"ws://{host}:{port}/v1", f"http://{host}:{port}", log)
        if process.returncode is not None:
            break
        await asyncio.sleep(0.02)
    process.kill()
    await process.wait()
    raise AssertionError(f"relay did not start:\n{_text(log, start)[-2000:]}")


def _size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def _text(log: Path, start: int) -> str:
    return log.read_bytes()[start:].decode(errors="replace")
