"""The carrier deposits neighbours' hinted envelopes at a real relay on loopback, and refuses
forged hints, local addresses and floods; failed deposits are retried until the envelope expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pigeon.config import ButtonsSection, DisplaySection, NodeConfig, NodeSection, RadioSection
from pigeon.crypto.mailbox_hint import MailboxHint, signed_message
from pigeon.crypto.relay_urls import encode_relays
from pigeon.crypto.signing import SigningKey
from pigeon.daemon.carrier import Carrier, CarryPolicy
from pigeon.daemon.node import Node, NodeEnvironment
from pigeon.daemon.sdnotify import Notifier
from pigeon.daemon.spool_sync import SpoolSync
from pigeon.mesh.events import LocalSend
from pigeon.mesh.packet import Flag, Packet, PacketType, encode_packet
from pigeon.mesh.router import Router, RouterConfig
from pigeon.relay.config import RelayConfig
from pigeon.relay.server import RunningRelay, start_relay
from pigeon.store.keeper import DataDir, open_spool
from pigeon.transport.relay_client import RelayClient
from pigeon.transport.sim import RadioParams, SimMedium

from .conftest import free_port, wait_until

LOOPBACK = CarryPolicy(private_addresses=True)  # the test relay listens on 127.0.0.1


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def hinted(
    key: SigningKey, relays: list[str], n: int, *, forged_by: SigningKey | None = None
) -> Packet:
    """Envelope `n` for `key`'s mailbox; its hint signed by `forged_by` instead, if given."""
    if forged_by is None:
        hint = MailboxHint.sign(key.public_key, relays, key.sign)
    else:
        message = signed_message(key.public_key, encode_relays(relays))
        hint = MailboxHint(key.public_key, tuple(relays), forged_by.sign(message))
    return Packet(
        type=PacketType.ENVELOPE,
        recipient_tag=bytes(16),
        expires_at_s=int(time.time()) + 3600,
        payload=b"opaque ciphertext %d" % n,
        receipt_hash=bytes(16),
        flags=int(Flag.MAILBOX_HINT),
        mailbox_hint=hint.to_bytes(),
    )


async def read_mailbox(url: str, key: SigningKey, count: int) -> list[bytes]:
    got: list[bytes] = []
    done = asyncio.Event()

    async def keep(envelope_id: bytes, data: bytes) -> None:
        got.append(data)
        if len(got) == count:
            done.set()

    client = RelayClient(url, rng=random.Random(1))
    reading = asyncio.create_task(client.read(key.public_key, key.sign, keep))
    try:
        async with asyncio.timeout(10):
            await done.wait()
    finally:
        reading.cancel()
        with contextlib.suppress(BaseException):
            await reading
        await client.aclose()
    return got


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[RunningRelay]:
    running = await start_relay(RelayConfig(listen="127.0.0.1:0", data_dir=str(tmp_path / "r")))
    yield running
    await running.aclose()


@contextlib.contextmanager
def running(carrier: Carrier) -> Iterator[None]:
    task = asyncio.get_running_loop().create_task(carrier.run())
    try:
        yield
    finally:
        task.cancel()


async def test_a_hinted_envelope_is_deposited_as_it_came(relay: RunningRelay) -> None:
    key = SigningKey.generate()
    packet = hinted(key, [relay.url], 1)
    carrier = Carrier(LOOPBACK)
    with running(carrier):
        carrier.offer(packet)
        carrier.offer(packet)  # the router offers once; a repeat is ignored anyway
        await wait_until(lambda: carrier.counters["carried"] == 1)
    assert carrier.counters["offered"] == 1
    assert await read_mailbox(relay.url, key, 1) == [encode_packet(packet)]
    await carrier.aclose()


async def test_forged_hints_and_local_addresses_are_refused(relay: RunningRelay) -> None:
    key, mallory = SigningKey.generate(), SigningKey.generate()
    carrier = Carrier(LOOPBACK)
    carrier.offer(hinted(key, [relay.url], 1, forged_by=mallory))
    assert carrier.counters["refused_hint"] == 1
    strict = Carrier(CarryPolicy())  # the default: public addresses only
    strict.offer(hinted(key, [relay.url, "ws://192.168.1.1/v1"], 2))
    assert strict.counters["refused_urls"] == 1
    mixed = hinted(key, ["ws://localhost:1/v1", "wss://relay.example.org/v1"], 3)
    strict.offer(mixed)
    assert strict.pending == 1  # the public relay is kept, the local one dropped
    disabled = Carrier(CarryPolicy(enabled=False))
    disabled.offer(hinted(key, [relay.url], 4))
    assert disabled.counters["offered"] == 0
    assert relay.relay.store.stats().envelopes == 0


def test_one_mailbox_cannot_spend_the_whole_budget() -> None:
    carrier = Carrier(CarryPolicy(per_hour=24), clock=Clock())  # burst 4, a mailbox's burst 1
    first, second = SigningKey.generate(), SigningKey.generate()
    url = "wss://relay.example.org/v1"
    carrier.offer(hinted(first, [url], 1))
    carrier.offer(hinted(first, [url], 2))
    carrier.offer(hinted(second, [url], 3))
    assert carrier.pending == 2
    assert carrier.counters["over_budget"] == 1


async def test_failed_deposits_are_retried_until_they_succeed_or_expire(tmp_path: Path) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/v1"
    key = SigningKey.generate()
    clock = Clock()
    carrier = Carrier(LOOPBACK, clock=clock)
    late = hinted(key, [url], 1)
    with running(carrier):
        carrier.offer(late)
        await wait_until(lambda: carrier.counters["deposit_failed"] >= 1)
        assert carrier.pending == 1
        relay = await start_relay(RelayConfig(listen=f"127.0.0.1:{port}", data_dir=str(tmp_path)))
        try:
            clock.now += 60  # past the first retry's backoff
            await wait_until(lambda: carrier.counters["carried"] == 1)
            assert await read_mailbox(url, key, 1) == [encode_packet(late)]
        finally:
            await relay.aclose()
        doomed = hinted(key, [url], 2)
        carrier.offer(doomed)
        await wait_until(lambda: carrier.counters["deposit_failed"] >= 2)
        clock.now = doomed.expires_at_s + 1
        await wait_until(lambda: carrier.counters["expired"] == 1)
        assert carrier.pending == 0
    await carrier.aclose()


async def test_hinted_envelopes_restored_at_start_are_offered_again(tmp_path: Path) -> None:
    """A power cut between taking an envelope on and depositing it loses no deposit."""
    key = SigningKey.generate()
    packet = hinted(key, ["ws://192.168.1.1/v1"], 1)  # refused below: nothing leaves this host
    spool = open_spool(DataDir(tmp_path / "data"))
    router = Router(RouterConfig(), random.Random(1))
    router.handle(LocalSend(packet), time.time())
    SpoolSync(router, spool).persist(time.time())
    spool.close()
    config = NodeConfig(
        node=NodeSection(name="pigeon-c", data_dir=str(tmp_path / "data")),
        radio=RadioSection(kind="sim"),
        display=DisplaySection(kind="none"),
        buttons=ButtonsSection(kind="none"),
    )
    medium = SimMedium(RadioParams(), random.Random(1))
    node = Node(config, NodeEnvironment(medium, (0.0, 0.0), Notifier({}), False, web=False))
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        run = group.create_task(node.run(stop))
        await wait_until(node.ready.is_set)
        assert node.carrier.counters["offered"] == 1
        assert node.carrier.counters["refused_urls"] == 1  # public relays only, by default
        stop.set()
    assert run.result() == 0
