"""The OLED wiring in a running node: virtual buttons -> pairing screen with the web room's code."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import time
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from pigeon.config import load_config
from pigeon.daemon.node import Node, NodeEnvironment
from pigeon.daemon.panel import NodePanel
from pigeon.daemon.sdnotify import Notifier
from pigeon.ui.oled import render
from pigeon.ui.oled.buttons import PAIRING_HOLD_S
from pigeon.ui.oled.machine import SCREENSAVER_AFTER_S
from pigeon.ui.oled.state import Uplink
from pigeon.ui.oled.views import PairingClosedView, PairingView, SaverView, StatusView
from pigeon.ui.web.errors import WrongCode
from pigeon.ui.web.pairing import MAX_TRIES

from .conftest import write_node_config


async def _wait_for(predicate: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.mode == "1"
    assert image.size == (128, 64)
    return image


@pytest.fixture
async def running_node(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = load_config(write_node_config(tmp_path))
    node = Node(config, NodeEnvironment(notifier=Notifier({}), selftest=False))
    stop = asyncio.Event()
    task = asyncio.create_task(node.run(stop))
    await asyncio.wait_for(node.ready.wait(), 10)
    await _wait_for(lambda: isinstance(node.oled.view, StatusView))  # the vault is open
    yield node
    stop.set()
    assert await task == 0


async def test_holding_the_virtual_button_shows_the_pairing_code(running_node: Node) -> None:
    node = running_node
    assert node.panel.buttons_available()
    node.panel.press("a")
    await asyncio.sleep(PAIRING_HOLD_S + 0.2)
    node.panel.release("a")
    await _wait_for(lambda: isinstance(node.oled.view, PairingView))
    view = node.oled.view
    assert isinstance(view, PairingView)
    window = node.pairing.window(time.time())
    assert window is not None
    assert view.code == window.code
    assert view.cert_sha256 == node.cert.sha256
    assert view.url.endswith("/pair")
    # The device panel mirrors exactly the frame the OLED shows.
    assert _png(node.panel.frame_png()).tobytes() == render(view).tobytes()
    # The code works once on the web room's pairing manager, and the window closes.
    token = node.pairing.submit(window.code, time.time(), "test browser")
    assert token
    await _wait_for(lambda: isinstance(node.oled.view, StatusView))
    assert node.board.owner.owner_paired


async def test_wrong_codes_that_close_the_pairing_window_show_on_the_oled(
    running_node: Node,
) -> None:
    node = running_node
    code = node.pairing.start(time.time())
    await _wait_for(lambda: isinstance(node.oled.view, PairingView))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(MAX_TRIES):
        with contextlib.suppress(WrongCode):
            node.pairing.submit(wrong, time.time(), "guesser")
    await _wait_for(lambda: isinstance(node.oled.view, PairingClosedView))
    assert node.oled.view == PairingClosedView(MAX_TRIES)
    assert _png(node.panel.frame_png()).tobytes() == render(node.oled.view).tobytes()
    node.panel.press("a")  # a short press dismisses the notice
    await asyncio.sleep(0.1)
    node.panel.release("a")
    await _wait_for(lambda: isinstance(node.oled.view, StatusView))


async def test_a_short_press_moves_to_the_message_list_and_back(running_node: Node) -> None:
    node = running_node
    frames_before = node.oled.frames_shown
    node.panel.press("a")
    await asyncio.sleep(0.1)
    node.panel.release("a")
    await _wait_for(lambda: not isinstance(node.oled.view, StatusView))
    assert node.oled.frames_shown > frames_before
    with pytest.raises(ValueError):
        node.panel.press("c")


async def test_presses_from_a_driver_thread_reach_the_loop(running_node: Node) -> None:
    node = running_node
    # RPi.GPIO calls back from its own thread; the virtual buttons stand in for it here.
    await asyncio.to_thread(node.panel.press, "a")
    await asyncio.sleep(0.1)
    await asyncio.to_thread(node.panel.release, "a")
    await _wait_for(lambda: not isinstance(node.oled.view, StatusView))


def test_the_panel_says_when_the_oled_sleeps() -> None:
    views: list[object] = [SaverView(0, 1)]
    panel = NodePanel(None, None, lambda: views[-1])  # type: ignore[arg-type,return-value]
    assert panel.asleep()
    views.append(StatusView("pigeon-test", 0, 0, 0, Uplink.OFFLINE, 0, True))
    assert not panel.asleep()
    assert panel.sleep_after_s() == SCREENSAVER_AFTER_S


async def test_one_clock_setting_for_the_oled_and_the_page(tmp_path: Path) -> None:
    config = load_config(write_node_config(tmp_path))
    config = dataclasses.replace(config, node=dataclasses.replace(config.node, clock="12h"))
    node = Node(config, NodeEnvironment(notifier=Notifier({}), selftest=False))
    stop = asyncio.Event()
    task = asyncio.create_task(node.run(stop))
    try:
        await asyncio.wait_for(node.ready.wait(), 10)
        assert node.board.view_state(time.monotonic()).twelve_hour
        assert node.web_ports is not None
        async with aiohttp.ClientSession() as session:
            url = f"https://127.0.0.1:{node.web_ports[0]}/pair"
            async with session.get(url, ssl=False) as response:
                page = await response.text()
        assert 'data-clock="12h"' in page
    finally:
        stop.set()
        assert await task == 0
