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


def test_listening_on_every_address_without_public_urls_exits_2(tmp_path: Path) -> None:
    for listen in ("0.0.0.0:0", "[::]:0"):
        result = run_relay("--listen", listen, "--data", str(tmp_path / "data"))
        assert result.returncode == 2, result.stderr
        assert "relay.public_urls" in result.stderr
    config = tmp_path / "relay.toml"
    config.write_text('[relay]\nlisten = "0.0.0.0:0"\npublic_urls = ["wss://relay.example/v1"]\n')
    data = str(tmp_path / "data")
    process = subprocess.Popen(
        [sys.executable, "-m", "pigeon.cli", "relay", "--config", str(config), "--data", data],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:  # with a public URL it starts
        if "relay listening on" in line:
            break
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
