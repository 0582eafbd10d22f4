"""Fixtures of the daemon tests: node configs on the simulated radio in tmp_path."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

WAIT_TIMEOUT_S = 60.0


async def wait_until(predicate: Callable[[], bool], timeout_s: float = WAIT_TIMEOUT_S) -> None:
    """Poll `predicate` until it holds; AssertionError after `timeout_s` (a failing test)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_node_config(directory: Path, extra: str = "") -> Path:
    """A node config: sim radio, PNG display, virtual buttons, data and web on loopback."""
    path = directory / "node.toml"
    path.write_text(
        f"""
[node]
name = "pigeon-test"
data_dir = "{directory / "data"}"
[radio]
kind = "sim"
[display]
kind = "png"
[buttons]
kind = "virtual"
[web]
host = "127.0.0.1"
https_port = {free_port()}
http_port = {free_port()}
{extra}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def node_config(tmp_path: Path) -> Path:
    """A config file for one node in `tmp_path`."""
    return write_node_config(tmp_path)
