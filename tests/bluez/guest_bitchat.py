"""VM tier steps for bitchat's service (run by guest_ble.py inside the VM).

A node on hci2 runs our BleTransport and bitchat's BitchatBleTransport together (as the daemon's
radio part does, from `ble_transports`), with the daemon's `BitchatDriver` and `BitchatRouter`
relaying and announcing the node's own bitchat identity. Two clients no one here wrote, PyPI's
`bitchat-cli` 0.2.3 on hci0 and hci1 (driven by tests/bluez/bitchat_client.py, one process
each), are central-only, so they reach each other only through the node: a public message
typed into one appears in the other, both ways, its Ed25519 signature valid over the forwarded
bytes and only the TTL one lower; the node hears both (what the owner's Neighbourhood page
shows), and a message the owner posts reaches both. Last, the node dials a scripted bitchat
phone that advertises (bitchat_peer.py): the central role, writes without response.

Both clients are connected at once: the rig's btvirt gives both ends of a link one handle
(tests/bluez/build-btvirt.sh; stock btvirt handed the node a handle it already used).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pigeon.bitchat import packet as wire
from pigeon.bitchat.chat import PublicChat
from pigeon.bitchat.identity import BitchatIdentity
from pigeon.bitchat.router import BitchatRouter
from pigeon.daemon.bitchat_driver import BitchatDriver
from pigeon.transport.ble.bitchat import BitchatBleTransport
from pigeon.transport.ble.transport import BleConfig, BleTransport, ble_transports
from pigeon.transport.conformance import RecordingSink
from tests.bluez.bitchat_peer import BitchatPeripheral
from tests.bluez.rig_gatt import power_on, until

CLIENT = Path(__file__).with_name("bitchat_client.py")
LINK_WAIT_S = 90.0  # a scan, a connect and GATT discovery under software emulation, twice
MESSAGE_WAIT_S = 30.0
DIAL_WAIT_S = 90.0
QUIT_WAIT_S = 15.0
CLIENT_STARTS = 2
NODE_NICKNAME = "pigeon-vm"
NOTIFY_GAP_S = 0.1
ANNOUNCE_WAIT_S = 75.0  # bitchat-cli announces when it links and every 30 s while linked


class Client:
    """One bitchat-cli process on one adapter, and what it reported."""

    def __init__(self, adapter: str, nickname: str, log: Path) -> None:
        self.adapter = adapter
        self.nickname = nickname
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self._log = log
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await power_on(self.adapter)
        self.events.clear()  # a restarted client is a new bitchat-cli, with a new identity
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(CLIENT),
            self.adapter,
            self.nickname,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
        )
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self.until(lambda: bool(self.of("ready")), 30, "bitchat-cli to start")

    async def _read(self) -> None:
        assert self._process is not None
        stdout = self._process.stdout  # `quit` forgets the process while this drains it
        assert stdout is not None
        with self._log.open("a") as log:
            while line := await stdout.readline():
                text = line.decode(errors="replace").rstrip("\n")
                if text.startswith("@@ "):
                    self.events.append(json.loads(text[3:]))
                    self.changed.set()
                else:
                    log.write(f"{time.strftime('%H:%M:%S')} {text}\n")
                    log.flush()

    def of(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]

    @property
    def peer_id(self) -> bytes:
        return bytes.fromhex(self.of("ready")[0]["peer_id"])

    def links(self) -> list[str]:
        links = self.of("links")
        return links[-1]["addresses"] if links else []

    def frames(self) -> list[bytes]:
        return [bytes.fromhex(e["hex"]) for e in self.of("frame")]

    def heard(self) -> list[tuple[str, str]]:
        """(sender, text) of every chat line from someone else."""
        return [
            (e["sender"], e["text"]) for e in self.of("message") if e["sender"] != self.nickname
        ]

    async def until(self, done: Callable[[], bool], within_s: float, what: str) -> None:
        await until(self.changed, done, within_s, f"{self.nickname} on {self.adapter}: no {what}")

    async def say(self, text: str) -> None:
        await self._command({"say": text})
        await self.until(lambda: any(e["text"] == text for e in self.of("said")), 30, "said")

    async def _command(self, command: dict[str, Any]) -> None:
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.write((json.dumps(command) + "\n").encode())
        await self._process.stdin.drain()

    async def quit(self) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        with contextlib.suppress(Exception):
            assert process.stdin is not None
            process.stdin.write(b'{"quit": true}\n')
            await process.stdin.drain()
        try:
            async with asyncio.timeout(QUIT_WAIT_S):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


class Node:
    """The node on hci2: our transport and bitchat's, the daemon's bitchat driver."""

    def __init__(self) -> None:
        # bitchat-cli reads notifications through StartNotify (bleak's default), whose Value
        # signals bluetoothd may merge when two come close together; under software emulation
        # the node's 15 ms gap is not always enough, so the rig's node spaces them wider.
        config = BleConfig(adapter="hci2", notify_min_gap_s=NOTIFY_GAP_S)
        services = ble_transports(config, rng=random.Random(7), app=False, bitchat=True)
        assert services.bitchat is not None
        self.ble: BleTransport = services.mesh
        self.bitchat: BitchatBleTransport = services.bitchat
        self.identity = BitchatIdentity.generate(os.urandom)
        router = BitchatRouter(self.identity.peer_id, random.Random(8))
        self.driver = BitchatDriver(router, self.identity, NODE_NICKNAME)
        self._run: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._run = asyncio.get_running_loop().create_task(self.driver.run(self.bitchat))
        await asyncio.sleep(0)  # the driver names itself the bitchat transport's sink first
        await self.ble.start(RecordingSink())

    async def until_links(self, done: Callable[[dict[str, str]], bool], within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while not done(self.bitchat.links()):
            if time.monotonic() > deadline:
                raise AssertionError(f"node: bitchat links {self.bitchat.links()}")
            await asyncio.sleep(0.2)

    async def aclose(self) -> None:
        if self._run is not None:
            self._run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._run
        await self.ble.aclose()


def _check_relayed(
    frames: list[bytes], sender: bytes, signing_key_hex: str, text: str, where: str
) -> str:
    """The client received `sender`'s announce and its message `text`, relayed by the node with
    only the TTL one lower, and the signature verifies over the bytes it received."""
    chat = PublicChat()
    announces = [f for f in frames if _is(f, wire.ANNOUNCE, sender)]
    messages = [f for f in frames if _is(f, wire.MESSAGE, sender)]
    assert announces, f"{where}: the sender's announce never arrived"
    assert messages, f"{where}: the message never arrived"
    for announce in announces:
        chat.receive(announce)  # checks the peer id against its key and the signature
    heard = [m for m in (chat.receive(f) for f in messages) if m is not None]
    assert [m.text for m in heard] == [text], f"{where}: verified {heard}"
    view = wire.parse(messages[0])
    assert view.ttl == 6, f"{where}: TTL {view.ttl}, sent at 7"
    # And checked by code no one here wrote: bitchat-cli's decoder rebuilds what its sender
    # signed (TTL 0, no signature, padded) from the forwarded bytes; libsodium verifies it under
    # the key the sending client reported.
    from bitchat_cli.protocol import BitchatPacket
    from nacl.signing import VerifyKey

    decoded = BitchatPacket.decode(messages[0])
    assert decoded is not None, f"{where}: bitchat-cli cannot decode what the node forwarded"
    assert decoded.signature is not None, f"{where}: unsigned"
    VerifyKey(bytes.fromhex(signing_key_hex)).verify(decoded.data_for_signing(), decoded.signature)
    return f"{len(messages[0])} bytes at TTL {view.ttl}, signature valid"


def _is(frame: bytes, kind: int, sender: bytes) -> bool:
    try:
        view = wire.parse(frame)
    except ValueError:
        return False
    return view.type == kind and view.sender == sender


class BitchatRig:
    """The node and the two bitchat-cli clients."""

    def __init__(self, out: Path) -> None:
        self.node = Node()
        self.anna = Client("hci0", "anna", out / "bitchat-anna.log")
        self.ben = Client("hci1", "ben", out / "bitchat-ben.log")

    async def link(self) -> str:
        await self.node.start()
        restarts = [await self._start_linked(self.anna, 1), await self._start_linked(self.ben, 2)]
        return (
            f"node's bitchat links {self.node.bitchat.links()}; anna on hci0 links "
            f"{self.anna.links()}, ben on hci1 links {self.ben.links()}; bitchat-cli restarts "
            f"{restarts}"
        )

    async def _start_linked(self, client: Client, links: int) -> int:
        """Start `client` until the node has `links` bitchat links; return the restarts.

        bitchat-cli gives a device up for good after three failed connects (15 s each, bleak's
        10 s connect timeout inside), and btvirt sometimes drops a connection during service
        discovery: then the client is started again, as its user would."""
        for restart in range(CLIENT_STARTS):
            await client.start()
            try:
                await self.node.until_links(lambda now: len(now) >= links, LINK_WAIT_S)
                await client.until(lambda: bool(client.links()), LINK_WAIT_S, "link")
                return restart
            except AssertionError:
                if restart == CLIENT_STARTS - 1:
                    raise
                await client.quit()
        raise AssertionError("unreachable")

    async def cross(self) -> str:
        anna, ben = self.anna, self.ben
        there, back = "hello from hci0 through the node", "and back from hci1"
        # Each first hears the other's announce through the node (anna announced before ben
        # linked: her next one comes within 30 s), so each shows the other by nickname and the
        # check below knows the signing key from the announce it received.
        for client, other in ((ben, anna), (anna, ben)):
            await client.until(
                lambda c=client, o=other: any(_is(f, wire.ANNOUNCE, o.peer_id) for f in c.frames()),
                ANNOUNCE_WAIT_S,
                f"announce of {other.nickname}",
            )
        await anna.say(there)
        await ben.until(lambda: any(t == there for _, t in ben.heard()), MESSAGE_WAIT_S, "message")
        first = _check_relayed(
            ben.frames(), anna.peer_id, anna.of("ready")[0]["signing_key"], there, "ben"
        )
        await ben.say(back)
        await anna.until(lambda: any(t == back for _, t in anna.heard()), MESSAGE_WAIT_S, "back")
        second = _check_relayed(
            anna.frames(), ben.peer_id, ben.of("ready")[0]["signing_key"], back, "anna"
        )
        return (
            f"hci0->hci1: {first}; hci1->hci0: {second}; ben shows {ben.heard()}, anna shows "
            f"{anna.heard()}; router {dict(self.node.driver.router.counters)}"
        )

    async def owner(self) -> str:
        heard = {(m.nickname, m.text) for m in self.node.driver.heard}
        want = {("anna", "hello from hci0 through the node"), ("ben", "and back from hci1")}
        assert want <= heard, f"the node heard {heard}"
        speaker = BitchatIdentity.generate(os.urandom)  # the page's own speaker identity
        text = "hello from the node's owner"
        self.node.driver.post(speaker, "owner", text)
        for client in (self.anna, self.ben):
            await client.until(
                lambda c=client: any(t == text for _, t in c.heard()), MESSAGE_WAIT_S, "post"
            )
        clients = (self.anna, self.ben)
        shown = {c.nickname: [ln for ln in c.heard() if ln[1] == text] for c in clients}
        return f"the node heard {sorted(heard)}; the owner's post reached {shown}"

    async def aclose(self) -> None:
        for client in (self.anna, self.ben):
            await client.quit()


async def node_dials(node: Node) -> str:
    """The node dials a bitchat phone that advertises, writes without response, hears it."""
    phone = BitchatPeripheral("hci0")
    talker = BitchatIdentity.generate(os.urandom)
    await phone.start()
    try:
        await node.until_links(lambda links: "central" in links.values(), DIAL_WAIT_S)
        await phone.wait_subscribed(10)
        await phone.until(lambda: bool(phone.written), 30, "the node's announce")
        announce = wire.parse(phone.written[0])
        assert (announce.type, announce.sender) == (wire.ANNOUNCE, node.identity.peer_id)
        # Without response, as bitchat writes, where BlueZ says (5.66 does not; the node's
        # choice is checked in tests/transport/ble/test_phonecentral.py).
        assert phone.write_kinds <= {"command", "unreported"}, phone.write_kinds
        stamp = int(time.time() * 1000)
        await phone.notify(talker.announce("dialed", stamp))
        await phone.notify(talker.public_message("a phone the node dialed", stamp))
        deadline = time.monotonic() + 30
        while not any(m.text == "a phone the node dialed" for m in node.driver.heard):
            assert time.monotonic() < deadline, f"the node heard {node.driver.heard}"
            await asyncio.sleep(0.2)
        return (
            f"node links {node.bitchat.links()}; it wrote {[len(v) for v in phone.written]} "
            f"bytes ({sorted(phone.write_kinds)}) and heard the phone's message"
        )
    finally:
        await phone.close()


async def bitchat_steps(
    step: Callable[[str, Callable[[], Awaitable[str]]], Awaitable[bool]],
    forget: Callable[[], Awaitable[None]],
    out: Path,
) -> None:
    """Every bitchat step, in order; `step(name, body)` records one."""
    await forget()  # the clients meet the node as strangers
    rig = BitchatRig(out)
    try:
        linked = await step("bitchat clients link through a node", rig.link)
        crossed = linked and await step("bitchat public messages cross a node both ways", rig.cross)
        if crossed:
            await step("bitchat: the node hears both and the owner's post reaches both", rig.owner)
        await rig.aclose()
        await forget()
        await step("bitchat: the node dials a bitchat phone", lambda: node_dials(rig.node))
    finally:
        try:
            await rig.aclose()
            await rig.node.aclose()
        except Exception:  # a failed close must not hide the steps' results
            logging.getLogger(__name__).exception("closing the bitchat rig failed")
