"""`pigeon demo`: a simulated neighbourhood in one process, for `make run`.

On one simulated radio (50 m range): your node at 0 m (web page on https://localhost:8443,
OLED in the page's device panel, virtual buttons), three relay-only nodes at 40, 80 and 120 m,
and a second owner's node ("Robin") at 160 m, out of your range, whose scripted owner answers
every message. Two scripted Pigeon-app phones, 45 m either side of your node and out of each
other's range, chat through your node's app-mesh service every half minute; two scripted bitchat
phones, placed the same way, chat in bitchat's public chat through your node's bitchat service
(the Node page counts it; bitchat's public chat is public by design). A mailbox relay
listens on loopback and both owners' nodes use it, also as their app relay (`/ws`), so the
demo never publishes to the internet. The banner
says what state your node is in and which steps are left (`demo_banner`); the first pairing
code is printed there, as the OLED shows it, and typing `pair` prints a new one (you cannot
reach the device panel's buttons before your browser is paired); `robin` shows Robin's side
(`demo_console`). When your vault is bound to a passphrase, the demo says so and waits until
you unlock it on the page. Ctrl-C stops everything cleanly. State lives in `--data` (kept
between runs unless `--fresh`), so a paired browser stays paired.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, NamedTuple

from pigeon.appmesh.envelope import EnvelopeType
from pigeon.config import (
    AppMeshSection,
    ButtonsSection,
    DisplaySection,
    NodeConfig,
    NodeSection,
    RadioSection,
    RelaysSection,
    WebSection,
)
from pigeon.crypto.signing import SigningKey
from pigeon.daemon.demo_banner import ROBIN, DemoState, RobinContact, banner, locked_banner
from pigeon.daemon.demo_console import DemoConsole
from pigeon.daemon.mesh_driver import MeshDriver
from pigeon.daemon.node import Node, NodeEnvironment
from pigeon.daemon.sdnotify import Notifier
from pigeon.mesh.router import Router, RouterConfig
from pigeon.messenger.api import LockChanged, MessageAdded, MessageView, MessengerError, Resync
from pigeon.relay.config import RelayConfig
from pigeon.relay.server import start_relay
from pigeon.sim.app_phone import APP_SERVICE, PHONE_VALUE_LENGTH, AppPhone
from pigeon.sim.bitchat_phone import BITCHAT_SERVICE, PHONE_FRAME_LIMIT, BitchatPhone
from pigeon.transport.sim import RadioParams, SimMedium

_LOGGER = logging.getLogger(__name__)

HELP = "run a simulated neighbourhood: your node's web page on https://localhost:8443"

RANGE_M: Final = 50.0
RELAY_POSITIONS: Final = ((40.0, 0.0), (80.0, 0.0), (120.0, 0.0))
ROBIN_POSITION: Final = (160.0, 0.0)
ROBIN_NAME: Final = ROBIN  # one name in the banner, the console and his card
YOU_NAME: Final = "You (demo)"
START_TIMEOUT_S: Final = 60.0
APP_PHONE_POSITIONS: Final = ((-45.0, 0.0), (45.0, 0.0))  # each in your node's range only
APP_CHAT_S: Final = 30.0
BITCHAT_CHAT_S: Final = 20.0
BITCHAT_LINES: Final = (
    ("juno", "anyone at the market today?"),
    ("kai", "yes, by the bakery until noon"),
    ("juno", "see you there"),
    ("kai", "the bridge is closed, take the ferry"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `pigeon demo`."""
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("build/demo"),
        metavar="DIR",
        help="state directory, kept between runs (default: %(default)s)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="forget earlier runs first (default: keep them)"
    )
    parser.add_argument(
        "--https-port", type=int, default=8443, help="your page's HTTPS port (default: %(default)s)"
    )
    parser.add_argument(
        "--http-port",
        type=int,
        default=8080,
        help="plain HTTP, redirects to HTTPS (default: %(default)s)",
    )
    parser.add_argument(
        "--relay-port",
        type=int,
        default=8765,
        help="the loopback mailbox relay's port (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the neighbourhood until Ctrl-C."""
    if args.fresh and args.data.exists():
        shutil.rmtree(args.data)
    args.data.mkdir(parents=True, exist_ok=True)
    ports = (args.https_port, args.http_port, args.relay_port)
    return asyncio.run(_main(args.data.resolve(), ports))


def owner_config(
    data_dir: Path, name: str, relay_url: str, ports: tuple[int, int], *, screens: bool
) -> NodeConfig:
    """A node on the simulated radio; `screens`: PNG display and virtual buttons."""
    return NodeConfig(
        node=NodeSection(name=name, data_dir=str(data_dir)),
        radio=RadioSection(kind="sim"),
        display=DisplaySection(kind="png" if screens else "none"),
        buttons=ButtonsSection(kind="virtual" if screens else "none"),
        web=WebSection(host="127.0.0.1", https_port=ports[0], http_port=ports[1]),
        relays=RelaysSection(urls=(relay_url,)),
        appmesh=AppMeshSection(relays=(app_relay_url(relay_url),), relay_private_addresses=True),
    )


def app_relay_url(relay_url: str) -> str:
    """The Pigeon app's endpoint (`/ws`) of the `pigeon relay` whose `/v1` URL is `relay_url`."""
    return relay_url.removesuffix("/v1") + "/ws"


async def run_app_phones(medium: SimMedium, chat_s: float = APP_CHAT_S) -> None:
    """Two scripted app phones: one sends the other a (fake) Olm message, the other acks it."""
    rng = random.Random()
    phones = [AppPhone(SigningKey.generate().public_key, rng) for _ in APP_PHONE_POSITIONS]
    for number, (phone, (x, y)) in enumerate(zip(phones, APP_PHONE_POSITIONS, strict=True)):
        radio = medium.transport(
            f"app-phone-{number}", x, y, service=APP_SERVICE, frame_limit=PHONE_VALUE_LENGTH
        )
        await phone.start(radio)
    sender, receiver = phones
    try:
        while True:
            await asyncio.sleep(chat_s)
            await sender.send(receiver.key, rng.randbytes(180))
            await receiver.send(sender.key, b"", EnvelopeType.ACK)
    finally:
        for phone in phones:
            await phone.aclose()


async def run_bitchat_phones(medium: SimMedium, chat_s: float = BITCHAT_CHAT_S) -> None:
    """Two scripted bitchat phones out of each other's range chat in public through your node."""
    rng = random.Random()
    phones = {name: BitchatPhone(name, rng) for name in ("juno", "kai")}
    for number, (phone, (x, y)) in enumerate(
        zip(phones.values(), APP_PHONE_POSITIONS, strict=True)
    ):
        radio = medium.transport(
            f"bitchat-phone-{number}", x, y, service=BITCHAT_SERVICE, frame_limit=PHONE_FRAME_LIMIT
        )
        await phone.start(radio)
    try:
        line = 0
        while True:
            await asyncio.sleep(chat_s)
            name, text = BITCHAT_LINES[line % len(BITCHAT_LINES)]
            await phones[name].announce()  # phones announce again from time to time
            await asyncio.sleep(0.5)
            await phones[name].say(text)
            line += 1
    finally:
        for phone in phones.values():
            await phone.aclose()


async def run_relay_node(medium: SimMedium, name: str, position: tuple[float, float]) -> None:
    """A node that only relays: a router on the medium, nothing stored."""
    driver = MeshDriver(Router(RouterConfig(), random.Random()))
    await driver.run(medium.transport(name, *position))


class ScriptedPeer:
    """Robin's owner: adds you as a contact (again after an identity reset), then answers every
    message."""

    def __init__(
        self,
        robin: Node,
        you: Node,
        relays: tuple[str, ...] = (),
        on_answer: Callable[[MessageView, str], None] = lambda received, reply: None,
    ) -> None:
        self._robin = robin
        self._you = you
        self._relays = relays  # put in Robin's card: verified contacts deposit there too
        self._on_answer = on_answer
        self.befriended = asyncio.Event()  # set once Robin knows your (current) card
        self.answered = 0
        self._last_answered: dict[str, int] = {}  # contact id -> seq of the last message answered

    async def run(self) -> None:
        """Wait for both vaults, exchange cards, then echo until cancelled."""
        await self._robin.ready.wait()
        await self._you.ready.wait()
        robin = self._robin.messenger
        await _until(lambda: not robin.is_locked and not self._you.messenger.is_locked)
        robin.set_profile(ROBIN_NAME, self._relays)
        self._befriend_you()
        for contact in robin.contacts():  # messages of an earlier run were answered then
            latest = robin.conversation(contact.id, limit=1)
            self._last_answered[contact.id] = latest[-1].seq if latest else -1
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        subscription = robin.subscribe(wakeup=wake.set)

        # Your vault opens in a worker thread (also after an identity reset): wake thread-safely.
        def wake_from_any_thread() -> None:
            loop.call_soon_threadsafe(wake.set)

        yours = self._you.messenger.subscribe(wakeup=wake_from_any_thread)
        try:
            while True:
                await wake.wait()
                wake.clear()
                if any(isinstance(e, LockChanged) and not e.locked for e in yours.drain()):
                    self._befriend_you()  # a reset gave you a new identity
                for event in subscription.drain():
                    if isinstance(event, MessageAdded) and event.message.direction == "in":
                        self._answer(event.message)
                    elif isinstance(event, Resync):  # fell behind a burst: look, answer the rest
                        self._answer_unanswered()
        finally:
            subscription.close()
            yours.close()

    def _befriend_you(self) -> None:
        """Robin adds your current card, unless Robin knows it already."""
        you = self._you.messenger
        if you.is_locked:
            return
        try:
            if you.own_handle() not in {c.id for c in self._robin.messenger.contacts()}:
                you.set_profile(YOU_NAME, ())
                self._robin.messenger.add_contact(you.own_card_text(), YOU_NAME, time.time())
        except MessengerError as exc:
            _LOGGER.warning("the scripted peer could not add your card: %s", exc)
            return
        self.befriended.set()

    def _answer_unanswered(self) -> None:
        robin = self._robin.messenger
        try:
            for contact in robin.contacts():
                for message in robin.conversation(contact.id, limit=500):
                    if message.direction == "in":
                        self._answer(message)
        except MessengerError as exc:
            _LOGGER.warning("the scripted peer could not catch up: %s", exc)

    def _answer(self, message: MessageView) -> None:
        contact_id = message.contact_id
        if message.seq <= self._last_answered.get(contact_id, -1):
            return  # answered already (a catch-up after a burst sees it again)
        if message.file_name is not None:
            reply = f"Thanks, {ROBIN_NAME} got your file {message.file_name!r}."
        else:
            reply = f"{ROBIN_NAME} got: {message.text or ''}"[:4000]
        try:
            self._robin.messenger.send_text(contact_id, reply, time.time())
        except MessengerError as exc:
            _LOGGER.warning("the scripted peer could not answer: %s", exc)
            return
        self._last_answered[contact_id] = message.seq
        self.answered += 1
        self._on_answer(message, reply)


async def _until(predicate: Callable[[], bool], poll_s: float = 0.1) -> None:
    """Poll `predicate` (the states it reads have no events of their own)."""
    while not predicate():  # noqa: ASYNC110
        await asyncio.sleep(poll_s)


async def _main(root: Path, ports: tuple[int, int, int]) -> int:
    https_port, http_port, relay_port = ports
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    relay_config = RelayConfig(listen=f"127.0.0.1:{relay_port}", data_dir=str(root / "relay"))
    relay = await start_relay(relay_config)
    medium = SimMedium(RadioParams(range_m=RANGE_M), random.Random())
    quiet = Notifier({})
    you = Node(
        owner_config(root / "you", "pigeon-demo", relay.url, (https_port, http_port), screens=True),
        NodeEnvironment(medium, (0.0, 0.0), quiet, page_host="localhost"),
    )
    robin = Node(
        owner_config(root / "robin", "pigeon-robin", relay.url, (1, 2), screens=False),
        NodeEnvironment(medium, ROBIN_POSITION, quiet, selftest=False, web=False),
    )
    console = DemoConsole(you, robin)
    peer = ScriptedPeer(robin, you, (relay.url,), on_answer=console.robin_answered)
    try:
        async with asyncio.TaskGroup() as group:
            nodes = [group.create_task(node.run(stop)) for node in (you, robin)]
            extras = [
                group.create_task(run_relay_node(medium, f"relay-{i}", position))
                for i, position in enumerate(RELAY_POSITIONS, start=1)
            ]
            extras.append(group.create_task(peer.run()))
            extras.append(group.create_task(console.run()))
            extras.append(group.create_task(run_app_phones(medium)))
            extras.append(group.create_task(run_bitchat_phones(medium)))
            # A task of its own: Ctrl-C must stop the demo also while it waits for you.
            demo = Demo(you, robin, peer, console, relay.url)
            extras.append(group.create_task(_start_and_greet(demo, stop)))
            await stop.wait()
            for task in extras:
                task.cancel()
        codes = [task.result() for task in nodes]
    finally:
        await relay.aclose()
    print("demo stopped")
    return max(codes)


class Demo(NamedTuple):
    """The parts the greeting looks at."""

    you: Node
    robin: Node
    peer: ScriptedPeer
    console: DemoConsole
    relay_url: str


async def _start_and_greet(demo: Demo, stop: asyncio.Event) -> None:
    """Wait for the nodes (60 s at most), then for your passphrase if the vault needs it (as
    long as it takes), then print where things stand."""
    you = demo.you
    try:
        await asyncio.wait_for(_started(demo), START_TIMEOUT_S)
    except TimeoutError:
        print("the demo did not start in time; see the log above", flush=True)
        stop.set()
        return
    if you.messenger.is_locked:
        code = None if you.pairing.is_paired() else demo.console.open_pairing()
        print(locked_banner(you.web_url, code), flush=True)
        await _until(lambda: not you.messenger.is_locked)
    try:
        await asyncio.wait_for(demo.peer.befriended.wait(), START_TIMEOUT_S)
    except TimeoutError:
        _LOGGER.warning("Robin's node has not added your card yet")
    code = None if you.pairing.is_paired() else demo.console.open_pairing()
    print(banner(demo_state(demo, code)), flush=True)


async def _started(demo: Demo) -> None:
    """Both nodes run, Robin's vault is open, and yours is open or waits for your passphrase."""
    await demo.you.ready.wait()
    await demo.robin.ready.wait()
    await demo.you.endpoint.vault_opened.wait()
    await _until(lambda: not demo.robin.messenger.is_locked)


def demo_state(demo: Demo, code: str | None) -> DemoState:
    """A snapshot of the demo for the banner."""
    you, robin = demo.you, demo.robin
    try:
        contact = you.messenger.contact(robin.messenger.own_handle())
        robin_contact = RobinContact.VERIFIED if contact.verified else RobinContact.UNVERIFIED
    except MessengerError:
        robin_contact = RobinContact.ABSENT
    return DemoState(
        page_url=you.web_url,
        cert_fingerprint=you.cert.fingerprint_text(),
        relay_url=demo.relay_url,
        robin_card=robin.messenger.own_card_text(),
        paired_browsers=len(you.pairing.sessions()),
        device_bound=you.messenger.device_bound,
        robin_contact=robin_contact,
        robin_safety_number=demo.console.robin_safety_number(),
        pairing_code=code,
    )
