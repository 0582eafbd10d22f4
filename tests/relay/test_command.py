"""`pigeon relay` as an operator runs it: flags over the file, clean stop on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from pigeon.crypto.signing import SigningKey
from pigeon.relay.protocol import Stored
from tests.relay.process import launch_relay
from tests.relay.rawclient import RawClient

ROOT = Path(__file__).resolve().parents[2]


async def test_relay_starts_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    relay = await launch_relay(
        data, tmp_path / "relay.log", "--config", str(ROOT / "config" / "relay.toml")
    )
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{relay.http}/healthz") as response,
    ):
        assert response.status == 200
    client = await RawClient.connect(relay.url)
    assert isinstance(await client.deposit(SigningKey.generate().public_key, b"x"), Stored)
    await client.close()
    relay.process.send_signal(signal.SIGTERM)
    assert await relay.process.wait() == 0
    assert (data / "relay.sqlite3").exists()
    assert "relay stopped" in relay.log.read_text()


def run_relay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pigeon.cli", "relay", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bad_config_exits_2_naming_the_option(tmp_path: Path) -> None:
    config = tmp_path / "relay.toml"
    config.write_text("[limits]\nmax_envelope_byte = 5\n")
    result = run_relay("--config", str(config))
    assert result.returncode == 2
    assert "limits.max_envelope_byte" in result.stderr


def test_bad_listen_flag_exits_2() -> None:
    result = run_relay("--listen", "nowhere")
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr


def test_unusable_data_dir_exits_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_relay("--listen", "127.0.0.1:0", "--data", str(blocker / "data"))
    assert result.returncode == 1
    assert "cannot start" in result.stderr
