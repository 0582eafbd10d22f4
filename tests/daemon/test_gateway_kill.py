"""SIGKILL a courier and gateway node (a process of its own, gateway_child.py) and start it
again over the same spool, against a real Nostr relay on loopback: it never hands a phone a drop
it handed over before the kill, nor parks an envelope again inside its cooldown, and the mail it
took before the kill reaches its recipient once. The first two used to live in the gateway's
memory only; the relay sends every drop again to a new subscription, so a restarted node handed
the phone the same envelope twice and parked a second copy of each it held."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pigeon.bitchat.courier_wire import CourierEnvelope, candidate_tags, epoch_day, recipient_tag
from pigeon.gateway.drops import DROP_KIND, make_drop
from pigeon.nostr.event import Event

from .conftest import free_port
from .gateway_child import envelope_for_carl, phone
from .nostr_relay_process import NostrRelayProcess

CHILD = Path(__file__).with_name("gateway_child.py")
pytestmark = pytest.mark.timeout(300)

Status = dict[str, Any]


class Child:
    """One run of gateway_child.py, read line by line, ended only by SIGKILL."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.last: Status = {}

    @classmethod
    async def start(cls, data: Path, relay: str, *extra: str) -> Child:
        log = (data.parent / f"{data.name}.log").open("ab")
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(CHILD), str(data), relay, *extra,
            stdout=asyncio.subprocess.PIPE, stderr=log,
        )  # fmt: skip
        return cls(process)

    async def until(self, holds: Callable[[Status], bool], timeout_s: float = 90.0) -> Status:
        """Read status lines until one for which `holds` is true."""
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(timeout_s):
                while not holds(self.last):
                    line = await self.process.stdout.readline()
                    assert line, "the gateway child stopped by itself: see its log"
                    self.last = json.loads(line)
        except TimeoutError:
            raise AssertionError(f"the gateway child never got there: {self.last}") from None
        return self.last

    async def read_for(self, seconds: float) -> Status:
        """Keep reading status lines for `seconds`; the last one."""
        deadline = time.monotonic() + seconds
        return await self.until(lambda _: time.monotonic() > deadline, seconds + 30.0)

    async def kill(self) -> None:
        """SIGKILL, as a power cut or the OOM killer ends it."""
        self.process.send_signal(signal.SIGKILL)
        assert await self.process.wait() == -signal.SIGKILL


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[NostrRelayProcess]:
    process = NostrRelayProcess(tmp_path / "relay", free_port())
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


@contextlib.asynccontextmanager
async def running(data: Path, relay: str, *extra: str) -> AsyncIterator[Child]:
    child = await Child.start(data, relay, *extra)
    try:
        yield child
    finally:
        if child.process.returncode is None:
            await child.kill()


async def publish(relay: str, event: Event) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(relay) as ws:
        await ws.send_str(json.dumps(["EVENT", event.to_json()]))
        assert json.loads((await ws.receive()).data)[:3] == ["OK", event.id, True]


async def drops_under(relay: str, tags: list[str]) -> list[str]:
    """The ids of the kind-1401 drops the relay holds under `tags`."""
    ids: list[str] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(relay) as ws:
        await ws.send_str(json.dumps(["REQ", "count", {"kinds": [DROP_KIND], "#x": tags}]))
        async for message in ws:
            reply = json.loads(message.data)
            if reply[0] == "EOSE":
                break
            ids.append(reply[2]["id"])
    return ids


def _n(status: Status, name: str) -> int:
    return int(status.get(name, 0))


async def test_a_drop_handed_over_before_a_sigkill_is_not_handed_over_again(
    tmp_path: Path, relay: NostrRelayProcess
) -> None:
    now = time.time()
    tag = recipient_tag(phone("bob", 42).identity.noise_public, epoch_day(now))
    envelope = CourierEnvelope(tag, int((now + 3600) * 1000), b"sealed for bob" * 8)
    await publish(relay.url, make_drop(envelope, int(now), os.urandom))  # parked by a phone

    async with running(tmp_path / "node", relay.url) as first:
        handed = await first.until(lambda s: _n(s, "fetched") == 1 and _n(s, "bob") == 1)
        await first.kill()
    assert handed["bob"] == 1

    async with running(tmp_path / "node", relay.url) as second:
        await second.until(lambda s: _n(s, "drop_duplicate") + _n(s, "fetched") >= 1)
        after = await second.read_for(1.0)
        await second.kill()
    assert (_n(after, "fetched"), _n(after, "bob"), _n(after, "drop_duplicate")) == (0, 0, 1)


async def test_an_envelope_parked_before_a_sigkill_is_not_parked_again(
    tmp_path: Path, relay: NostrRelayProcess
) -> None:
    carl = phone("carl", 43).identity.noise_public
    tags = sorted(t.hex() for t in candidate_tags(carl, time.time()))
    async with running(tmp_path / "node", relay.url, "--deposit") as first:
        await first.until(lambda s: _n(s, "parked") == 1)
        await first.kill()
    assert len(await drops_under(relay.url, tags)) == 1

    async with running(tmp_path / "node", relay.url) as second:
        await second.until(lambda s: s.get("connected") == 1)
        after = await second.read_for(2.0)  # 20 of its rounds, each of which would park
        await second.kill()
    assert _n(after, "parked") == 0
    assert len(await drops_under(relay.url, tags)) == 1
    assert envelope_for_carl(time.time()).recipient_tag.hex() in tags


async def test_mail_taken_before_a_sigkill_reaches_its_recipient_after_it_once(
    tmp_path: Path, relay: NostrRelayProcess
) -> None:
    async with running(tmp_path / "node", relay.url, "--deposit") as first:
        await first.until(lambda s: _n(s, "held") == 1 and _n(s, "parked") == 1)
        await first.kill()  # as a power cut: no clean close of the spool

    async with running(tmp_path / "node", relay.url, "--carl") as second:
        await second.until(lambda s: _n(s, "carl") == 1 and _n(s, "held") == 0)
        # the courier handed it over in person; the gateway then gets its drop back
        await second.until(lambda s: _n(s, "drop_duplicate") + _n(s, "fetched") >= 1)
        after = await second.read_for(1.0)
        await second.kill()
    assert (_n(after, "carl"), _n(after, "fetched"), _n(after, "drop_duplicate")) == (1, 0, 1)
