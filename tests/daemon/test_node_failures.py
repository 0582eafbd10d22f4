"""How a node stops: a failing self-test, hardware that is missing, a part that keeps failing."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from pigeon.config import DisplaySection, load_config
from pigeon.daemon import node as node_module
from pigeon.daemon.node import EXIT_PART_FAILED, EXIT_SELFTEST, EXIT_STORE, Node, NodeEnvironment
from pigeon.daemon.sdnotify import Notifier
from pigeon.daemon.selftest import SelftestResult
from pigeon.daemon.supervisor import Part, PartState, RestartPolicy

from .conftest import write_node_config


def quiet_env(**changes: object) -> NodeEnvironment:
    return dataclasses.replace(NodeEnvironment(notifier=Notifier({}), web=False), **changes)  # type: ignore[arg-type]


async def test_a_failing_selftest_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = SelftestResult((("ed25519 (RFC 8032)", "KnownAnswerMismatch: differs"),), 0.01)
    monkeypatch.setattr(node_module, "run_selftest", lambda: failed)
    node = Node(load_config(write_node_config(tmp_path)), quiet_env())
    assert await node.run(asyncio.Event()) == EXIT_SELFTEST
    assert node.stop_reason == "self-test failed: ed25519 (RFC 8032)"
    assert not (tmp_path / "data").exists()  # nothing was touched


async def test_a_missing_panel_leaves_the_node_running_without_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(write_node_config(tmp_path))
    config = dataclasses.replace(config, display=DisplaySection(kind="ssd1306", i2c_bus=15))
    node = Node(config, quiet_env(selftest=False))
    stop = asyncio.Event()
    task = asyncio.create_task(node.run(stop))
    await asyncio.wait_for(node.ready.wait(), 10)
    assert node.board.summary().startswith("missing: display; ")  # before the clip
    assert "no display" in caplog.text
    stop.set()
    assert await task == 0


async def test_an_unusable_data_dir_stops_with_a_clear_reason(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory", encoding="utf-8")
    node = Node(load_config(write_node_config(tmp_path)), quiet_env(selftest=False))
    assert await node.run(asyncio.Event()) == EXIT_STORE
    assert node.stop_reason.startswith("cannot start: StoreError")


class CrashingNode(Node):
    """A node with one more part that always fails."""

    def parts(self) -> list[Part]:
        async def broken() -> None:
            raise OSError("adapter vanished")

        return [*super().parts(), Part("flaky", broken)]


async def test_a_part_that_keeps_failing_stops_the_node(tmp_path: Path) -> None:
    policy = RestartPolicy(base_s=0.01, max_s=0.02, max_failures=3)
    node = CrashingNode(
        load_config(write_node_config(tmp_path)), quiet_env(selftest=False, restart=policy)
    )
    assert await asyncio.wait_for(node.run(asyncio.Event()), 30) == EXIT_PART_FAILED
    assert node.stop_reason == "flaky: OSError: adapter vanished"
    assert node.supervisor.status()["flaky"].state is PartState.FAILED
    # The other parts were stopped cleanly and the stores flushed: the spool opens again.
    again = Node(load_config(write_node_config(tmp_path)), quiet_env(selftest=False))
    stop = asyncio.Event()
    task = asyncio.create_task(again.run(stop))
    await asyncio.wait_for(again.ready.wait(), 10)
    stop.set()
    assert await task == 0


async def test_ble_without_bluez_restarts_the_radio_then_stops_with_its_reason(
    tmp_path: Path,
) -> None:
    config = load_config(write_node_config(tmp_path))
    config = dataclasses.replace(config, radio=dataclasses.replace(config.radio, kind="ble"))
    policy = RestartPolicy(base_s=0.01, max_s=0.02, max_failures=2)
    node = Node(config, quiet_env(selftest=False, restart=policy))
    assert await asyncio.wait_for(node.run(asyncio.Event()), 60) == EXIT_PART_FAILED
    assert node.stop_reason.startswith("radio: ")
    assert node.supervisor.status()["radio"].failures == 2
