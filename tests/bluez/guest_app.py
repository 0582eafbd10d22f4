"""VM tier steps for the Pigeon app's service (run by guest_ble.py inside the VM).

A node on hci2 runs our BleTransport and the app's AppBleTransport together (as the daemon
does, from `ble_transports`), with `pigeon.appmesh`'s router forwarding between app links. A
scripted phone on hci0 advertises and is dialed by the node; another on hci1 dials the node.
Their packets cross the node both ways and must arrive byte for byte as sent but for the TTL
(one lower), in fragments sized as the app sizes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable

from pigeon.appmesh.events import FrameReceived, LinkDown, LinkUp, SendFrame, Tick
from pigeon.appmesh.router import AppRouter
from pigeon.transport import conformance
from pigeon.transport.base import Broken, Busy, Closed, LinkSink, PeerId
from pigeon.transport.ble import central
from pigeon.transport.ble.app import AppBleTransport, app_peer_id
from pigeon.transport.ble.transport import BleConfig, BleTransport, ble_transports
from pigeon.transport.conformance import RecordingSink
from tests.bluez.app_peer import (
    CentralPeer,
    PeripheralPeer,
    envelope,
    packet,
)
from tests.bluez.rig_gatt import adapter_address

LINK_WAIT_S = 60.0
TICK_S = 1.0
PHONE_FRAME_LIMIT = 157  # the scripted phone offers the app's smallest link
LINK_POLL_S = 0.2


def _node_pair(seed: int) -> tuple[BleTransport, AppBleTransport]:
    """The node's own transport and the app's on hci2 (bitchat's service is off here)."""
    services = ble_transports(BleConfig(adapter="hci2"), rng=random.Random(seed), bitchat=False)
    assert services.app is not None
    return services.mesh, services.app


class RouterSink:
    """A LinkSink that feeds the app router and carries out what it says."""

    def __init__(self, app: AppBleTransport) -> None:
        self.router = AppRouter()
        self.links: dict[PeerId, int] = {}
        self.changed = asyncio.Event()
        self.busy = 0
        self._app = app
        self._out: asyncio.Queue[SendFrame] = asyncio.Queue()
        self._tasks = [
            asyncio.get_running_loop().create_task(self._send_forever()),
            asyncio.get_running_loop().create_task(self._tick_forever()),
        ]

    def link_up(self, peer: PeerId, frame_limit: int) -> None:
        self.links[peer] = frame_limit
        self._handle(LinkUp(peer, frame_limit))

    def link_down(self, peer: PeerId, reason: str) -> None:
        self.links.pop(peer, None)
        self._handle(LinkDown(peer))

    def frame_received(self, peer: PeerId, frame: bytes) -> None:
        self._handle(FrameReceived(peer, frame))

    def _handle(self, event: LinkUp | LinkDown | FrameReceived | Tick) -> None:
        for action in self.router.handle(event, time.monotonic()):
            if isinstance(action, SendFrame):
                self._out.put_nowait(action)
        self.changed.set()

    async def _send_forever(self) -> None:
        while True:
            action = await self._out.get()
            while True:
                try:
                    await self._app.send(PeerId(action.link), action.frame)
                    break
                except Busy:
                    self.busy += 1
                    await asyncio.sleep(0.02)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self._handle(Tick())

    async def until_links(self, count: int, within_s: float, fewer: bool = False) -> None:
        """Wait for at least `count` app links (at most, if `fewer`)."""
        try:
            async with asyncio.timeout(within_s):
                while len(self.links) > count if fewer else len(self.links) < count:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"node: {len(self.links)} of {count} app links") from None

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class AppRig:
    """The node on hci2 and the two scripted phones.

    The phones pass the node in turn, as phones walking by do: what one leaves for the other
    is held by the router's short custody and handed over when the other links. (They did so
    first because stock btvirt gave the two ends of a link different handles; the rig's own
    btvirt, build-btvirt.sh, no longer does.)
    """

    def __init__(self) -> None:
        self.ble: BleTransport | None = None
        self.app: AppBleTransport | None = None
        self.sink: RouterSink | None = None
        self.dialed = PeripheralPeer("hci0")  # the node dials it
        self.dialing = CentralPeer("hci1")  # it dials the node
        self.rng = random.Random(15)
        self.key_dialed, self.key_dialing = self.rng.randbytes(32), self.rng.randbytes(32)
        self.there: list[bytes] = []
        self.there_sent: list[list[int]] = []
        self.node_address = ""

    async def link(self) -> str:
        self.ble, self.app = _node_pair(3)
        self.sink = RouterSink(self.app)
        await self.app.start(self.sink)
        await self.ble.start(RecordingSink())
        self.node_address = await adapter_address("hci2")
        # hci1's phone dials the node and leaves packets for hci0's phone, not in range.
        await self.dialing.connect(self.node_address, LINK_WAIT_S)
        self.there = [
            packet(8, self.rng.randbytes(16), envelope(2, self.key_dialing, self.key_dialed, body))
            for body in (self.rng.randbytes(60), self.rng.randbytes(1400))
        ]
        self.there_sent = [await self.dialing.send(p, 100 + i) for i, p in enumerate(self.there)]
        await self.sink.until_links(1, 30)  # its first write brought its link up
        roles = dict(self.app.links())
        held = await self._until_held(len(self.there))
        await self.dialing.close()
        await self.sink.until_links(0, 30, fewer=True)
        # hci0's phone comes by, advertising: the node dials it.
        await self.dialed.start()
        await self.sink.until_links(1, LINK_WAIT_S)
        await self.dialed.wait_subscribed(10)
        roles.update(self.app.links())
        return (
            f"node links, one at a time: {roles}; {held} packets in custody; hci1's phone "
            f"wrote at value length {self.dialing.value_length}"
        )

    async def _until_held(self, count: int) -> int:
        assert self.sink is not None
        sink = self.sink
        async with asyncio.timeout(30):
            while sink.router.counters["custody_held"] < count:
                sink.changed.clear()
                await sink.changed.wait()
        return sink.router.counters["custody_held"]

    async def cross(self) -> str:
        assert self.sink is not None
        assert self.app is not None
        dialed, dialing = self.dialed, self.dialing
        # hci1 -> node (its writes) -> custody -> hci0's phone (our writes, as its central)
        await dialed.received.until(
            lambda: len(dialed.received.messages) >= 2, 60, "packets at hci0's phone"
        )
        _expect_relayed(self.there, dialed.received.messages, "hci0's phone")
        there_sizes = list(dialed.received.frames)
        # hci0 -> node (its notifications) -> custody -> hci1's phone (our notifications)
        back = [
            packet(8, self.rng.randbytes(16), envelope(4, self.key_dialed, self.key_dialing, body))
            for body in (self.rng.randbytes(30), self.rng.randbytes(2000))
        ]
        back_sent = [await dialed.send(p, 200 + i) for i, p in enumerate(back)]
        await self._until_held(len(self.there) + len(back))
        await dialed.leave()
        await self.sink.until_links(0, 30, fewer=True)
        await dialing.connect(self.node_address, LINK_WAIT_S)
        # Its link comes up at its first write: a packet of its own (held for hci0's phone).
        hello = packet(
            8, self.rng.randbytes(16), envelope(5, self.key_dialing, self.key_dialed, b"\x01")
        )
        await dialing.send(hello, 300)
        await dialing.received.until(
            lambda: len(dialing.received.messages) >= 2, 60, "packets at hci1's phone"
        )
        _expect_relayed(
            back, dialing.received.messages, f"hci1's phone (frames {dialing.received.frames})"
        )
        back_sizes = list(dialing.received.frames)
        for sizes in (*self.there_sent, *back_sent, there_sizes, back_sizes):
            assert max(sizes) <= 510, f"a frame over the app's 510 bytes: {sizes}"
        # The node writes 510-byte values and notifies 508 (MTU 513; gatt.peripheral_value_length)
        assert (max(there_sizes), max(back_sizes)) == (510, 508), (there_sizes, back_sizes)
        counters = dict(self.sink.router.counters)
        return (
            f"hci1->hci0: wrote frames {self.there_sent}, node wrote {there_sizes}; "
            f"hci0->hci1: notified {back_sent}, node notified {back_sizes}; "
            f"router {counters}; busy {self.sink.busy}; "
            f"hci1's phone connects that failed first: {dialing.failed_connects}"
        )

    async def aclose(self) -> None:
        await self.dialing.close()
        if self.sink is not None:
            await self.sink.aclose()
        if self.app is not None:
            await self.app.aclose()
        if self.ble is not None:
            await self.ble.aclose()
        await self.dialed.close()


def _expect_relayed(sent: list[bytes], got: list[bytes], where: str) -> None:
    """Every packet arrived once, in order, unchanged but for a TTL one lower."""
    want = [p[:1] + bytes((p[1] - 1,)) + p[2:] for p in sent]
    if got != want:
        raise AssertionError(
            f"{where}: sent {[len(p) for p in sent]} bytes, got {[len(p) for p in got]}; "
            f"TTLs {[p[1] for p in got]}; equal but TTL: "
            f"{[g[:1] + g[2:] == s[:1] + s[2:] for g, s in zip(got, sent, strict=False)]}"
        )


class NodeApp:
    """The node's app transport as a `Transport`, with the BleTransport whose radio it rides."""

    def __init__(self, seed: int) -> None:
        self.ble, self.app = _node_pair(seed)

    async def start(self, sink: LinkSink) -> None:
        await self.app.start(sink)
        await self.ble.start(RecordingSink())

    def frame_limit(self, peer: PeerId) -> int:
        return self.app.frame_limit(peer)

    async def send(self, peer: PeerId, frame: bytes) -> None:
        await self.app.send(peer, frame)

    async def aclose(self) -> None:
        await self.app.aclose()
        await self.ble.aclose()


class PhoneApp:
    """The scripted dialed phone as a `Transport` with one link: the node, once it subscribed
    (a test stand-in may assume one central; the node cannot, see docs/protocol.md)."""

    def __init__(self, node: PeerId) -> None:
        self.phone = PeripheralPeer("hci0")
        self.node = node
        self._sink: LinkSink | None = None
        self._up = False
        self._closed = False
        self._watch: asyncio.Task[None] | None = None

    async def start(self, sink: LinkSink) -> None:
        self._sink = sink
        self.phone.on_frame = self._on_frame
        self.phone.on_subscription(self._on_subscription)
        await self.phone.start()
        self._watch = asyncio.get_running_loop().create_task(self._watch_connection())

    def _on_subscription(self, subscribed: bool) -> None:
        if subscribed and not self._up:
            self._set(True)
        elif not subscribed and self._up:
            self._set(False)

    def _set(self, up: bool) -> None:
        self._up = up
        if self._sink is None or self._closed:
            return
        if up:
            self._sink.link_up(self.node, PHONE_FRAME_LIMIT)
        else:
            self._sink.link_down(self.node, "disconnected")

    async def _watch_connection(self) -> None:
        while True:
            await asyncio.sleep(LINK_POLL_S)
            if self._up and not await self.phone.connected():
                self._set(False)

    def _on_frame(self, frame: bytes) -> None:
        if self._up and self._sink is not None and not self._closed:
            self._sink.frame_received(self.node, frame)

    def frame_limit(self, peer: PeerId) -> int:
        if self._closed:
            raise Closed("closed")
        if not self._up or peer != self.node:
            raise Broken(f"no link to {peer}")
        return PHONE_FRAME_LIMIT

    async def send(self, peer: PeerId, frame: bytes) -> None:
        if not 0 < len(frame) <= self.frame_limit(peer):
            raise ValueError(f"frame of {len(frame)} bytes")
        await self.phone.notify(frame)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self.phone.close()


async def app_conformance(forget: Callable[[], Awaitable[None]]) -> str:
    """The conformance check on the links the node dials to phones (links phones dial come up
    at their first write, so a check that wants link_up before any frame does not apply)."""
    conformance.WAIT_S = 45.0  # type: ignore[misc]  # a scan, settle, connect under emulation
    # No node advertises here, so the wait that tells a node's two advertisements from a
    # phone's one only slows each of the five pairs down.
    central.EXTRA_SETTLE_S = 0.5  # type: ignore[misc]
    seeds = iter(range(300, 400))
    node_name = app_peer_id(await adapter_address("hci2"))
    phone_name = app_peer_id(await adapter_address("hci0"))

    async def factory() -> conformance.TransportPair:
        await asyncio.sleep(2)  # let the previous pair's disconnects settle
        await forget()
        phone = PhoneApp(node_name)

        async def break_link() -> None:
            await phone.phone.disconnect_all()

        return conformance.TransportPair(
            NodeApp(next(seeds)), phone, phone_name, node_name, break_link
        )

    done = []
    for check in conformance.ALL_CHECKS:
        start = time.monotonic()
        await check(factory)
        done.append(f"{check.__name__} {time.monotonic() - start:.1f} s")
    return ", ".join(done)
