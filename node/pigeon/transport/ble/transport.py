"""`BleTransport`: the `Transport` over BlueZ, one node as central and peripheral at once.

Links we dial run through `BleCentral` (bleak); links neighbours dial run through
`BlePeripheral` (our GATT service on dbus-fast). Between two nodes the link's frames travel on
an LE credit-based L2CAP channel the dialer opens on the same connection (`l2cap`: order,
backpressure, one link's frames to one link); a peer that listens on none links over GATT. Both
end in a HELLO/WELCOME exchange that names the peer by the identifier it advertised at that
moment, so a `PeerId` is `ble:<identifier hex>` and lasts as long as the link. Two nodes make
one link: the one with the lower identifier dials
(`policy.should_connect`), and a duplicate born across an identifier rotation loses to the link
whose central has the lower identifier, at both ends (`policy.keep_incoming`).

The phone services run beside ours on the same adapter, the Pigeon app's as an `AppBleTransport`
and bitchat's as a `BitchatBleTransport` (`ble_transports` builds those the config enables): one
GATT application holds every service, each advertises on its own instance (`advert`), one
scanner and one dialing task serve all, and the adapter's link slots are shared by
`slots.SlotPlan`.

Raises from `start`: BlueZUnavailable, AdapterNotFound, AdapterBlocked, PermissionDenied,
BlueZCallFailed. After `start`, a lost adapter or bluetoothd is reported as link_down on every
link and the transport comes back by itself when they return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final, Literal

from pigeon.transport.base import Broken, Busy, Closed, LinkSink, PeerId
from pigeon.transport.ble.adapter import BlueZAdapter, Neighbour
from pigeon.transport.ble.advert import advert_plan
from pigeon.transport.ble.app import AppBleTransport
from pigeon.transport.ble.appgatt import address_of
from pigeon.transport.ble.background import Background
from pigeon.transport.ble.bitchat import BitchatBleTransport
from pigeon.transport.ble.errors import BleError, MalformedLinkFrame
from pigeon.transport.ble.eviction import EvictionParams, EvictReason, Role
from pigeon.transport.ble.gatt import (
    MIN_LINK_FRAME_LIMIT,
    Bye,
    ByeReason,
    Data,
    Intro,
    LinkKind,
    channel_frame_limit,
    decode_link_frame,
    encode_link_frame,
    gatt_frame_limit,
)
from pigeon.transport.ble.hangup import DISCONNECT_TIMEOUT_S
from pigeon.transport.ble.l2cap import Channel, ChannelClosed, ChannelUnavailable
from pigeon.transport.ble.l2cap import listen as listen_for_channels
from pigeon.transport.ble.linkwriter import LinkWriter
from pigeon.transport.ble.phone import PhoneBleTransport
from pigeon.transport.ble.policy import (
    NOTIFY_MIN_GAP_S,
    NOTIFY_QUEUE_FRAMES,
    IdentifierSchedule,
    PacerParams,
    WritePacer,
    keep_incoming,
    patience_s,
    should_connect,
)
from pigeon.transport.ble.slots import OWN_SERVICE, LinkSlots, SlotPlan

if TYPE_CHECKING:
    from pigeon.transport.ble.central import BleCentral, CentralLink
    from pigeon.transport.ble.peripheral import BlePeripheral

_LOGGER = logging.getLogger(__name__)

# A node with the higher identifier dials anyway after this long: BlueZ may show the peer a
# stale identifier of ours (so it waits for us), or the peer may have no room to dial.
DIAL_PATIENCE_S: Final = 10.0
DIAL_PATIENCE_SPREAD_S: Final = 5.0
# Our GATT database changes (RegisterApplication, UnregisterApplication) only while no device is
# connected to the adapter. A change sends Service Changed to every connected client, and a
# client bluetoothd whose rediscovery a disconnect then cuts short can crash when it frees the
# device (seen in the VM tier: bluetoothd 5.66 SIGSEGV in btd_gatt_client_service_removed via
# g_dbus_unregister_interface, the re-entrant teardown BlueZ fixed upstream in 2026 with
# d01616f0c). A neighbour's bluetoothd is as exposed as ours, so the node never triggers it.
QUIESCE_WAIT_S: Final = 10.0
# How long a central that heard our BYE has to hang up before we cut the connection.
HANG_UP_WAIT_S: Final = 2.0
# How often links silent past the hard idle limit are looked for (eviction.EvictionParams).
SWEEP_S: Final = 5.0
# A channel that carries no link this long after it opened is closed.
CHANNEL_HELLO_WAIT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class BleConfig:
    """Where and how the transport runs; `bus_address` None means the system bus.

    `max_links` is the adapter's LE links over every service it serves (our mesh, the Pigeon
    app's, bitchat's); each service keeps `reserved_links` of them (fewer if they do not fit) and
    may use the rest while the others' reserves stay free (`slots.SlotPlan`); `eviction` says
    when a link that is idle, silent or abusive gives up its slot (`eviction.EvictionPolicy`).
    `channels` runs links between nodes on L2CAP channels where both ends can; `pacer` and
    `notify_min_gap_s` pace what goes over GATT (to phones, and to nodes without channels).
    """

    adapter: str = "hci0"
    max_links: int = 4
    reserved_links: int = 1
    pacer: PacerParams = field(default_factory=PacerParams)
    bus_address: str | None = None
    notify_min_gap_s: float = NOTIFY_MIN_GAP_S
    eviction: EvictionParams = field(default_factory=EvictionParams)
    channels: bool = True


@dataclass(frozen=True, slots=True)
class LinkState:
    """One neighbour as the transport sees it now."""

    peer: PeerId
    role: Literal["central", "peripheral"]
    address: str
    frame_limit: int
    rssi: int | None
    carrier: Literal["gatt", "l2cap"] = "gatt"
    phy: str | None = None  # what the connection uses, where the channel's socket tells it
    # What the link holds now for the peer: its queue in this process, and on a channel what
    # the kernel holds (None where it cannot say).
    queued_bytes: int = 0
    kernel_bytes: int | None = None


class _PeripheralLink:
    """A link a neighbour dialed: frames go out on its channel, or as notifications addressed
    by its link tag."""

    def __init__(
        self,
        device: str,
        link_tag: bytes,
        peer: PeerId,
        frame_limit: int,
        channel: Channel | None,
        writer: LinkWriter | None,
    ) -> None:
        self.device = device
        self.address = address_of(device)
        self.link_tag = link_tag
        self.peer = peer
        self.frame_limit = frame_limit
        self.channel = channel
        self.writer = writer
        self._ending: asyncio.Future[None] | None = None

    @property
    def queued_bytes(self) -> int:
        """What its channel's queue holds (GATT links share the notification queue)."""
        return 0 if self.writer is None else self.writer.queued_bytes

    async def end(self, bye: ByeReason | None) -> None:
        """Close the link's channel (no-op over GATT): say BYE first if `bye`, after what is
        queued (for up to linkwriter.DRAIN_S). The first call decides; later ones wait for it."""
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._end(bye))
        await asyncio.shield(self._ending)

    async def _end(self, bye: ByeReason | None) -> None:
        if self.writer is not None:
            if bye is not None:
                with contextlib.suppress(Broken, Busy):
                    self.writer.offer(encode_link_frame(Bye(self.link_tag, bye)))
            await self.writer.stop()
        if self.channel is not None:
            self.channel.close()


def peer_id(identifier: bytes) -> PeerId:
    """The PeerId of a neighbour that introduced itself with `identifier`."""
    return PeerId("ble:" + identifier.hex())


class BleTransport:
    """A `Transport` over one BlueZ adapter."""

    def __init__(
        self,
        config: BleConfig,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        phones: Sequence[PhoneBleTransport] = (),
    ) -> None:
        self._config = config
        self._rng = rng if rng is not None else random.SystemRandom()
        self._clock = clock
        self._ids = IdentifierSchedule(self._rng, clock())
        self._adapter = BlueZAdapter(config.adapter, config.bus_address)
        self._sink: LinkSink | None = None
        self._central: BleCentral | None = None
        self._peripheral: BlePeripheral | None = None
        self._links: dict[PeerId, CentralLink | _PeripheralLink] = {}
        self._by_device: dict[str, _PeripheralLink] = {}
        self._retired: dict[str, _PeripheralLink] = {}  # lost a duplicate tie-break
        self._notify_queue: asyncio.Queue[bytes] = asyncio.Queue(NOTIFY_QUEUE_FRAMES)
        self._channels: set[Channel] = set()  # accepted, whether or not a link rides them yet
        self._background = Background()
        self._started = False
        self._closed = False
        self._phones = tuple(phones)
        services = (OWN_SERVICE, *(phone.profile.name for phone in self._phones))
        if len(set(services)) != len(services):
            raise ValueError(f"a service twice on one adapter: {services}")
        self.adverts = advert_plan(services)  # what start registers: one instance per service
        plan = SlotPlan.split(config.max_links, config.reserved_links, services)
        self._slots = LinkSlots(plan, config.eviction, clock)
        self._slots.serve(OWN_SERVICE, self._evict)
        for phone in self._phones:
            phone.bind(self._adapter, self._slots, self._carries_own_link)

    @property
    def adapter(self) -> BlueZAdapter:
        """The adapter this transport runs on."""
        return self._adapter

    def identifier(self) -> bytes:
        """The identifier this node advertises now."""
        return self._ids.current(self._clock())

    def links(self) -> list[LinkState]:
        """Every live link, with the RSSI BlueZ last reported for its device."""
        rssi = {n.address: n.rssi for n in self._adapter.neighbours().values()}
        states = []
        for peer, link in self._links.items():
            role: Literal["central", "peripheral"] = (
                "peripheral" if isinstance(link, _PeripheralLink) else "central"
            )
            channel = link.channel
            carrier: Literal["gatt", "l2cap"] = "gatt" if channel is None else "l2cap"
            states.append(
                LinkState(
                    peer,
                    role,
                    link.address,
                    link.frame_limit,
                    None,
                    carrier,
                    None if channel is None else channel.phy(),
                    link.queued_bytes,
                    None if channel is None else channel.kernel_bytes(),
                )
            )
        return [replace(s, rssi=rssi.get(s.address)) for s in states]

    async def start(self, sink: LinkSink) -> None:
        """Power the adapter, register the service, advertise and scan. Raises the typed errors."""
        from pigeon.transport.ble.central import BleCentral
        from pigeon.transport.ble.peripheral import BlePeripheral

        if self._started:
            raise RuntimeError("start is called once")
        self._started = True
        self._sink = sink
        self._central = BleCentral(
            self._config.adapter,
            self,
            self._rng,
            self._config.pacer,
            self._clock,
            extras=self._phones,
        )
        try:
            await self._adapter.open(self)
            extensions = [phone.gatt_extension() for phone in self._phones]
            self._peripheral = BlePeripheral(self._adapter, self._on_write, extensions)
            await self._activate()
        except BaseException:
            await self._adapter.close()
            raise
        self._background.spawn(self._rotate_forever())
        self._background.spawn(self._notify_forever())
        self._background.spawn(self._sweep_forever())
        if self._config.channels:
            self._background.spawn(self._accept_forever())

    async def _activate(self) -> None:
        assert self._peripheral is not None
        assert self._central is not None
        # Connections that outlived a bluetoothd restart, or a previous run of the node, carry
        # no link of ours: drop them before the database changes (see QUIESCE_WAIT_S).
        await self._quiesce("registering the GATT service")
        await self._peripheral.register(self.identifier())
        self._central.start()

    async def _quiesce(self, before: str) -> None:
        left = await self._adapter.disconnect_all(QUIESCE_WAIT_S)
        if left:
            _LOGGER.warning("%d devices still connected before %s", len(left), before)

    def frame_limit(self, peer: PeerId) -> int:
        """The largest frame for `peer`; raises Closed after aclose, Broken without a link."""
        if self._closed:
            raise Closed("transport closed")
        link = self._links.get(peer)
        if link is None:
            raise Broken(f"no link to {peer}")
        return link.frame_limit

    async def send(self, peer: PeerId, frame: bytes) -> None:
        """Queue `frame` for `peer`; raises Closed, Broken, Busy, or ValueError."""
        limit = self.frame_limit(peer)
        if not 0 < len(frame) <= limit:
            raise ValueError(f"frame of {len(frame)} bytes outside 1..{limit}")
        link = self._links[peer]
        if isinstance(link, _PeripheralLink):
            if link.writer is not None:
                link.writer.offer(encode_link_frame(Data(link.link_tag, frame)))
            else:
                self._notify(Data(link.link_tag, frame))
        else:
            link.offer(frame)

    async def aclose(self) -> None:
        """Say BYE, disconnect every link, unregister and close the bus; idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._background.cancel_all()
        for phone in self._phones:
            await phone.aclose()  # their links ride our adapter: they end first
        if self._peripheral is not None:
            with contextlib.suppress(BleError):
                await self._peripheral.stop_advertising()  # no new centrals from here on
        if self._central is not None:
            await self._central.aclose()
        await asyncio.gather(
            *(self._disconnect_device(link, ByeReason.CLOSING) for link in self._by_device.values())
        )
        for channel in self._channels:
            channel.close()
        self._channels.clear()
        for peer in self._links:
            self._slots.closed(peer)
        self._links.clear()
        self._by_device.clear()
        self._retired.clear()
        if self._peripheral is not None:
            if self._adapter.ready:
                await self._quiesce("unregistering the GATT service")
            with contextlib.suppress(BleError):
                await self._peripheral.unregister()
        await self._adapter.close()

    # adapter events

    def adapter_ready(self, adapter_path: str) -> None:
        """The adapter came back: register again and scan."""
        if self._peripheral is not None and not self._closed:
            self._background.spawn(self._reactivate())

    async def _reactivate(self) -> None:
        try:
            await self._activate()
        except BleError as exc:
            _LOGGER.warning("re-registering on %s failed: %s", self._config.adapter, exc)

    def adapter_lost(self, reason: str) -> None:
        """The adapter or bluetoothd went away: every link is down."""
        if self._peripheral is not None:
            self._peripheral.forget()
        for phone in self._phones:
            phone.adapter_lost(reason)
        for link in list(self._by_device.values()):
            self._drop_peripheral_link(link, reason)
        if self._central is not None:
            self._background.spawn(self._central.stop(reason))

    def neighbour_changed(self, neighbour: Neighbour) -> None:
        """A device disconnected: links it dialed are gone."""
        for phone in self._phones:
            phone.neighbour_changed(neighbour)
        link = self._by_device.get(neighbour.path)
        if not neighbour.connected:
            self._retired.pop(neighbour.path, None)
            if link is not None:
                self._drop_peripheral_link(link, "disconnected")

    # central host

    def wants(self, address: str, identifier: bytes, waited_s: float) -> bool:
        """Dial a new node if it has the higher identifier or did not dial us in time."""
        if self._closed or not self._adapter.ready or identifier == self.identifier():
            return False
        own = self.identifier()
        patience = patience_s(own, identifier, DIAL_PATIENCE_S, DIAL_PATIENCE_SPREAD_S)
        if (not should_connect(own, identifier) and waited_s < patience) or peer_id(
            identifier
        ) in self._links:
            return False
        if self.shares_connection(address) or self._connected_to(address):
            return False
        return self._slots.can_admit(OWN_SERVICE, Role.WE_DIALED, address)

    def _connected_to(self, address: str) -> bool:
        # The peer has dialed us and its HELLO is on the way: a second LE connection between
        # the same two controllers confuses bluetoothd (its device keeps one connection).
        return any(
            n.connected and n.address == address for n in self._adapter.neighbours().values()
        )

    def _carries_own_link(self, address: str) -> bool:
        # Whether a link of our own service rides the connection to `address`.
        return self.shares_connection(address) or any(
            not isinstance(link, _PeripheralLink) and link.address == address
            for link in self._links.values()
        )

    def channel_source(self) -> str | None:
        """Our adapter's address to open channels from, when links may run on channels."""
        return self._adapter.address if self._config.channels and self._adapter.address else None

    def shares_connection(self, address: str) -> bool:
        """Whether a neighbour at `address` has dialed us (its link shares the LE connection)."""
        devices = {n.path: n.address for n in self._adapter.neighbours().values()}
        return any(devices.get(link.device) == address for link in self._by_device.values())

    def central_link_up(self, link: CentralLink) -> None:
        """A link we dialed finished its handshake."""
        peer = peer_id(link.peer_identifier)
        if self._closed:
            return
        other = self._links.get(peer)
        if isinstance(other, _PeripheralLink):
            if not should_connect(self.identifier(), link.peer_identifier):
                _LOGGER.info("duplicate link to %s: keeping the one it dialed", peer)
                assert self._central is not None
                self._background.spawn(self._central.yield_duplicate(link))
                return
            # Ours wins: the peer's central hears BYE; the shared connection stays up.
            _LOGGER.info("duplicate link to %s: keeping the one we dialed", peer)
            self._retired[other.device] = self._by_device.pop(other.device)
            self._say(other, Bye(other.link_tag, ByeReason.DUPLICATE))
        elif not self._slots.admit(peer, OWN_SERVICE, Role.WE_DIALED, link.address):
            # The slot `wants` saw went to a neighbour that dialed us meanwhile.
            _LOGGER.info("no slot left for the link to %s", peer)
            assert self._central is not None
            self._background.spawn(self._central.evict(link, "no room"))
            return
        self._replace(peer, link)

    def _replace(self, peer: PeerId, link: CentralLink | _PeripheralLink) -> None:
        # A duplicate resolved in favour of `link` keeps the peer up without a down/up pair,
        # unless the frame limit changes.
        old = self._links.get(peer)
        self._links[peer] = link
        if old is None:
            self._upcall_link_up(peer, link)
        elif old.frame_limit != link.frame_limit:
            self._upcall_link_down(peer, "frame limit changed")
            self._upcall_link_up(peer, link)

    def central_frame(self, link: CentralLink, frame: bytes) -> None:
        """A frame notified to us on a link we dialed."""
        peer = peer_id(link.peer_identifier)
        # A link that lost the duplicate tie-break still delivers what the peer sent on it
        # before the swap: same neighbour, and the frames would be lost otherwise.
        if peer in self._links and self._sink is not None and not self._closed:
            self._slots.judge(peer, link.address, self._sink.frame_received(peer, frame))

    def central_link_down(self, link: CentralLink, reason: str) -> None:
        """A link we dialed is gone."""
        peer = peer_id(link.peer_identifier)
        if self._links.get(peer) is link:
            del self._links[peer]
            self._slots.closed(peer)
            self._upcall_link_down(peer, reason)

    # peripheral side

    def _on_write(
        self, device: str, value: bytes, mtu: int | None, channel: Channel | None = None
    ) -> None:
        """A link frame a central wrote to RX (`mtu` its ATT MTU), or sent on `channel`."""
        link = self._by_device.get(device) or self._retired.get(device)
        try:
            frame = decode_link_frame(value)
        except MalformedLinkFrame as exc:
            _LOGGER.info("dropped a malformed write from %s: %s", device, exc)
            self._strike(device, link)
            return
        if isinstance(frame, Intro):
            if frame.kind == LinkKind.HELLO:
                self._on_hello(device, frame, mtu, channel)
        elif link is None or frame.link_tag != link.link_tag or link.channel is not channel:
            _LOGGER.info(
                "dropped a %s write from %s outside any link", type(frame).__name__, device
            )
        elif isinstance(frame, Data):
            self._on_data(device, link, frame.frame)
        elif self._retired.get(device) is link:
            del self._retired[device]
        else:
            self._drop_peripheral_link(link, "peer said bye")

    def _on_data(self, device: str, link: _PeripheralLink, frame: bytes) -> None:
        if self._sink is None or self._closed or link.peer not in self._links:
            return
        if len(frame) > link.frame_limit:
            _LOGGER.info("dropped a %d-byte frame from %s over its limit", len(frame), device)
            self._strike(device, link)
            return
        self._slots.judge(link.peer, link.address, self._sink.frame_received(link.peer, frame))

    def _strike(self, device: str, link: _PeripheralLink | None) -> None:
        # A frame that broke the rules; a central that breaks them often is cut and backed off.
        key = link.peer if link is not None and self._links.get(link.peer) is link else None
        with contextlib.suppress(ValueError):  # not a device path: nothing to count it against
            if self._slots.refused(address_of(device), key) and self._adapter.ready:
                self._background.spawn(self._adapter.disconnect(device, DISCONNECT_TIMEOUT_S))

    def _on_hello(
        self, device: str, hello: Intro, mtu: int | None, channel: Channel | None
    ) -> None:
        if self._closed:
            return
        self._retired.pop(device, None)
        old = self._by_device.get(device)
        if old is not None:
            self._drop_peripheral_link(old, "peer said hello again")
            if channel is not None and old.channel is channel:
                return  # a second HELLO on one channel: the channel has ended with the link
        limit = (
            gatt_frame_limit(hello.frame_limit, mtu)
            if channel is None
            else channel_frame_limit(hello.frame_limit, channel.send_mtu())
        )
        refusal = self._refusal(device, hello, limit)
        peer = peer_id(hello.identifier)
        if refusal is None and not self._slots.admit(
            peer, OWN_SERVICE, Role.IT_DIALED, address_of(device)
        ):
            refusal = ByeReason.NO_ROOM
        if refusal is not None:
            _LOGGER.info("refused a link from %s (%s): %s", device, peer, refusal.name.lower())
            if channel is None:
                self._notify(Bye(hello.link_tag, refusal))
            else:
                self._background.spawn(self._refuse_on(channel, Bye(hello.link_tag, refusal)))
            if self._slots.banned(address_of(device)) and self._adapter.ready:
                self._background.spawn(self._adapter.disconnect(device, DISCONNECT_TIMEOUT_S))
            return
        other = self._links.get(peer)
        if other is not None and not isinstance(other, _PeripheralLink):
            _LOGGER.info("duplicate link to %s: keeping the one it dialed", peer)
            assert self._central is not None
            self._background.spawn(self._central.yield_duplicate(other))
        writer = None
        if channel is not None:
            ended = channel
            writer = LinkWriter(
                channel.send,
                (ChannelClosed,),
                None,
                self._clock,
                channel.address,
                lambda reason: self._channel_ended(ended, reason),
            )
            writer.start()
        link = _PeripheralLink(device, hello.link_tag, peer, limit, channel, writer)
        self._by_device[device] = link
        self._say(link, Intro(LinkKind.WELCOME, hello.link_tag, self.identifier(), limit))
        self._replace(peer, link)

    def _refusal(self, device: str, hello: Intro, limit: int) -> ByeReason | None:
        if any(link.link_tag == hello.link_tag for link in self._by_device.values()):
            return ByeReason.TAG_IN_USE
        if limit < MIN_LINK_FRAME_LIMIT:
            return ByeReason.TOO_SMALL
        peer = peer_id(hello.identifier)
        linked_as_central = peer in self._links and peer not in (
            link.peer for link in self._by_device.values()
        )
        if not keep_incoming(self.identifier(), hello.identifier, linked_as_central):
            return ByeReason.DUPLICATE
        if peer in self._links and not linked_as_central:
            return ByeReason.DUPLICATE
        return None

    def _drop_peripheral_link(
        self, link: _PeripheralLink, reason: str, bye: ByeReason | None = None
    ) -> None:
        """Forget `link` and end its channel (saying `bye` there first, if given)."""
        if link.channel is not None:
            self._background.spawn(link.end(bye))
        if self._by_device.get(link.device) is link:
            del self._by_device[link.device]
        if self._links.get(link.peer) is link:
            del self._links[link.peer]
            self._slots.closed(link.peer)
            self._upcall_link_down(link.peer, reason)

    def _evict(self, key: str, reason: EvictReason) -> None:
        """Drop the link to `key` now (the slots' decision) and hang it up: BYE, then cut."""
        peer = PeerId(key)
        link = self._links.get(peer)
        if isinstance(link, _PeripheralLink):
            self._drop_peripheral_link(link, f"evicted: {reason}", ByeReason.NO_ROOM)
            self._background.spawn(self._disconnect_device(link, ByeReason.NO_ROOM))
        elif link is not None:
            del self._links[peer]
            self._slots.closed(peer)
            self._upcall_link_down(peer, f"evicted: {reason}")
            assert self._central is not None
            self._background.spawn(self._central.evict(link, f"evicted: {reason}"))

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            self._slots.sweep()

    async def _disconnect_device(self, link: _PeripheralLink, reason: ByeReason) -> None:
        with contextlib.suppress(BleError, TimeoutError):
            if link.channel is not None:
                await link.end(reason)
            elif self._peripheral is not None:
                self._peripheral.notify(encode_link_frame(Bye(link.link_tag, reason)))
            # The dialer hangs up when it reads BYE, releasing its notifications first
            # (hangup.py); the connection is cut from here only when it does not.
            if await self._adapter.wait_disconnected(link.device, HANG_UP_WAIT_S):
                return
            await self._adapter.disconnect(link.device, DISCONNECT_TIMEOUT_S)

    def _say(self, link: _PeripheralLink, frame: Intro | Bye) -> None:
        # On the link's own carrier: its channel's writer (after the frames queued there), or a
        # notification.
        if link.writer is None:
            self._notify(frame)
        else:
            with contextlib.suppress(Broken, Busy):
                link.writer.offer(encode_link_frame(frame))

    async def _refuse_on(self, channel: Channel, bye: Bye) -> None:
        with contextlib.suppress(ChannelClosed, TimeoutError):
            async with asyncio.timeout(HANG_UP_WAIT_S):
                await channel.send(encode_link_frame(bye))
        channel.close()
        self._channels.discard(channel)

    # channels

    async def _accept_forever(self) -> None:
        try:
            listener = listen_for_channels(self._adapter.address)
        except (ChannelUnavailable, ValueError) as exc:
            _LOGGER.info("no L2CAP channels on %s (%s): links over GATT", self._config.adapter, exc)
            return
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    sock, where = await loop.sock_accept(listener)
                except OSError as exc:
                    _LOGGER.info("accepting a channel failed: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                self.accept_channel(sock, str(where[0]))
        finally:
            listener.close()

    def accept_channel(self, sock: socket.socket, address: str) -> None:
        """Serve a channel the neighbour at `address` opened (from the listener; tests hand in
        socket pairs)."""
        # A link that ended closed its channel without a word to this set: count live ones.
        self._channels = {channel for channel in self._channels if not channel.closed}
        if (
            self._closed
            or len(self._channels) >= 2 * self._config.max_links
            or self._slots.banned(address)
        ):
            sock.close()
            return
        device = self._adapter.device_path(address)
        channel = Channel(
            sock,
            address,
            lambda value: self._on_write(device, value, None, channel),
            lambda reason: self._channel_ended(channel, reason),
        )
        self._channels.add(channel)
        self._background.spawn(self._expect_link(channel))

    async def _expect_link(self, channel: Channel) -> None:
        await asyncio.sleep(CHANNEL_HELLO_WAIT_S)
        links = (*self._by_device.values(), *self._retired.values())
        if not channel.closed and all(link.channel is not channel for link in links):
            _LOGGER.info("closed a channel from %s that carried no link", channel.address)
            channel.close()
            self._channels.discard(channel)

    def _channel_ended(self, channel: Channel, reason: str) -> None:
        channel.close()
        self._channels.discard(channel)
        for device, retired in list(self._retired.items()):
            if retired.channel is channel:
                del self._retired[device]
        for link in list(self._by_device.values()):
            if link.channel is channel:
                self._drop_peripheral_link(link, reason)

    def _notify(self, frame: Intro | Data | Bye) -> None:
        try:
            self._notify_queue.put_nowait(encode_link_frame(frame))
        except asyncio.QueueFull:
            raise Busy(f"{NOTIFY_QUEUE_FRAMES} notifications already queued") from None

    async def _notify_forever(self) -> None:
        pacer = WritePacer(self._config.pacer, self._clock())
        last = float("-inf")
        while True:
            value = await self._notify_queue.get()
            now = self._clock()
            delay = max(pacer.delay_s(len(value), now), last + self._config.notify_min_gap_s - now)
            if delay > 0:
                await asyncio.sleep(delay)
            last = self._clock()
            pacer.spend(len(value), last)
            if self._peripheral is not None and self._adapter.ready:
                self._peripheral.notify(value)

    async def _rotate_forever(self) -> None:
        while True:
            await asyncio.sleep(max(0.0, self._ids.rotate_at - self._clock()))
            identifier = self.identifier()
            _LOGGER.info("advertised identifier rotated")
            if self._peripheral is not None and self._adapter.ready:
                try:
                    await self._peripheral.advertise(identifier)
                except BleError as exc:
                    _LOGGER.warning("re-advertising after rotation failed: %s", exc)

    async def until_discovered(self, address: str) -> None:
        """Until bluetoothd's GATT discovery of the device at `address` is over (bounded)."""
        await self._adapter.until_discovered(self._adapter.device_path(address))

    async def connect_device(self, address: str, within_s: float) -> None:
        """Connect to the device at `address`, or find it connected by the peer meanwhile."""
        await self._adapter.connect(self._adapter.device_path(address), within_s)

    async def clear_stale_discovery(self) -> None:
        """Before each scan: if bluetoothd says the adapter discovers although nothing of ours
        scans, let it clear the flag (a start and a stop of our own).

        bluetoothd 5.66 can keep its "discovering" flag after a stop the kernel rejected
        (BlueZ issue 807, fixed in 5.88): every later StartDiscovery then succeeds without
        scanning, and the node would never see a neighbour again. (A power cycle also clears
        it, but powering off in that state made bluetoothd 5.66 abort in the VM tier.)
        """
        try:
            if not await self._adapter.discovering():
                return
            _LOGGER.info("bluetoothd discovers on %s although we do not scan", self._config.adapter)
            await self._adapter.reset_discovery()
        except BleError as exc:
            _LOGGER.info("could not check discovery on %s: %s", self._config.adapter, exc)

    # plumbing

    def _upcall_link_up(self, peer: PeerId, link: CentralLink | _PeripheralLink) -> None:
        channel = link.channel
        over = "GATT" if channel is None else f"an L2CAP channel, PHY {channel.phy() or 'unknown'}"
        _LOGGER.info("link up: %s, frame limit %d, over %s", peer, link.frame_limit, over)
        if self._sink is not None and not self._closed:
            self._sink.link_up(peer, link.frame_limit)

    def _upcall_link_down(self, peer: PeerId, reason: str) -> None:
        _LOGGER.info("link down: %s (%s)", peer, reason)
        if self._sink is not None and not self._closed:
            self._sink.link_down(peer, reason)


@dataclass(frozen=True, slots=True)
class BleServices:
    """The transports of every service on one adapter: ours always, the phone services the
    config enables. Start the phone services' transports first (they only name their sink), then
    `mesh`: their links run while it does, and its `aclose` ends them first."""

    mesh: BleTransport
    app: AppBleTransport | None = None
    bitchat: BitchatBleTransport | None = None


def ble_transports(
    config: BleConfig,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
    *,
    app: bool = True,
    bitchat: bool = True,
) -> BleServices:
    """Our mesh's transport and those of the phone services that are on (the Pigeon app's,
    bitchat's), all on one adapter and sharing it."""
    args = (config.adapter, config.pacer, config.notify_min_gap_s, clock)
    app_transport = AppBleTransport(*args) if app else None
    bitchat_transport = BitchatBleTransport(*args) if bitchat else None
    phones = [t for t in (app_transport, bitchat_transport) if t is not None]
    return BleServices(BleTransport(config, rng, clock, phones), app_transport, bitchat_transport)
