"""Links the node dials to phones (`phonecentral`), without a radio: which characteristics a
phone service uses, and how frames are written and read on them, for the app and for bitchat."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from bleak.exc import BleakError

from pigeon.transport.base import Broken
from pigeon.transport.ble.app import APP_PROFILE
from pigeon.transport.ble.appgatt import APP_RX_UUID, APP_SERVICE_UUID, APP_TX_UUID
from pigeon.transport.ble.bitchat import BITCHAT_PROFILE
from pigeon.transport.ble.bitchatgatt import BITCHAT_CHARACTERISTIC_UUID, BITCHAT_SERVICE_UUID
from pigeon.transport.ble.phonecentral import PhoneCentralLink, phone_characteristics
from pigeon.transport.ble.policy import PacerParams, WritePacer


def _service(uuid: str, handle: int, *chars: str) -> Any:
    found = {c: SimpleNamespace(uuid=c, handle=handle) for c in chars}
    return SimpleNamespace(uuid=uuid, handle=handle, get_characteristic=found.get)


def test_bitchats_one_characteristic_is_both_ways() -> None:
    services = [_service(BITCHAT_SERVICE_UUID, 10, BITCHAT_CHARACTERISTIC_UUID)]
    found = phone_characteristics(services, BITCHAT_PROFILE)  # type: ignore[arg-type]
    assert found is not None
    rx, tx = found
    assert rx is tx
    assert rx.uuid == BITCHAT_CHARACTERISTIC_UUID


def test_the_newest_registration_of_a_service_wins_and_others_are_not_taken() -> None:
    services = [
        _service(APP_SERVICE_UUID, 10, APP_RX_UUID, APP_TX_UUID),
        _service(APP_SERVICE_UUID, 40, APP_RX_UUID, APP_TX_UUID),
        _service(BITCHAT_SERVICE_UUID, 60, BITCHAT_CHARACTERISTIC_UUID),
    ]
    found = phone_characteristics(services, APP_PROFILE)  # type: ignore[arg-type]
    assert found is not None
    assert found[0].handle == 40
    assert phone_characteristics(services[:2], BITCHAT_PROFILE) is None  # type: ignore[arg-type]


def test_frame_limits_follow_the_value_length_bitchat_writes() -> None:
    assert BITCHAT_PROFILE.frame_limit(105) is None  # under 64 + 42
    assert BITCHAT_PROFILE.frame_limit(106) == 106
    assert BITCHAT_PROFILE.frame_limit(182) == 182  # iOS at MTU 185
    assert BITCHAT_PROFILE.frame_limit(514) == 510  # BlueZ 5.66 loses 511-514
    assert APP_PROFILE.frame_limit(156) is None
    assert APP_PROFILE.frame_limit(514) == 510


@dataclass
class FakeClient:
    """A BleakClient stand-in: records writes, fails on demand."""

    address: str = "00:BC:01:05:00:05"
    writes: list[tuple[bytes, bool]] = field(default_factory=list)
    fail: bool = False
    disconnected: bool = False

    async def write_gatt_char(self, char: Any, value: bytes, response: bool) -> None:
        if self.fail:
            raise BleakError("not connected")
        self.writes.append((value, response))

    async def disconnect(self) -> None:
        self.disconnected = True


def _link(client: FakeClient, with_response: bool) -> PhoneCentralLink:
    pacer = WritePacer(PacerParams(rate_bytes_s=1e9, burst_bytes=1e9), 0.0)
    return PhoneCentralLink(
        client,  # type: ignore[arg-type]
        SimpleNamespace(uuid="rx"),  # type: ignore[arg-type]
        510,
        pacer,
        lambda: 0.0,
        with_response,
    )


@pytest.mark.parametrize(("profile", "response"), [(BITCHAT_PROFILE, False), (APP_PROFILE, True)])
async def test_frames_go_out_as_the_services_phones_write_and_come_in_as_notified(
    profile: Any, response: bool
) -> None:
    client = FakeClient()
    link = _link(client, profile.write_with_response)
    heard: list[bytes] = []
    link.run(heard.append, lambda reason: None)
    link.offer(b"packet one")
    link.offer(b"packet two")
    link.on_notify(b"from the phone")
    await link.close()
    assert client.writes == [(b"packet one", response), (b"packet two", response)]
    assert heard == [b"from the phone"]
    assert client.disconnected


async def test_a_failed_write_takes_the_link_down() -> None:
    client = FakeClient(fail=True)
    link = _link(client, with_response=False)
    downs: list[str] = []
    link.run(lambda frame: None, downs.append)
    link.offer(b"x")
    for _ in range(50):
        if downs:
            break
        await asyncio.sleep(0.01)
    assert downs == ["write failed"]
    with pytest.raises(Broken):
        link.offer(b"y")
    await link.close()
