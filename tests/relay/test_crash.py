"""SIGKILL the relay process at random moments under load; no STORED deposit may be lost.

Each round starts `pigeon relay` on the same data directory, runs pipelined depositors and
one acknowledging reader per mailbox, and kills the process at a random moment. Afterwards a
clean relay must deliver every deposit that was ever answered STORED, must never deliver an
envelope again after its ACK was answered ACKED, and must hold nothing once all is acked.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from pigeon.crypto.signing import SigningKey
from pigeon.relay.protocol import (
    Ack,
    Acked,
    AuthOk,
    BacklogSent,
    Challenge,
    Deposit,
    Envelope,
    Error,
    ServerFrame,
    Stored,
    decode_server_frame,
    envelope_id_of,
)
from tests.relay.process import launch_relay
from tests.relay.rawclient import RawClient

KILLS = 12
DEPOSITORS = 4
WINDOW = 16
MAILBOXES = 3
# Quotas are tested elsewhere; here readers acknowledge only half of what they get while the
# relay is being killed, so mailboxes grow with the machine's speed and must not fill up.
CONFIG = """
[limits]
mailbox_max_envelopes = 1000000
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
    """What the clients saw across every relay process."""

    stored: dict[bytes, int] = field(default_factory=dict)  # envelope id -> mailbox index
    delivered: set[bytes] = field(default_factory=set)
    ack_confirmed: set[bytes] = field(default_factory=set)
    delivered_after_confirmed_ack: list[bytes] = field(default_factory=list)
    next_id: int = 0

    def new_id(self) -> bytes:
        self.next_id += 1
        return self.next_id.to_bytes(16, "big")


class RelayGone(Exception):
    """The relay process died under the client (expected: it is being killed)."""


async def connect(url: str) -> RawClient:
    session, ws = await RawClient.connect_raw(url)
    client = RawClient(ws, session, b"", url)
    frame = await receive(client)
    assert isinstance(frame, Challenge), frame
    client.challenge = frame.challenge
    return client


async def receive(client: RawClient) -> ServerFrame:
    message = await client.ws.receive()
    if message.type is not aiohttp.WSMsgType.BINARY:
        await client.session.close()
        raise RelayGone(str(message.type))
    return decode_server_frame(message.data)


async def depositor(url: str, owners: list[SigningKey], ledger: Ledger, rng: random.Random) -> None:
    client = await connect(url)
    try:
        await deposit_forever(client, owners, ledger, rng)
    finally:
        await client.session.close()


async def deposit_forever(
    client: RawClient, owners: list[SigningKey], ledger: Ledger, rng: random.Random
) -> None:
    sent: dict[int, tuple[bytes, int]] = {}
    while True:
        for _ in range(WINDOW):
            mailbox = rng.randrange(MAILBOXES)
            payload = ledger.new_id() * rng.randint(1, 8)  # unique, so never a duplicate
            request_id = client.request_id()
            sent[request_id] = (envelope_id_of(payload), mailbox)
            await client.send(Deposit(request_id, owners[mailbox].public_key, payload))
        for _ in range(WINDOW):
            answer = await receive(client)
            assert isinstance(answer, Stored), answer
            envelope_id, mailbox = sent.pop(answer.request_id)
            ledger.stored[envelope_id] = mailbox


async def reader(
    url: str, owner: SigningKey, ledger: Ledger, rng: random.Random, ack_share: float
) -> None:
    client = await connect(url)
    try:
        await client.send(client.auth_frame(owner))
        assert await receive(client) == AuthOk()
        await read_forever(client, ledger, rng, ack_share)
    finally:
        await client.session.close()


async def read_forever(
    client: RawClient, ledger: Ledger, rng: random.Random, ack_share: float
) -> None:
    acks: dict[int, bytes] = {}
    while True:
        frame = await receive(client)
        if isinstance(frame, Envelope):
            if frame.envelope_id in ledger.ack_confirmed:
                ledger.delivered_after_confirmed_ack.append(frame.envelope_id)
            ledger.delivered.add(frame.envelope_id)
            if rng.random() < ack_share:
                request_id = client.request_id()
                acks[request_id] = frame.envelope_id
                await client.send(Ack(request_id, (frame.envelope_id,)))
        elif isinstance(frame, Acked):
            ledger.ack_confirmed.add(acks.pop(frame.request_id))
        else:
            assert not isinstance(frame, Error), frame


async def stop_all(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        # A killed relay ends clients with RelayGone or a connection error; nothing else.
        expected = (asyncio.CancelledError, RelayGone, aiohttp.ClientError, ConnectionError)
        if isinstance(result, BaseException) and not isinstance(result, expected):
            raise result


async def metrics(http: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{http}/metrics") as reply:
        return await reply.text()


@pytest.mark.slow
async def test_no_stored_deposit_is_lost_across_sigkills(tmp_path: Path) -> None:
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
                asyncio.create_task(depositor(relay.url, owners, ledger, rng))
                for _ in range(DEPOSITORS)
            ),
            *(asyncio.create_task(reader(relay.url, o, ledger, rng, 0.5)) for o in owners),
        ]
        await asyncio.sleep(rng.uniform(0.15, 0.6))
        relay.process.send_signal(signal.SIGKILL)
        assert await relay.process.wait() == -signal.SIGKILL
        await stop_all(tasks)

    assert len(ledger.stored) > 100, f"too little load to mean anything (seed {seed})"

    # A clean relay: read everything, acknowledge all, and find nothing left afterwards.
    relay = await launch_relay(data, log, "--config", str(config))
    tasks = [asyncio.create_task(reader(relay.url, o, ledger, rng, 1.0)) for o in owners]
    for _ in range(400):
        if "pigeon_relay_stored_envelopes 0\n" in await metrics(relay.http):
            break
        await asyncio.sleep(0.05)
    await stop_all(tasks)
    missing = set(ledger.stored) - ledger.delivered
    assert not missing, f"{len(missing)} STORED deposits never delivered (seed {seed})"
    assert not ledger.delivered_after_confirmed_ack, f"redelivered after ACKED (seed {seed})"

    for owner in owners:
        client = await RawClient.connect(relay.url)
        assert await client.auth(owner) == AuthOk()
        assert await client.receive() == BacklogSent()
        with pytest.raises(asyncio.TimeoutError):
            await client.ws.receive(timeout=0.3)
        await client.close()
    assert "pigeon_relay_stored_envelopes 0\n" in await metrics(relay.http)
    relay.process.send_signal(signal.SIGTERM)
    assert await relay.process.wait() == 0
    with contextlib.suppress(FileNotFoundError):
        log.unlink()
