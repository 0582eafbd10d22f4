"""Hanging up a link we dialed: its notifications are released before the disconnect."""

from __future__ import annotations

from typing import Any

from pigeon.transport.ble.hangup import hang_up


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

    async def disconnect(self) -> None:
        self.calls.append("disconnect")
        if self._failing == "disconnect":
            raise EOFError("bus closed")


async def test_notifications_are_released_before_the_disconnect() -> None:
    client = RecordingClient()
    await hang_up(client, "tx")  # type: ignore[arg-type]
    assert client.calls == ["stop_notify tx", "disconnect"]


async def test_a_failed_release_still_disconnects_and_nothing_raises() -> None:
    client = RecordingClient(failing="stop_notify")
    await hang_up(client, "tx")  # type: ignore[arg-type]
    assert client.calls == ["stop_notify tx", "disconnect"]
    await hang_up(RecordingClient(failing="disconnect"))  # type: ignore[arg-type]


async def test_without_notifications_or_a_connection_it_only_disconnects() -> None:
    client = RecordingClient()
    await hang_up(client)  # type: ignore[arg-type]
    assert client.calls == ["disconnect"]
    gone = RecordingClient(connected=False)
    await hang_up(gone, "tx")  # type: ignore[arg-type]
    assert gone.calls == ["disconnect"]
