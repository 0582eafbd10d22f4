"""Hanging up a link we dialed: its notifications are released before the disconnect."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pigeon.transport.ble import hangup
from pigeon.transport.ble.hangup import connect, hang_up


class RecordingClient:
    """What `hang_up` uses of a BleakClient, recording the order of calls."""

    def __init__(self, connected: bool = True, failing: str = "") -> None:
        self.is_connected = connected
        self.calls: list[str] = []
        self._failing = failing

    async def stop_notify(self, characteristic: Any) -> None:
        self.calls.append(f"stop_notify {characteristic}")
        if self._failing == "stop_notify":
            raise OSError("the notification socket is gone")

    async def released(self, characteristic: Any) -> None:
        """bluetoothd letting go of the notification (`hang_up`'s `released`)."""
        self.calls.append(f"released {characteristic}")
        if self._failing == "released":
            await asyncio.Event().wait()  # bluetoothd never says so

    async def disconnect(self) -> None:
        self.calls.append("disconnect")
        if self._failing == "disconnect":
            raise EOFError("bus closed")


async def test_notifications_are_released_before_the_disconnect() -> None:
    client = RecordingClient()
    await hang_up(client, "tx", released=client.released)  # type: ignore[arg-type]
    assert client.calls == ["stop_notify tx", "released tx", "disconnect"]


async def test_a_failed_release_still_disconnects_and_nothing_raises() -> None:
    client = RecordingClient(failing="stop_notify")
    await hang_up(client, "tx", released=client.released)  # type: ignore[arg-type]
    assert client.calls == ["stop_notify tx", "disconnect"]
    failing = RecordingClient(failing="disconnect")
    await hang_up(failing, released=failing.released)  # type: ignore[arg-type]


async def test_a_release_bluetoothd_never_confirms_still_ends_in_a_disconnect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hangup, "RELEASE_WAIT_S", 0.05)
    client = RecordingClient(failing="released")
    await hang_up(client, "tx", released=client.released)  # type: ignore[arg-type]
    assert client.calls == ["stop_notify tx", "released tx", "disconnect"]


async def test_without_notifications_or_a_connection_it_only_disconnects() -> None:
    client = RecordingClient()
    await hang_up(client, released=client.released)  # type: ignore[arg-type]
    assert client.calls == ["disconnect"]
    gone = RecordingClient(connected=False)
    await hang_up(gone, "tx", released=gone.released)  # type: ignore[arg-type]
    assert gone.calls == ["disconnect"]


class SlowConnectClient:
    """A BleakClient whose connect takes a while, as while bluetoothd discovers the device;
    bleak disconnects when its connect is cancelled."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.discovering = asyncio.Event()
        self.resolve = asyncio.Event()

    async def connect(self) -> None:
        self.calls.append("connect")
        self.discovering.set()
        try:
            await self.resolve.wait()
        except asyncio.CancelledError:
            self.calls.append("disconnect while discovering")
            raise
        self.calls.append("services resolved")


async def test_a_cancelled_connect_ends_its_discovery_before_cancelling() -> None:
    client = SlowConnectClient()
    dialing = asyncio.create_task(connect(client))  # type: ignore[arg-type]
    await client.discovering.wait()
    dialing.cancel()
    await asyncio.sleep(0.05)
    assert not dialing.done()
    client.resolve.set()
    with pytest.raises(asyncio.CancelledError):
        await dialing
    assert client.calls == ["connect", "services resolved"]


async def test_a_cancelled_connect_that_never_ends_is_cancelled_after_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pigeon.transport.ble.hangup.CONNECT_FINISH_WAIT_S", 0.2)
    client = SlowConnectClient()
    dialing = asyncio.create_task(connect(client))  # type: ignore[arg-type]
    await client.discovering.wait()
    dialing.cancel()
    async with asyncio.timeout(5):
        with pytest.raises(asyncio.CancelledError):
            await dialing
    assert client.calls == ["connect", "disconnect while discovering"]


async def test_a_hang_up_waits_for_bluetoothds_discovery_first() -> None:
    client = RecordingClient()

    async def discovered() -> None:
        client.calls.append("discovered")

    await hang_up(client, discovered=discovered)  # type: ignore[arg-type]
    assert client.calls == ["discovered", "disconnect"]
