"""A private dbus-daemon per test (real daemon, real bus, real policy), and a fake bluetoothd."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.transport.ble.fake_bluez import FakeAdapter, FakeBlueZ

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    {extra}
  </policy>
</busconfig>
"""


def _start_daemon(tmp_path: Path, extra: str = "") -> tuple[subprocess.Popen[bytes], str]:
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed (apt-get install dbus)")
    socket = tmp_path / "bus"
    config = tmp_path / "bus.conf"
    config.write_text(_CONFIG.format(socket=socket, extra=extra))
    daemon = subprocess.Popen(
        ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address"],
        stdout=subprocess.PIPE,
    )
    assert daemon.stdout is not None
    address = daemon.stdout.readline().decode().strip()
    assert address.startswith("unix:"), "dbus-daemon did not print its address"
    return daemon, address


@pytest.fixture
def bus_address(tmp_path: Path) -> Iterator[str]:
    """A fresh private bus; the daemon is SIGKILLed afterwards."""
    daemon, address = _start_daemon(tmp_path)
    yield address
    daemon.kill()
    daemon.wait()


@pytest.fixture
def denying_bus_address(tmp_path: Path) -> Iterator[str]:
    """A private bus whose policy denies every call to org.bluez (like a missing pigeon.conf)."""
    daemon, address = _start_daemon(tmp_path, '<deny send_destination="org.bluez"/>')
    yield address
    daemon.kill()
    daemon.wait()


@pytest.fixture
async def bluez(bus_address: str) -> AsyncIterator[FakeBlueZ]:
    """bluetoothd with two adapters, hci0 (powered off) and hci1 (powered on)."""
    fake = FakeBlueZ(bus_address)
    await fake.start(
        {"hci0": FakeAdapter("00:AA:01:00:00:00"), "hci1": FakeAdapter("00:AA:01:01:00:01", True)}
    )
    yield fake
    if fake.bus is not None:
        fake.stop()
