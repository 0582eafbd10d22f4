"""A node whose device passphrase no longer opens the vault runs on, locked, for the owner."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from pigeon.config import load_config
from pigeon.daemon.node import Node
from pigeon.daemon.supervisor import PartState, RestartPolicy
from pigeon.store.keeper import DataDir, VaultKeeper
from tests.daemon.test_identity_reset import quiet_env

from .conftest import wait_until, write_node_config

PASSPHRASE = "correct horse battery staple"


async def test_a_failed_auto_unlock_leaves_the_node_running_and_locked(tmp_path: Path) -> None:
    config = load_config(write_node_config(tmp_path))
    fast = quiet_env(restart=RestartPolicy(base_s=0.01, max_s=0.05, max_failures=3))
    first = Node(config, fast)
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop))
    await wait_until(lambda: first.ready.is_set() and not first.messenger.is_locked)
    handle = first.messenger.own_handle()
    stop.set()
    assert await task == 0
    # A passphrase change cut short by older code: header rewrapped, device passphrase kept.
    data_dir = DataDir(tmp_path / "data")
    device = data_dir.auto_unlock.read_text()
    VaultKeeper(data_dir).change_passphrase(device, PASSPHRASE)

    node = Node(config, fast)
    stop = asyncio.Event()
    task = asyncio.create_task(node.run(stop))
    await wait_until(lambda: node.ready.is_set() and node.endpoint.vault_opened.is_set())
    await asyncio.sleep(0.5)  # many restart backoffs: a failing part would have given up by now
    assert not task.done()
    messenger_part = node.supervisor.status()["messenger"]
    assert messenger_part.state is PartState.RUNNING
    assert messenger_part.failures == 0
    assert node.messenger.is_locked
    assert node.board.owner.vault_locked  # the OLED and the page show it locked
    node.messenger.unlock(PASSPHRASE, time.time())  # what the page's unlock form does
    assert node.messenger.own_handle() == handle
    stop.set()
    assert await task == 0
