"""The ATT MTU the node asks BlueZ for keeps every link's values where BlueZ 5.66 carries them."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from pigeon.transport.ble.appgatt import APP_MAX_FRAME_LIMIT
from pigeon.transport.ble.bitchatgatt import BITCHAT_MAX_FRAME_LIMIT
from pigeon.transport.ble.gatt import (
    ATT_WRITE_OVERHEAD,
    LINK_HEADER_LEN,
    MAX_FRAME_LIMIT,
    peripheral_value_length,
)

REPO = Path(__file__).resolve().parents[3]


def _exchange_mtu() -> int:
    parser = configparser.ConfigParser()
    parser.read(REPO / "config" / "bluetooth-main.conf")
    return parser.getint("GATT", "ExchangeMTU")


def test_no_central_may_write_the_lengths_bluez_loses() -> None:
    # bitchat's phones write up to the link's value length (MTU - 3); BlueZ 5.66 loses writes of
    # 511-514 bytes, so the node's MTU offer must keep every value at 510 or less.
    value_length = _exchange_mtu() - ATT_WRITE_OVERHEAD
    assert value_length <= 510
    assert value_length >= max(APP_MAX_FRAME_LIMIT, BITCHAT_MAX_FRAME_LIMIT)


def test_a_notification_at_the_node_mtu_carries_508_bytes() -> None:
    # What the node notifies a BlueZ central: 2 bytes under what it writes (MTU 513: 508).
    notified = peripheral_value_length(_exchange_mtu())
    assert notified == _exchange_mtu() - ATT_WRITE_OVERHEAD - 2 == 508
    assert notified >= MAX_FRAME_LIMIT + LINK_HEADER_LEN  # our own 244-byte frames


def test_the_ansible_role_sets_the_same_mtu() -> None:
    tasks = (REPO / "ansible" / "roles" / "pigeon_node" / "tasks" / "hardware.yml").read_text()
    (value,) = re.findall(r'option: ExchangeMTU, value: "(\d+)"', tasks)
    assert int(value) == _exchange_mtu()


def test_the_ansible_role_installs_the_kernel_settings_the_vm_tier_applies() -> None:
    tasks = (REPO / "ansible" / "roles" / "pigeon_node" / "tasks" / "hardware.yml").read_text()
    assert 'config/sysctl-pigeon.conf"\n    dest: /etc/sysctl.d/60-pigeon.conf' in tasks
    assert (
        "sysctl -p /src/config/sysctl-pigeon.conf"
        in (REPO / "tests/bluez/guest-ble.sh").read_text()
    )
    settings = (REPO / "config" / "sysctl-pigeon.conf").read_text()
    (qlen,) = re.findall(r"^net\.unix\.max_dgram_qlen = (\d+)$", settings, re.M)
    assert int(qlen) >= 256  # BlueZ's notification socket pairs hold this many frames
