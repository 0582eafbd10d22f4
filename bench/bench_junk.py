"""Junk from strangers who hold the owner's card, written to bench/results/junk.json.

(a) CPU cost of one junk envelope on the owner's intro tag (the costliest kind: a ratchet
    header under a new key at message 0, which would take a DH step, then 528 random bytes;
    about 600 bytes as a packet), with 1 and with 40 contacts, each handled alone
    (one vault transaction, as the daemon handles a delivery). process_time over JUNK envelopes,
    median of ROUNDS. Three states of the contacts:
      settled  - every contact has written to our session tag more than a day ago (the usual);
      recent   - every contact wrote to our session tag today (intro windows open for their
                 known ratchet keys only);
      waiting  - every session is up but no contact has written to our session tag yet (each
                 session may take a DH step for an intro-tag envelope: the cost that remains,
                 and the shape of the old cost, when every contact was tried).
(b) A real `pigeon node` in this process (sim radio, web page on loopback, 40 contacts who
    wrote to it today: "recent"; or whose sessions are up but who never wrote: "waiting",
    where each intro-tag junk envelope still costs a DH step per session) reads its mailbox
    at a real `pigeon relay` subprocess while a thread deposits JUNK_RELAY junk envelopes
    there (nine in ten intro-tag ratchet junk, one in ten HELLOs). Another thread polls
    GET /api/status over one kept-alive HTTPS connection the whole time: latency p50, p99 and
    max, beside the same poll on the idle node just before (the reference).
The machine is shared and noisy (2 cores, several sessions): trust ratios more than absolutes.
Run: .venv/bin/python bench/bench_junk.py
"""

from __future__ import annotations

import asyncio
import http.client
import json
import platform
import random
import re
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from pigeon.config import (
    ButtonsSection,
    DisplaySection,
    NodeConfig,
    NodeSection,
    RadioSection,
    RelaysSection,
    WebSection,
)
from pigeon.crypto.card import ContactCard
from pigeon.daemon.node import Node, NodeEnvironment
from pigeon.daemon.sdnotify import Notifier
from pigeon.mesh.packet import Packet, encode_packet
from pigeon.messenger.addressing import address, intro_tag_key
from pigeon.messenger.api import Messenger
from pigeon.messenger.envelope import Hello, RatchetEnvelope, encode_envelope
from pigeon.messenger.first_contact import Source
from pigeon.messenger.packets import HANDSHAKE_FLAGS, EnvelopeFrame
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import Argon2Params
from pigeon.transport.relay_client import RelayBusy, RelayClient
from pigeon.transport.sim import RadioParams, SimMedium
from pigeon.ui.web.ports import RelayState
from pigeon.ui.web.security import COOKIE_NAME

JUNK = 200
ROUNDS = 3
CONTACTS = (1, 40)
JUNK_RELAY = 1000
POLL_GAP_S = 0.02
IDLE_POLL_S = 10.0
SETTLE_S = 10.0
T0 = 20_000 * 86_400 + 6 * 3600
DAY_S = 86_400.0
CHEAP = Argon2Params(opslimit=1, memlimit_bytes=8192)
RESULT = Path(__file__).resolve().parent / "results" / "junk.json"
LISTENING = re.compile(r"relay listening on ([\d.]+):(\d+)")
_rng = random.Random(7)


# -- junk ---------------------------------------------------------------------------------------


def _x25519_public() -> bytes:
    return X25519PrivateKey.generate().public_key().public_bytes_raw()


def junk_ratchet(tag: bytes, now: float) -> Packet:
    frame = EnvelopeFrame.new(_rng.randbytes, tag, int(now + 3600))
    message = _x25519_public() + bytes(8) + _rng.randbytes(512 + 16)
    return frame.packet(encode_envelope(RatchetEnvelope(message)))


def junk_hello(tag: bytes, now: float) -> Packet:
    frame = EnvelopeFrame.new(
        _rng.randbytes, tag, int(now + 3600), HANDSHAKE_FLAGS, receipted=False
    )
    hello = Hello(_rng.randbytes(16), _rng.randbytes(32), _x25519_public())
    return frame.packet(encode_envelope(hello))


def intro_tag(card_text: str, now: float) -> bytes:
    return address(intro_tag_key(ContactCard.from_text(card_text).mailbox_key), now)


# -- (a) the messenger alone --------------------------------------------------------------------


def _endpoint(root: Path, seed: int) -> Messenger:
    data = DataDir(root)
    messenger = Messenger(
        VaultKeeper(data, argon2=CHEAP), open_spool(data), rng=random.Random(seed).randbytes
    )
    messenger.initialise("bench", T0)
    return messenger


def _pump(a: Messenger, b: Messenger, packets: list[Packet], now: float, source: Source) -> None:
    """Carry packets between `a` (which sent `packets`) and `b` until quiet."""
    side = (a, b)
    while packets:
        side = (side[1], side[0])
        receiver = side[0]
        served = set(receiver.served_tags(now))
        handed = [p for p in packets if p.recipient_tag in served]
        packets = receiver.handle_packets(handed, now, source)


def befriend(owner: Messenger, friend: Messenger, now: float, *, write_back: bool) -> None:
    """A session between them; with `write_back` the friend also writes to our session tag.

    The set-up introduces 40 contacts within seconds, far beyond what the first-contact budget
    answers on one path: each friend's handshake comes by a path of its own here.
    """
    source = Source(f"set-up {owner.own_handle()} {friend.own_handle()}")
    owner_at_friend = friend.add_contact(owner.own_card_text(), "Owner", now).id
    friend_at_owner = owner.add_contact(friend.own_card_text(), "Friend", now).id
    friend.send_text(owner_at_friend, "hello", now)
    _pump(friend, owner, friend.take_outgoing(), now, source)
    if not owner.conversation(friend_at_owner):
        raise RuntimeError("the handshake with a friend did not complete")
    if write_back:
        friend.send_text(owner_at_friend, "on your session tag", now + 1)
        _pump(friend, owner, friend.take_outgoing(), now + 1, source)


def junk_cost_ms(owner: Messenger, now: float) -> float:
    """Median over ROUNDS of the CPU time per junk intro-tag envelope, in ms."""
    rounds = []
    for _ in range(ROUNDS):
        junk = [junk_ratchet(intro_tag(owner.own_card_text(), now), now) for _ in range(JUNK)]
        started = time.process_time()
        for packet in junk:
            owner.handle_packet(packet, now)
        rounds.append((time.process_time() - started) / JUNK * 1000)
    return statistics.median(rounds)


def bench_messenger(root: Path) -> dict[str, Any]:
    friends = [_endpoint(root / f"friend{i}", 100 + i) for i in range(max(CONTACTS))]
    results: dict[str, Any] = {}
    for number, state in enumerate(("settled", "recent", "waiting")):
        figures = {}
        for count in CONTACTS:
            owner = _endpoint(root / f"owner-{state}-{count}", 1 + 10 * number + count)
            for friend in friends[:count]:  # each owner is a new contact of the friend's
                befriend(owner, friend, T0, write_back=state != "waiting")
            now = T0 + 2 * DAY_S if state == "settled" else T0 + 10
            figures[f"contacts_{count}_ms"] = round(junk_cost_ms(owner, now), 3)
        ratio = figures[f"contacts_{max(CONTACTS)}_ms"] / figures[f"contacts_{min(CONTACTS)}_ms"]
        figures["ratio_40_to_1"] = round(ratio, 2)
        results[state] = figures
    return results


# -- (b) a real node, its page and its relay ----------------------------------------------------


async def launch_relay(data_dir: Path, log: Path) -> tuple[asyncio.subprocess.Process, str, str]:
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pigeon.cli",
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--data",
            str(data_dir),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    for _ in range(1000):
        found = LISTENING.findall(await asyncio.to_thread(log.read_text, errors="replace"))
        if found:
            host, port = found[-1]
            return process, f"ws://{host}:{port}/v1", f"http://{host}:{port}"
        await asyncio.sleep(0.02)
    process.kill()
    raise RuntimeError("the relay did not start")


def relay_metric(http: str, name: str) -> int:
    with urllib.request.urlopen(f"{http}/metrics", timeout=5) as response:
        text = response.read().decode()
    match = re.search(rf"^\S*{name}\S* (\d+)", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


class Poller(threading.Thread):
    """Polls the page's status API over one kept-alive HTTPS connection (as a browser does)
    from its own thread; keeps each request's latency."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self._connection = http.client.HTTPSConnection("127.0.0.1", port, context=context)
        self._headers = headers
        self.latencies_ms: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                started = time.perf_counter()
                self._connection.request("GET", "/api/status", headers=self._headers)
                response = self._connection.getresponse()
                response.read()
                assert response.status == 200, response.status
                self.latencies_ms.append((time.perf_counter() - started) * 1000)
                time.sleep(POLL_GAP_S)
        finally:
            self._connection.close()


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "requests": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(ordered[-1], 2),
    }


def deposit_junk(url: str, owner_key: bytes, card_text: str) -> float:
    """Deposit JUNK_RELAY junk envelopes in the owner's mailbox (a thread's own loop)."""

    async def go() -> float:
        client = RelayClient(url)
        started = time.monotonic()
        try:
            for index in range(JUNK_RELAY):
                now = time.time()
                tag = intro_tag(card_text, now)
                packet = junk_hello(tag, now) if index % 10 == 9 else junk_ratchet(tag, now)
                while True:
                    try:
                        await client.deposit(owner_key, packet.packet_id, encode_packet(packet))
                        break
                    except RelayBusy as exc:
                        await asyncio.sleep(max(exc.retry_after_s, 0.05))
        finally:
            await client.aclose()
        return time.monotonic() - started

    return asyncio.run(go())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def node_config(root: Path, relay_url: str) -> NodeConfig:
    return NodeConfig(
        node=NodeSection(name="pigeon-junk", data_dir=str(root / "node")),
        radio=RadioSection(kind="sim"),
        display=DisplaySection(kind="none"),
        buttons=ButtonsSection(kind="none"),
        relays=RelaysSection(urls=(relay_url,)),
        web=WebSection(host="127.0.0.1", https_port=free_port(), http_port=free_port()),
    )


async def _until(predicate: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


async def bench_node(root: Path, *, written_back: bool) -> dict[str, Any]:
    relay, relay_url, relay_http = await launch_relay(root / "relay", root / "relay.log")
    medium = SimMedium(RadioParams(), random.Random(1))  # alone on its radio
    env = NodeEnvironment(medium, notifier=Notifier({}), selftest=False, web=True)
    node = Node(node_config(root, relay_url), env)
    stop = asyncio.Event()
    running = asyncio.create_task(node.run(stop))
    try:
        await _until(lambda: node.ready.is_set() and not node.messenger.is_locked)
        await _until(lambda: any(r.state is RelayState.CONNECTED for r in node.board.relays))
        friends = [_endpoint(root / f"node-friend{i}", 300 + i) for i in range(max(CONTACTS))]
        for friend in friends:
            befriend(node.messenger, friend, time.time(), write_back=written_back)
        now = time.time()
        token = node.pairing.submit(node.pairing.start(now), now, "bench")
        assert node.web_ports is not None
        base = f"https://127.0.0.1:{node.web_ports[0]}"
        headers = {"Cookie": f"{COOKIE_NAME}={token}", "Origin": base}
        await asyncio.sleep(SETTLE_S)  # the setup's events are processed, its packets sent
        idle = Poller(node.web_ports[0], headers)
        idle.start()
        await asyncio.sleep(IDLE_POLL_S)
        idle.stop.set()
        await asyncio.to_thread(idle.join)
        loaded = Poller(node.web_ports[0], headers)
        loaded.start()
        card = node.messenger.own_card_text()
        owner_key = ContactCard.from_text(card).mailbox_key
        started = time.monotonic()
        deposit_s = await asyncio.to_thread(deposit_junk, relay_url, owner_key, card)
        await _until(lambda: relay_metric(relay_http, "envelopes_deleted_total") >= JUNK_RELAY, 600)
        drained_s = time.monotonic() - started
        loaded.stop.set()
        await asyncio.to_thread(loaded.join)
        stats = dict(node.messenger.stats)
        return {
            "contacts": len(friends),
            "junk_envelopes": JUNK_RELAY,
            "deposit_s": round(deposit_s, 2),
            "all_read_and_acknowledged_s": round(drained_s, 2),
            "status_idle": summary(idle.latencies_ms),
            "status_while_junk_arrives": summary(loaded.latencies_ms),
            "session_tries": stats.get("session_tries", 0),
            "hellos_over_budget": stats.get("first_contact_over_budget", 0),
            "messenger_stats": dict(sorted(stats.items())),
        }
    finally:
        stop.set()
        await running
        relay.terminate()
        await relay.wait()


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        messenger = bench_messenger(root / "a")
        print(json.dumps(messenger, indent=2), flush=True)
        node = {}
        for name, written_back in (("contacts_recent", True), ("contacts_waiting", False)):
            (root / name).mkdir()
            node[name] = asyncio.run(bench_node(root / name, written_back=written_back))
            print(json.dumps(node[name], indent=2), flush=True)
    result = {
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "junk_intro_tag_envelope_cpu": messenger,
        "node_status_api_while_relay_junk": node,
    }
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
