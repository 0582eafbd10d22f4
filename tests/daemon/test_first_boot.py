"""First boot: a device-bound vault until the owner sets a passphrase, then locked at each start."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pigeon.config import NodeConfig, parse_config
from pigeon.daemon.first_boot import (
    VaultMode,
    open_vault_at_start,
    vault_mode,
)
from pigeon.daemon.node import node_name
from pigeon.daemon.node_messenger import NodeMessenger
from pigeon.messenger.api import WrongPassphrase
from pigeon.store.errors import CorruptStore
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import DatabaseKey, read_vault_header, unwrap_data_key
from pigeon.store.vault import Vault


def messenger(data_dir: DataDir) -> NodeMessenger:
    return NodeMessenger(VaultKeeper(data_dir), open_spool(data_dir))


def test_first_start_then_owner_passphrase_then_locked_starts(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path / "data")
    first = messenger(data_dir)
    assert open_vault_at_start(first, data_dir, time.time()) is not None
    assert not first.is_locked
    handle = first.own_handle()
    assert vault_mode(data_dir) is VaultMode.DEVICE_BOUND
    assert data_dir.auto_unlock.stat().st_mode & 0o077 == 0
    first.lock(time.time())
    # The next start opens it again with the device's passphrase: same identity.
    second = messenger(data_dir)
    assert open_vault_at_start(second, data_dir, time.time()) is not None
    assert second.own_handle() == handle
    # The owner sets a passphrase on the page, leaving "current passphrase" empty.
    with pytest.raises(WrongPassphrase):
        second.change_passphrase("a guess", "correct horse battery staple")
    second.change_passphrase("", "correct horse battery staple")
    assert vault_mode(data_dir) is VaultMode.OWNER_BOUND
    second.lock(time.time())
    # From now on a start leaves the vault locked until the owner unlocks it.
    third = messenger(data_dir)
    sent: list[object] = []
    third.send_packets = sent.extend
    assert open_vault_at_start(third, data_dir, time.time()) is None
    assert third.is_locked
    with pytest.raises(WrongPassphrase):
        third.change_passphrase("", "another")  # device-bound mode is over
    assert third.unlock("correct horse battery staple", time.time()) == []
    assert third.own_handle() == handle


def test_the_node_takes_the_hosts_pigeon_name_so_the_page_url_matches_mdns() -> None:
    key = bytes(32)
    assert node_name(NodeConfig(), key, "pigeon-7c58") == "pigeon-7c58"
    derived = node_name(NodeConfig(), key, "my-laptop")
    assert derived.startswith("pigeon-")
    assert derived == node_name(NodeConfig(), key, "raspberrypi")  # stable off the appliance
    assert node_name(parse_config({"node": {"name": "attic"}}), key, "pigeon-7c58") == "attic"


def opens_with(data_dir: DataDir, key: DatabaseKey) -> bool:
    try:
        Vault.open(data_dir.vault_db, key, create=False).close()
    except CorruptStore:  # the vault's name for "this key does not open it"
        return False
    return True


def device_key_of(data_dir: DataDir) -> tuple[str, DatabaseKey]:
    """The device passphrase and the data key it unwraps from the header now."""
    device = data_dir.auto_unlock.read_text()
    return device, unwrap_data_key(read_vault_header(data_dir.vault_header), device)


def test_the_first_passphrase_gives_the_vault_a_key_the_device_never_held(
    tmp_path: Path,
) -> None:
    data_dir = DataDir(tmp_path / "data")
    node = messenger(data_dir)
    assert open_vault_at_start(node, data_dir, time.time()) is not None
    handle = node.own_handle()
    _, old_key = device_key_of(data_dir)
    node.change_passphrase("", "correct horse battery staple")
    assert not data_dir.auto_unlock.exists()
    node.lock(time.time())
    # An undeleted auto-unlock file with the old header yields a key that opens nothing now.
    assert not opens_with(data_dir, old_key)
    again = messenger(data_dir)
    again.unlock("correct horse battery staple", time.time())
    assert again.own_handle() == handle


def test_a_node_whose_auto_unlock_fails_comes_up_locked_for_the_owner(tmp_path: Path) -> None:
    data_dir = DataDir(tmp_path / "data")
    first = messenger(data_dir)
    open_vault_at_start(first, data_dir, time.time())
    handle = first.own_handle()
    first.lock(time.time())
    # A passphrase change cut short by older code: the header is rewrapped, the file stays.
    device, old_key = device_key_of(data_dir)
    VaultKeeper(data_dir).change_passphrase(device, "correct horse battery staple")
    assert data_dir.auto_unlock.exists()

    second = messenger(data_dir)
    assert open_vault_at_start(second, data_dir, time.time()) is None  # no exception
    assert second.is_locked  # the page asks for the passphrase
    second.unlock("correct horse battery staple", time.time())
    assert second.own_handle() == handle
    # The stale device passphrase is shredded and the vault re-keyed away from it.
    assert not data_dir.auto_unlock.exists()
    assert vault_mode(data_dir) is VaultMode.OWNER_BOUND
    second.lock(time.time())
    assert not opens_with(data_dir, old_key)
    third = messenger(data_dir)
    assert open_vault_at_start(third, data_dir, time.time()) is None
    third.unlock("correct horse battery staple", time.time())
    assert third.own_handle() == handle
