"""Fixtures of the daemon tests: node configs on the simulated radio in tmp_path."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest


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
