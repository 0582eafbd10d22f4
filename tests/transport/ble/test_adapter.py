"""BlueZAdapter against a real private dbus-daemon and a fake bluetoothd."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from dbus_fast import DBusError

from pigeon.transport.ble.adapter import BlueZAdapter, Neighbour
from pigeon.transport.ble.errors import (
    AdapterBlocked,
    AdapterNotFound,
    BleError,
    BlueZCallFailed,
    BlueZUnavailable,
    PermissionDenied,
)
from tests.transport.ble.fake_bluez import FakeAdapter, FakeBlueZ, FakeDevice


class Events:
    """An AdapterListener that records what it hears."""

    def __init__(self) -> None:
        self.log: list[tuple[str, object]] = []
        self.changed = asyncio.Event()

    def adapter_ready(self, adapter_path: str) -> None:
        self._add("ready", adapter_path)

    def adapter_lost(self, reason: str) -> None:
        self._add("lost", reason)

    def neighbour_changed(self, neighbour: Neighbour) -> None:
        self._add("neighbour", neighbour)

    def _add(self, kind: str, value: object) -> None:
        self.log.append((kind, value))
        self.changed.set()

    def kinds(self) -> list[str]:
        return [k for k, _ in self.log]

    async def wait(self, kind: str, count: int = 1) -> None:
        async with asyncio.timeout(5):
            while self.kinds().count(kind) < count:
                self.changed.clear()
                await self.changed.wait()


async def test_chooses_the_configured_adapter_and_powers_it_on(bluez: FakeBlueZ) -> None:
    adapter, events = BlueZAdapter("hci0", bluez.address), Events()
    await adapter.open(events)
    try:
        assert adapter.ready
        assert events.log == [("ready", "/org/bluez/hci0")]
        assert bluez.adapters["hci0"].powered
        (set_call,) = bluez.calls_to("Set")
        assert set_call.path == "/org/bluez/hci0"
        assert set_call.signature == "ssv"
        assert set_call.body[:2] == ["org.bluez.Adapter1", "Powered"]
        assert set_call.body[2].signature == "b"
        assert set_call.body[2].value is True
        assert all(c.path != "/org/bluez/hci1" for c in bluez.calls)
    finally:
        await adapter.close()


async def test_a_powered_adapter_is_not_set_again(bluez: FakeBlueZ) -> None:
    adapter = BlueZAdapter("hci1", bluez.address)
    await adapter.open(Events())
    await adapter.close()
    assert bluez.calls_to("Set") == []


async def test_missing_adapter_names_the_present_ones(bluez: FakeBlueZ) -> None:
    adapter = BlueZAdapter("hci7", bluez.address)
    with pytest.raises(AdapterNotFound, match=r"hci7 not found \(present: hci0, hci1\)"):
        await adapter.open(Events())
    await adapter.close()


async def test_bluez_not_running(bus_address: str) -> None:
    adapter = BlueZAdapter("hci0", bus_address)
    with pytest.raises(BlueZUnavailable, match="bluetoothd is not running"):
        await adapter.open(Events())
    await adapter.close()


async def test_no_bus_at_all(tmp_path: object) -> None:
    adapter = BlueZAdapter("hci0", "unix:path=/nonexistent/pigeon-test-bus")
    with pytest.raises(BlueZUnavailable, match="cannot connect to the D-Bus system bus"):
        await adapter.open(Events())


async def test_access_denied_by_bus_policy(denying_bus_address: str) -> None:
    fake = FakeBlueZ(denying_bus_address)
    await fake.start({"hci0": FakeAdapter("00:AA:01:00:00:00")})
    adapter = BlueZAdapter("hci0", denying_bus_address)
    try:
        with pytest.raises(PermissionDenied, match="D-Bus policy denies access") as info:
            await adapter.open(Events())
        assert isinstance(info.value, PermissionError)
    finally:
        await adapter.close()
        fake.stop()


async def test_rfkill_blocked_adapter_by_power_state(bus_address: str) -> None:
    fake = FakeBlueZ(bus_address)
    await fake.start({"hci0": FakeAdapter("00:AA:01:00:00:00", blocked=True)})
    adapter = BlueZAdapter("hci0", bus_address)
    try:
        with pytest.raises(AdapterBlocked, match="rfkill"):
            await adapter.open(Events())
    finally:
        await adapter.close()
        fake.stop()


async def test_rfkill_blocked_answer_to_power_on(bluez: FakeBlueZ) -> None:
    # BlueZ older than 5.64 has no PowerState; the Set is then refused with Error.Blocked.
    bluez.fail["Set"] = DBusError("org.bluez.Error.Blocked", "Blocked through rfkill")
    adapter = BlueZAdapter("hci0", bluez.address)
    with pytest.raises(AdapterBlocked, match="rfkill unblock bluetooth"):
        await adapter.open(Events())
    await adapter.close()


async def test_other_bluez_errors_keep_their_name(bluez: FakeBlueZ) -> None:
    bluez.fail["Set"] = DBusError("org.bluez.Error.Failed", "Not Powered")
    adapter = BlueZAdapter("hci0", bluez.address)
    with pytest.raises(BlueZCallFailed, match=r"org\.bluez\.Error\.Failed: Not Powered"):
        await adapter.open(Events())
    await adapter.close()


async def test_adapter_removed_and_returned(bluez: FakeBlueZ) -> None:
    adapter, events = BlueZAdapter("hci0", bluez.address), Events()
    await adapter.open(events)
    try:
        bluez.remove_adapter("hci0")
        await events.wait("lost")
        assert events.log[-1] == ("lost", "adapter removed")
        assert not adapter.ready
        bluez.add_adapter("hci0", FakeAdapter("00:AA:01:00:00:00"))  # back, powered off
        await events.wait("ready", 2)
        assert adapter.ready
        assert bluez.adapters["hci0"].powered
    finally:
        await adapter.close()


async def test_bluetoothd_restart(bluez: FakeBlueZ) -> None:
    adapter, events = BlueZAdapter("hci0", bluez.address), Events()
    await adapter.open(events)
    try:
        bluez.stop()
        await events.wait("lost")
        assert events.log[-1] == ("lost", "bluetoothd stopped")
        again = FakeBlueZ(bluez.address)
        await again.start({"hci0": FakeAdapter("00:AA:01:00:00:00")})
        await events.wait("ready", 2)
        assert again.adapters["hci0"].powered
        again.stop()
    finally:
        await adapter.close()


async def test_powered_off_from_outside_is_powered_on_again(bluez: FakeBlueZ) -> None:
    adapter, events = BlueZAdapter("hci0", bluez.address), Events()
    await adapter.open(events)
    try:
        bluez.adapters["hci0"].powered = False
        bluez.adapters["hci0"].emit_properties_changed({"Powered": False})
        await events.wait("lost")
        await events.wait("ready", 2)
        assert bluez.adapters["hci0"].powered
    finally:
        await adapter.close()


async def test_neighbour_link_state_and_rssi(bluez: FakeBlueZ) -> None:
    path = bluez.add_device("hci0", "00:AA:01:05:00:05")
    adapter, events = BlueZAdapter("hci0", bluez.address), Events()
    await adapter.open(events)
    try:
        assert adapter.neighbours()[path] == Neighbour(path, "00:AA:01:05:00:05", True, -60)
        bluez.devices[path].set_connected(False)
        await events.wait("neighbour")
        assert events.log[-1] == ("neighbour", Neighbour(path, "00:AA:01:05:00:05", False, -60))
        bluez.devices[path].rssi = -71
        bluez.devices[path].emit_properties_changed({"RSSI": -71})
        await events.wait("neighbour", 2)
        assert adapter.neighbours()[path].rssi == -71
        other = bluez.add_device("hci1", "00:AA:01:06:00:06")  # another adapter's device
        await asyncio.sleep(0.1)
        assert other not in adapter.neighbours()
    finally:
        await adapter.close()


@contextlib.asynccontextmanager
async def _discovering(bluez: FakeBlueZ) -> AsyncIterator[tuple[BlueZAdapter, str, FakeDevice]]:
    """An open adapter and a connected device whose GATT discovery is not over yet."""
    path = bluez.add_device("hci0", "00:AA:01:05:00:05")
    device = bluez.devices[path]
    device.services_resolved = False
    adapter = BlueZAdapter("hci0", bluez.address)
    await adapter.open(Events())
    try:
        yield adapter, path, device
    finally:
        await adapter.close()


async def test_a_disconnect_waits_for_bluetoothds_discovery_of_the_device(
    bluez: FakeBlueZ,
) -> None:
    # BlueZ 5.66 frees a device's attribute cache at Disconnect while its discovery's database
    # hash read is still on the air, then writes the answer into it (ASan in the VM tier).
    async with _discovering(bluez) as (adapter, path, device):
        cutting = asyncio.create_task(adapter.disconnect(path))
        await asyncio.sleep(0.3)
        assert device.disconnects == 0
        assert not cutting.done()
        device.set_services_resolved(True)
        async with asyncio.timeout(5):
            await cutting
        assert device.disconnects == 1


async def test_a_device_still_discovering_is_cut_after_the_wait(
    bluez: FakeBlueZ, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pigeon.transport.ble.adapter.DISCOVERY_WAIT_S", 0.2)
    async with _discovering(bluez) as (adapter, path, device):
        async with asyncio.timeout(5):
            await adapter.disconnect(path)
        assert device.disconnects == 1


async def test_a_device_gone_while_discovering_is_not_disconnected(bluez: FakeBlueZ) -> None:
    async with _discovering(bluez) as (adapter, path, device):
        cutting = asyncio.create_task(adapter.disconnect(path))
        await asyncio.sleep(0.1)
        device.set_connected(False)
        async with asyncio.timeout(5):
            await cutting
        assert device.disconnects == 0


async def test_disconnect_all_waits_for_discovery_too(bluez: FakeBlueZ) -> None:
    async with _discovering(bluez) as (adapter, _path, device):
        cutting = asyncio.create_task(adapter.disconnect_all(5))
        await asyncio.sleep(0.3)
        assert device.disconnects == 0
        device.set_services_resolved(True)
        async with asyncio.timeout(5):
            assert await cutting == []
        assert device.disconnects == 1


@contextlib.asynccontextmanager
async def _not_connected(bluez: FakeBlueZ) -> AsyncIterator[tuple[BlueZAdapter, str, FakeDevice]]:
    """An open adapter and a seen device that is not connected, whose Connect waits (its gate)."""
    path = bluez.add_device("hci0", "00:AA:01:05:00:05", connected=False)
    device = bluez.devices[path]
    device.connect_gate.clear()
    adapter = BlueZAdapter("hci0", bluez.address)
    await adapter.open(Events())
    try:
        assert not adapter.neighbours()[path].connected
        yield adapter, path, device
    finally:
        await adapter.close()


async def test_a_connect_answered_by_bluez_returns(bluez: FakeBlueZ) -> None:
    async with _not_connected(bluez) as (adapter, path, device):
        connecting = asyncio.create_task(adapter.connect(path, 5))
        await asyncio.sleep(0.1)
        device.connect_gate.set()
        async with asyncio.timeout(5):
            await connecting
        assert (device.connects, device.disconnects) == (1, 0)


async def test_a_connection_the_peer_made_meanwhile_ends_the_wait_and_is_never_cut(
    bluez: FakeBlueZ,
) -> None:
    # bleak's connect sends Disconnect on its timeout whatever happened meanwhile: in the VM
    # tier that cut the links a peer had dialed while our connect to it was pending.
    async with _not_connected(bluez) as (adapter, path, device):
        connecting = asyncio.create_task(adapter.connect(path, 2))
        await asyncio.sleep(0.2)
        device.set_connected(True)  # the peer dialed us: one LE connection for both
        async with asyncio.timeout(1):
            await connecting
        await asyncio.sleep(2.2)  # past the deadline of the connect we no longer wait for
        assert (device.connects, device.disconnects, device.connected) == (1, 0, True)


async def test_a_connect_that_never_comes_is_cancelled_by_a_disconnect(bluez: FakeBlueZ) -> None:
    async with _not_connected(bluez) as (adapter, path, device):
        with pytest.raises(TimeoutError):
            await adapter.connect(path, 0.3)
        assert (device.connects, device.disconnects) == (1, 1)


async def test_a_cancelled_connect_is_cancelled_at_bluez_too(bluez: FakeBlueZ) -> None:
    async with _not_connected(bluez) as (adapter, path, device):
        connecting = asyncio.create_task(adapter.connect(path, 5))
        await asyncio.sleep(0.2)
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connecting
        assert device.disconnects == 1


async def test_a_device_connected_already_is_not_connected_again(bluez: FakeBlueZ) -> None:
    async with _not_connected(bluez) as (adapter, path, device):
        device.set_connected(True)
        async with asyncio.timeout(5):
            while not adapter.neighbours()[path].connected:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await adapter.connect(path, 5)
        assert device.connects == 0


def test_every_error_is_a_ble_error() -> None:
    for error in (BlueZUnavailable, AdapterNotFound, AdapterBlocked, PermissionDenied):
        assert issubclass(error, BleError)
