"""SIGKILL `pigeon relay` under a stream of Pigeon app publishes on /ws; nothing published is lost.

Each round starts `pigeon relay` on the same data directory, runs pipelined app publishers
(JSON `publish` frames; replies come in request order, so the n-th reply answers the n-th
publish) and one subscribed reader per mailbox that checks the bytes of what it gets, and kills
the process at a random moment. A clean relay must then deliver every envelope that was ever
answered `published` exactly once, bytes identical, and hold nothing after the readers ack all.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from pigeon.crypto.signing import SigningKey
from tests.relay.appclient import app_url
from tests.relay.process import launch_relay

KILLS = 10
PUBLISHERS = 4
WINDOW = 16
MAILBOXES = 12
CONFIG = """
[limits]
mailbox_max_bytes = 1073741824
ip_connects_per_s = 1000.0
ip_connect_burst = 10000
connection_frames_per_s = 100000.0
connection_frame_burst = 100000
ip_deposits_per_s = 100000.0
ip_deposit_burst = 100000
"""


@dataclass
class Ledger:
    """What the app clients saw across every relay process."""

    sent: dict[str, bytes] = field(default_factory=dict)  # envelope id -> bytes
    published: dict[str, int] = field(default_factory=dict)  # envelope id -> mailbox index
    wrong_bytes: list[str] = field(default_factory=list)
    checked: int = 0  # envelopes whose bytes were compared
    next_id: int = 0

    def payload(self, rng: random.Random) -> bytes:
        self.next_id += 1
        return self.next_id.to_bytes(16, "big") * rng.randint(1, 8)  # unique: never a duplicate


class RelayGone(Exception):
    """The relay process died under the client (expected: it is being killed)."""


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, object]:
    message = await ws.receive()
    if message.type is not aiohttp.WSMsgType.TEXT:
        raise RelayGone(str(message.type))
    frame = json.loads(message.data)
    assert isinstance(frame, dict)
    return frame


def eid(ciphertext: bytes) -> str:
    return hashlib.sha256(ciphertext).digest()[:16].hex()


async def publisher(url: str, owners: list[SigningKey], ledger: Ledger, rng: random.Random) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(app_url(url)) as ws:
        while True:
            window: list[tuple[str, int]] = []
            for _ in range(WINDOW):
                mailbox = rng.randrange(MAILBOXES)
                payload = ledger.payload(rng)
                ledger.sent[eid(payload)] = payload
                window.append((eid(payload), mailbox))
                recipient = owners[mailbox].public_key.hex()
                ciphertext = base64.b64encode(payload).decode()
                await ws.send_str(
                    json.dumps(
                        {"type": "publish", "recipient": recipient, "ciphertext": ciphertext}
                    )
                )
            for envelope_id, mailbox in window:
                answer = await receive(ws)
                if answer == {"type": "error", "message": "mailbox full"}:
                    continue  # the app's 1,000 a mailbox: refused, so never promised
                assert answer == {"type": "published", "id": envelope_id}, answer
                ledger.published[envelope_id] = mailbox


async def subscribe(ws: aiohttp.ClientWebSocketResponse, owner: SigningKey) -> None:
    await ws.send_str(json.dumps({"type": "subscribe", "mailbox": owner.public_key.hex()}))
    challenge = await receive(ws)
    nonce = base64.b64decode(str(challenge["nonce"]))
    signature = base64.b64encode(owner.sign(nonce)).decode()
    await ws.send_str(json.dumps({"type": "auth", "signature": signature}))
    assert await receive(ws) == {"type": "ok", "detail": "authenticated"}


def check(frame: dict[str, object], ledger: Ledger) -> str:
    assert frame["type"] == "envelope", frame
    envelope_id = str(frame["id"])
    ledger.checked += 1
    if base64.b64decode(str(frame["ciphertext"])) != ledger.sent.get(envelope_id):
        ledger.wrong_bytes.append(envelope_id)
    return envelope_id


async def watcher(url: str, owner: SigningKey, ledger: Ledger) -> None:
    """A reader during the kills: checks bytes, acknowledges nothing."""
    async with aiohttp.ClientSession() as session, session.ws_connect(app_url(url)) as ws:
        await subscribe(ws, owner)
        while True:
            check(await receive(ws), ledger)


async def stop_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        expected = (asyncio.CancelledError, RelayGone, aiohttp.ClientError, ConnectionError)
        if isinstance(result, BaseException) and not isinstance(result, expected):
            raise result


async def read_all(
    url: str, owner: SigningKey, ledger: Ledger, ack: bool, expect: frozenset[str] = frozenset()
) -> Counter[str]:
    """Every envelope a fresh subscription gets, counted by id: until 0.5 s of silence once
    every `expect`ed id came, else until 15 s of it (a relay just restarted on a loaded machine
    can take longer than 0.5 s to send its first envelope)."""
    got: Counter[str] = Counter()
    async with aiohttp.ClientSession() as session, session.ws_connect(app_url(url)) as ws:
        await subscribe(ws, owner)
        while True:
            try:
                frame = await receive_within(ws, 0.5 if expect <= set(got) else 15.0)
            except TimeoutError:
                return got
            envelope_id = check(frame, ledger)
            got[envelope_id] += 1
            if ack:
                await ws.send_str(json.dumps({"type": "ack", "id": envelope_id}))


async def receive_within(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> dict[str, object]:
    async with asyncio.timeout(seconds):
        return await receive(ws)


async def stored_envelopes(http: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{http}/metrics") as reply:
        for line in (await reply.text()).splitlines():
            if line.startswith("pigeon_relay_stored_envelopes "):
                return int(line.split()[-1])
    raise AssertionError("no stored_envelopes metric")


@pytest.mark.slow
async def test_no_published_envelope_is_lost_across_sigkills(tmp_path: Path) -> None:
    seed = time.time_ns()
    rng = random.Random(seed)
    owners = [SigningKey.generate() for _ in range(MAILBOXES)]
    ledger = Ledger()
    data, log, config = tmp_path / "data", tmp_path / "relay.log", tmp_path / "relay.toml"
    config.write_text(CONFIG)

    for _ in range(KILLS):
        relay = await launch_relay(data, log, "--config", str(config))
        tasks = [
            *(
                asyncio.create_task(publisher(relay.url, owners, ledger, rng))
                for _ in range(PUBLISHERS)
            ),
            *(asyncio.create_task(watcher(relay.url, owner, ledger)) for owner in owners[:3]),
        ]
        await asyncio.sleep(rng.uniform(0.15, 0.6))
        relay.process.send_signal(signal.SIGKILL)
        assert await relay.process.wait() == -signal.SIGKILL
        await stop_all(tasks)

    assert len(ledger.published) > 100, f"too little load to mean anything (seed {seed})"
    assert ledger.checked, "the readers during the kills got nothing"

    relay = await launch_relay(data, log, "--config", str(config))
    for index, owner in enumerate(owners):
        mine = {i for i, mailbox in ledger.published.items() if mailbox == index}
        got = await read_all(relay.url, owner, ledger, ack=True, expect=frozenset(mine))
        assert not mine - set(got), f"{len(mine - set(got))} published never came (seed {seed})"
        assert set(got) <= set(ledger.sent), f"an envelope nobody sent (seed {seed})"
        assert all(n == 1 for n in got.values()), f"delivered twice (seed {seed})"
    assert not ledger.wrong_bytes, f"bytes changed (seed {seed})"
    for _ in range(200):  # acks are answered with nothing: wait until they are applied
        if await stored_envelopes(relay.http) == 0:
            break
        await asyncio.sleep(0.05)
    assert await stored_envelopes(relay.http) == 0
    # One writer commits in order: a publish answered after the acks were applied proves
    # they are durable, so the kill below must not bring any back.
    barrier = SigningKey.generate()
    async with aiohttp.ClientSession() as session, session.ws_connect(app_url(relay.url)) as ws:
        ciphertext = base64.b64encode(b"barrier").decode()
        await ws.send_str(
            json.dumps(
                {"type": "publish", "recipient": barrier.public_key.hex(), "ciphertext": ciphertext}
            )
        )
        assert (await receive(ws))["type"] == "published"

    relay.process.send_signal(signal.SIGKILL)
    await relay.process.wait()
    relay = await launch_relay(data, log, "--config", str(config))
    for owner in owners:
        assert not await read_all(relay.url, owner, ledger, ack=False)
    relay.process.send_signal(signal.SIGTERM)
    assert await relay.process.wait() == 0
