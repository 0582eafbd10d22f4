"""Junk from strangers who hold the owner's card, written to bench/results/junk.json.

(a) CPU cost of one junk envelope on the owner's intro tag, with 1 and with 40 contacts, each
    handled alone (one vault transaction, as the daemon handles a delivery). process_time over
    JUNK envelopes, median of ROUNDS. Three kinds of junk (about 600 to 900 bytes as a packet):
      message  - an Olm-normal-message-shaped envelope of random bytes (dropped unread: only
                 pre-key messages are read on the intro tag);
      stranger - a real Olm pre-key message to the owner's card prekey from a stranger's
                 identity (dropped before any public-key work: it names no contact);
      forged   - a pre-key message naming a contact's (public) Olm identity and the owner's
                 fallback prekey, with random keys: the costliest, charged to the first-contact
                 budget and then one account operation; the budget is set wide open here so
                 every envelope pays the full price.
    Two states of the 40 contacts: settled (each opened a session and wrote on our session tag)
    and new (each opened a session with one pre-key message and has not written to our session
    tag: the state the old intro windows made costly).
(b) A real `pigeon node` in this process (sim radio, web page on loopback, 40 contacts, settled
    or new) reads its mailbox at a real `pigeon relay` subprocess while a thread deposits
    JUNK_RELAY junk envelopes there (eight in ten message junk, one in ten stranger pre-key
    messages, one in ten forged pre-key messages naming a contact). Another thread polls
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

from pigeon.config import (
    ButtonsSection,
    DisplaySection,
    NodeConfig,
    NodeSection,
    RadioSection,
    RelaysSection,
    WebSection,
)
from pigeon.crypto.app_bundle import AppIdentityBundle
from pigeon.crypto.card import ContactCard
from pigeon.daemon.node import Node, NodeEnvironment
from pigeon.daemon.sdnotify import Notifier
from pigeon.mesh.packet import Packet, encode_packet
from pigeon.messenger.addressing import address, intro_tag_key
from pigeon.messenger.api import Messenger
from pigeon.messenger.config import MessengerConfig
from pigeon.messenger.first_contact import FirstContactPolicy, Source
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import Argon2Params
from pigeon.transport.relay_client import RelayBusy, RelayClient
from pigeon.transport.sim import RadioParams, SimMedium
from pigeon.ui.web.ports import RelayState
from pigeon.ui.web.security import COOKIE_NAME

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.messenger.junk import forged_prekey, junk_message, stranger_prekey

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


def intro_tag(card_text: str, now: float) -> bytes:
    return address(intro_tag_key(ContactCard.from_text(card_text).mailbox_key), now)


def olm_identity(messenger: Messenger) -> AppIdentityBundle:
    prekey = ContactCard.from_text(messenger.own_card_text()).prekey
    if prekey is None:
        raise RuntimeError("a version 2 card carries a prekey")
    return prekey.identity


def make_junk(kind: str, card: str, contact: AppIdentityBundle, now: float) -> Packet:
    tag = intro_tag(card, now)
    if kind == "message":
        return junk_message(tag, now)
    if kind == "stranger":
        return stranger_prekey(card, tag, now)
    return forged_prekey(contact, card, tag, now)


# -- (a) the messenger alone --------------------------------------------------------------------


OPEN_BUDGET = MessengerConfig(
    first_contact=FirstContactPolicy(source_burst=1e9, path_burst=1e9, path_per_s=1e9)
)


def _endpoint(root: Path, seed: int, config: MessengerConfig | None = None) -> Messenger:
    data = DataDir(root)
    messenger = Messenger(
        VaultKeeper(data, argon2=CHEAP),
        open_spool(data),
        rng=random.Random(seed).randbytes,
        config=config,
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
    """The friend opens a session with one pre-key message (our answers are lost: the friend
    has not written to our session tag); with `write_back` the friend hears our answer and
    writes to our session tag.

    The set-up introduces 40 contacts within seconds, far beyond what the first-contact budget
    answers on one path: each friend's first message comes by a path of its own here.
    """
    source = Source(f"set-up {owner.own_handle()} {friend.own_handle()}")
    owner_at_friend = friend.add_contact(owner.own_card_text(), "Owner", now).id
    friend_at_owner = owner.add_contact(friend.own_card_text(), "Friend", now).id
    friend.send_text(owner_at_friend, "hello", now)
    answers = owner.handle_packets(friend.take_outgoing(), now, source)
    if not owner.conversation(friend_at_owner):
        raise RuntimeError("the first message of a friend did not open")
    if write_back:
        _pump(owner, friend, answers, now, source)
        friend.send_text(owner_at_friend, "on your session tag", now + 1)
        _pump(friend, owner, friend.take_outgoing(), now + 1, source)


def junk_cost_ms(owner: Messenger, kind: str, contact: AppIdentityBundle, now: float) -> float:
    """Median over ROUNDS of the CPU time per junk intro-tag envelope of `kind`, in ms."""
    card = owner.own_card_text()
    rounds = []
    for _ in range(ROUNDS):
        junk = [make_junk(kind, card, contact, now) for _ in range(JUNK)]
        started = time.process_time()
        for packet in junk:
            owner.handle_packet(packet, now, Source("relay", "ws://junk.example/v1"))
        rounds.append((time.process_time() - started) / JUNK * 1000)
    return statistics.median(rounds)


def bench_messenger(root: Path) -> dict[str, Any]:
    friends = [_endpoint(root / f"friend{i}", 100 + i) for i in range(max(CONTACTS))]
    results: dict[str, Any] = {}
    for number, state in enumerate(("settled", "new")):
        owners = {}
        for count in CONTACTS:
            owner = _endpoint(root / f"owner-{state}-{count}", 1 + 10 * number + count, OPEN_BUDGET)
            for friend in friends[:count]:  # each owner is a new contact of the friend's
                befriend(owner, friend, T0, write_back=state == "settled")
            owners[count] = owner
        for kind in ("message", "stranger", "forged"):
            figures = {}
            for count, owner in owners.items():
                contact = olm_identity(friends[count - 1])
                figures[f"contacts_{count}_ms"] = round(
                    junk_cost_ms(owner, kind, contact, T0 + 10), 3
                )
            low, high = (
                figures[f"contacts_{min(CONTACTS)}_ms"],
                figures[f"contacts_{max(CONTACTS)}_ms"],
            )
            figures["ratio_40_to_1"] = round(high / low, 2)
            results[f"{state}_{kind}"] = figures
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


def deposit_junk(url: str, owner_key: bytes, card_text: str, contact: AppIdentityBundle) -> float:
    """Deposit JUNK_RELAY junk envelopes in the owner's mailbox (a thread's own loop)."""
    now = time.time()
    kinds = [
        "stranger" if i % 10 == 8 else "forged" if i % 10 == 9 else "message"
        for i in range(JUNK_RELAY)
    ]
    packets = [make_junk(kind, card_text, contact, now) for kind in kinds]  # made beforehand

    async def go() -> float:
        client = RelayClient(url)
        started = time.monotonic()
        try:
            for packet in packets:
                while True:
                    try:
                        await client.deposit(owner_key, encode_packet(packet))
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
        contact = olm_identity(friends[0])
        deposit_s = await asyncio.to_thread(deposit_junk, relay_url, owner_key, card, contact)
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
            "prekeys_over_budget": stats.get("first_contact_over_budget", 0),
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
        for name, written_back in (("contacts_settled", True), ("contacts_new", False)):
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
