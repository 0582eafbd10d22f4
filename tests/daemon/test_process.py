"""`pigeon node` as a real process: READY and watchdog pings to a fake NOTIFY_SOCKET, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pigeon.store.keeper import DataDir, open_spool

START_TIMEOUT_S = 30.0


def _messages(sock: socket.socket, until: float) -> Iterator[dict[str, str]]:
    while time.monotonic() < until:
        sock.settimeout(max(0.01, until - time.monotonic()))
        try:
            data = sock.recv(4096)
        except TimeoutError:
            return
        yield dict(line.split("=", 1) for line in data.decode().splitlines())


def _start(config: Path, notify_address: str, watchdog_usec: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(NOTIFY_SOCKET=notify_address, WATCHDOG_USEC=str(watchdog_usec))
    env.pop("WATCHDOG_PID", None)
    return subprocess.Popen(
        [sys.executable, "-m", "pigeon.cli", "node", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    yield sock, str(path)
    sock.close()


@pytest.fixture
def abstract_notify_socket() -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"pigeon-test-{os.getpid()}-{time.monotonic_ns()}"
    sock.bind("\0" + name)
    yield sock, "@" + name
    sock.close()


def _run_until_ready_and_pinged(
    config: Path, sock: socket.socket, address: str
) -> tuple[subprocess.Popen[bytes], list[dict[str, str]]]:
    process = _start(config, address, watchdog_usec=400_000)  # pings every 0.2 s
    seen: list[dict[str, str]] = []
    deadline = time.monotonic() + START_TIMEOUT_S
    for message in _messages(sock, deadline):
        seen.append(message)
        ready = any(m.get("READY") == "1" for m in seen)
        pings_after_ready = (
            sum(
                1
                for m in seen[next(i for i, m in enumerate(seen) if m.get("READY") == "1") :]
                if m.get("WATCHDOG") == "1"
            )
            if ready
            else 0
        )
        if pings_after_ready >= 3:
            break
    return process, seen


def test_ready_watchdog_and_clean_sigterm(
    node_config: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, address = notify_socket
    process, seen = _run_until_ready_and_pinged(node_config, sock, address)
    try:
        ready = [m for m in seen if m.get("READY") == "1"]
        assert ready, f"no READY=1 among {seen}; output: {process.stdout}"
        assert "ready" in ready[0]["STATUS"]
        assert sum(1 for m in seen if m.get("WATCHDOG") == "1") >= 3
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output.decode(errors="replace")
    stopping = [m for m in _messages(sock, time.monotonic() + 0.5) if m.get("STOPPING") == "1"]
    assert stopping
    assert stopping[0]["STATUS"] == "stopped on request"
    assert b"stores flushed and closed" in output
    # The seen-cache was saved at shutdown: the spool opens and holds it.
    spool = open_spool(DataDir(node_config.parent / "data"))
    try:
        assert spool.seen_cache() is not None
        assert spool.integrity_check() == ["ok"]
    finally:
        spool.close()


def test_abstract_namespace_notify_socket_and_sigint(
    node_config: Path, abstract_notify_socket: tuple[socket.socket, str]
) -> None:
    sock, address = abstract_notify_socket
    process, seen = _run_until_ready_and_pinged(node_config, sock, address)
    try:
        assert any(m.get("READY") == "1" for m in seen)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output.decode(errors="replace")


def test_second_start_reuses_the_data_dir(
    node_config: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, address = notify_socket
    keys = []
    for _ in range(2):
        process, _seen = _run_until_ready_and_pinged(node_config, sock, address)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
        assert process.returncode == 0, output.decode(errors="replace")
        keys.append((node_config.parent / "data" / "device.key").read_bytes())
        assert b"first start" in output if len(keys) == 1 else b"first start" not in output
    assert keys[0] == keys[1]
    assert (node_config.parent / "data" / "vault.autounlock").stat().st_mode & 0o077 == 0


def test_bad_config_is_refused_with_the_key(tmp_path: Path) -> None:
    config = tmp_path / "node.toml"
    config.write_text('[radio]\nkind = "lora"\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pigeon.cli", "node", "--config", str(config)],
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert b"radio.kind" in result.stderr
