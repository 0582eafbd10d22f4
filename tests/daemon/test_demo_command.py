"""`pigeon demo` (what `make run` starts): it prints the page, the pairing code and Robin's card,
and Ctrl-C stops it cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import free_port

BANNER_TIMEOUT_S = 60.0


def test_demo_greets_then_stops_on_ctrl_c(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "pigeon.cli", "demo", "--data", str(tmp_path / "demo"),
        "--https-port", str(free_port()), "--http-port", str(free_port()),
        "--relay-port", str(free_port()),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + BANNER_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline().decode()
            lines.append(line)
            if "Ctrl-C stops everything" in line or not line:
                break
        text = "".join(lines)
        assert "https://localhost:" in text, text
        assert re.search(r"^\s+\d{6}\s+\(valid for 2 minutes", text, re.MULTILINE)
        assert "PIGEON:" in text
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert b"demo stopped" in rest
