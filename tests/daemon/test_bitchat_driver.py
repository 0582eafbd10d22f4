"""The bitchat driver on the simulated radio: the demo's bitchat phones chat through the node
only, the node's announce reaches each phone as it links, jitter and queues carry frames out,
and nothing identifying (nicknames, texts, peer ids) reaches the logs."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

import pytest

from pigeon.bitchat.identity import BitchatIdentity
from pigeon.bitchat.router import BitchatRouter
from pigeon.daemon.bitchat_driver import BitchatDriver
from pigeon.daemon.demo import BITCHAT_LINES, RANGE_M, run_bitchat_phones
from pigeon.daemon.hardware import BITCHAT_FRAME_LIMIT
from pigeon.sim.bitchat_phone import BITCHAT_SERVICE, BitchatPhone
from pigeon.transport.base import PeerId
from pigeon.transport.sim import RadioParams, SimMedium

from .conftest import wait_until


def _driver(
    clock: Callable[[], float] = time.time, clock_synchronized: Callable[[], bool] = lambda: True
) -> BitchatDriver:
    identity = BitchatIdentity.generate(random.Random(3).randbytes)
    router = BitchatRouter(identity.peer_id, random.Random(4))
    return BitchatDriver(
        router,
        identity,
        "pigeon-demo",
        tick_s=0.05,
        clock=clock,
        clock_synchronized=clock_synchronized,
    )


def _an_hour_behind() -> float:
    """The clock of a node that booted after an hour's power cut, before NTP."""
    return time.time() - 3600


async def test_the_demos_bitchat_phones_chat_through_the_node_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    medium = SimMedium(RadioParams(range_m=RANGE_M), random.Random(8))
    driver = _driver()
    node = medium.transport(
        "you", 0.0, 0.0, service=BITCHAT_SERVICE, frame_limit=BITCHAT_FRAME_LIMIT
    )
    tasks = [
        asyncio.create_task(driver.run(node)),
        asyncio.create_task(run_bitchat_phones(medium, chat_s=0.05)),
    ]
    try:
        await wait_until(lambda: driver.counters["public_heard"] >= 3, 10.0)
        assert sorted(driver.links) == ["bitchat-phone-0@bitchat", "bitchat-phone-1@bitchat"]
        assert medium.radio.peers(PeerId("bitchat-phone-0@bitchat")) == [PeerId("you@bitchat")]
        assert [m.text for m in driver.heard[:3]] == [text for _, text in BITCHAT_LINES[:3]]
        assert driver.router.peers() == 2
        assert driver.counters["announced"] >= 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    logged = caplog.text
    for secret in ("juno", "kai", "market", driver.identity.peer_id.hex(), "pigeon-demo"):
        assert secret not in logged


async def test_an_owners_post_is_announced_then_sent_and_remembered() -> None:
    medium = SimMedium(RadioParams(range_m=RANGE_M), random.Random(9))
    driver = _driver()
    node = medium.transport("you", 0.0, 0.0, service=BITCHAT_SERVICE, frame_limit=512)
    phone = BitchatPhone("lee", random.Random(5))
    run = asyncio.create_task(driver.run(node))
    try:
        await phone.start(
            medium.transport("lee", 10.0, 0.0, service=BITCHAT_SERVICE, frame_limit=512)
        )
        await wait_until(lambda: len(driver.links) == 1, 10.0)
        speaker = BitchatIdentity.generate(random.Random(6).randbytes)
        posted = driver.post(speaker, "owner", "hello from the node's page")
        (heard,) = await phone.wait_for_heard(1, 10.0)
        assert heard == posted
        assert driver.heard == [posted]
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await phone.aclose()


@pytest.mark.parametrize("synchronized", [False, True])
async def test_a_node_whose_clock_runs_behind_relays_while_it_is_not_synchronized(
    synchronized: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A Pi without a real-time clock boots behind by a power cut's length: until NTP steers
    its clock it leaves freshness to the phones and relays; a synchronized clock judges it."""
    caplog.set_level(logging.INFO)
    medium = SimMedium(RadioParams(range_m=RANGE_M), random.Random(8))
    driver = _driver(_an_hour_behind, lambda: synchronized)
    router = driver.router
    node = medium.transport(
        "you", 0.0, 0.0, service=BITCHAT_SERVICE, frame_limit=BITCHAT_FRAME_LIMIT
    )
    tasks = [
        asyncio.create_task(driver.run(node)),
        asyncio.create_task(run_bitchat_phones(medium, chat_s=0.05)),
    ]
    try:
        if synchronized:
            await wait_until(lambda: router.counters["stale"] >= 3, 10.0)
            assert router.counters["relayed"] == 0
        else:
            await wait_until(lambda: router.counters["relayed"] >= 3, 10.0)
            assert router.counters["stale"] == 0
            assert "not synchronized" in caplog.text
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.parametrize("synchronized", [False, True])
async def test_what_a_node_behind_stamps_follows_the_linked_phones_clocks(
    synchronized: bool,
) -> None:
    """The owner's post from a node an hour behind reaches a phone only while the node's clock
    is unsynchronized and so stamped by the phones' clocks (a phone drops it as stale else);
    a synchronized clock is taken as it is."""
    medium = SimMedium(RadioParams(range_m=RANGE_M), random.Random(9))
    driver = _driver(_an_hour_behind, lambda: synchronized)
    router = driver.router
    node = medium.transport("you", 0.0, 0.0, service=BITCHAT_SERVICE, frame_limit=512)
    phone = BitchatPhone("lee", random.Random(5))
    run = asyncio.create_task(driver.run(node))
    try:
        await phone.start(
            medium.transport("lee", 10.0, 0.0, service=BITCHAT_SERVICE, frame_limit=512)
        )
        await wait_until(lambda: len(driver.links) == 1, 10.0)
        if not synchronized:
            await wait_until(lambda: router.clock_offset_s() > 3590, 10.0)
        assert router.clock_offset_s() < 3610 if not synchronized else router.clock_offset_s() == 0
        speaker = BitchatIdentity.generate(random.Random(6).randbytes)
        posted = driver.post(speaker, "owner", "hello from the node's page")
        if synchronized:
            with pytest.raises(TimeoutError):
                await phone.wait_for_heard(1, 1.0)
        else:
            (heard,) = await phone.wait_for_heard(1, 10.0)
            assert heard == posted
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await phone.aclose()
