"""`PhoneBleTransport`: the `Transport` for a phone service beside ours (the Pigeon app's in
`app.py`, bitchat's in `bitchat.py`; a `profile.PhoneProfile` says which).

It shares everything with its `BleTransport` (`transport.ble_transports` builds them): the
adapter and bus, the one GATT application (every service in one RegisterApplication, so the
database never changes while links are up), the scanner and the one dialing task (one LE connect
may be pending per controller), and the adapter's link slots (`slots.SlotPlan`). Its links run
while the `BleTransport` runs; `start` only names the sink.

These services have no link header and no hello: a peer is its device (`<prefix><address>`).
- Links we dial (`phonecentral`): up once we subscribed to the device's outbound characteristic;
  we write frames as the service's phones do. A link under the profile's smallest frame is
  refused (disconnected).
- Links devices dial: up at the device's first write (BlueZ names the writer). BlueZ 5.66 has
  no per-device notification: a notification reaches every subscribed central. So all these
  links share the outbound characteristic as one broadcast, as the app's own peripheral does
  (`PeerTransport.swift` notifies with `onSubscribedCentrals: nil` and sizes fragments for
  every subscribed central; bitchat's iOS peripheral can notify one central, the node cannot):
  their frame limit is the smallest of theirs, and a frame the router sends to several of them
  goes out once (`appgatt.SharedNotify`). Phones drop what they already saw by packet id, as
  they do for each other's broadcasts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from pigeon.transport.base import Broken, Busy, Closed, LinkSink, PeerId
from pigeon.transport.ble.adapter import BlueZAdapter, Neighbour
from pigeon.transport.ble.appgatt import SharedNotify, address_of
from pigeon.transport.ble.background import Background
from pigeon.transport.ble.errors import MalformedLinkFrame
from pigeon.transport.ble.eviction import EvictReason, Role
from pigeon.transport.ble.gatt import peripheral_value_length
from pigeon.transport.ble.policy import PacerParams, WritePacer
from pigeon.transport.ble.profile import PhoneGattObjects, PhoneProfile
from pigeon.transport.ble.slots import LinkSlots

if TYPE_CHECKING:
    from bleak.backends.device import BLEDevice

    from pigeon.transport.ble.phonecentral import PhoneCentralLink

_LOGGER = logging.getLogger(__name__)

NOTIFY_QUEUE_FRAMES: Final = 128
# As for our own service (transport.NOTIFY_MIN_GAP_S): BlueZ packs notifications that come
# within 10 ms, and one that does not fit the pack can overtake it.
NOTIFY_MIN_GAP_S: Final = 0.015
DISCONNECT_TIMEOUT_S: Final = 5.0


@dataclass(slots=True)
class _PeripheralPhoneLink:
    device: str
    value_length: int


class PhoneBleTransport:
    """A `Transport` over one phone service (`profile`) on a `BleTransport`'s adapter."""

    def __init__(
        self,
        profile: PhoneProfile,
        adapter_name: str,
        pacer: PacerParams | None = None,
        notify_min_gap_s: float = NOTIFY_MIN_GAP_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.profile = profile
        self._adapter_name = adapter_name
        self._pacer = pacer if pacer is not None else PacerParams()
        self._gap_s = notify_min_gap_s
        self._clock = clock
        self._adapter: BlueZAdapter | None = None
        self._slots: LinkSlots | None = None
        self._carries_own_link: Callable[[str], bool] = lambda address: False
        self._objects: PhoneGattObjects | None = None
        self._sink: LinkSink | None = None
        self._central: dict[PeerId, PhoneCentralLink] = {}
        self._peripheral: dict[PeerId, _PeripheralPhoneLink] = {}
        self._channel_limit = 0  # frame limit of every peripheral-side link (0: none up)
        self._shared = SharedNotify()
        self._notify_queue: asyncio.Queue[bytes] = asyncio.Queue(NOTIFY_QUEUE_FRAMES)
        self._background = Background()
        self._closed = False

    # binding to the BleTransport (called by it)

    def bind(
        self, adapter: BlueZAdapter, slots: LinkSlots, carries_own_link: Callable[[str], bool]
    ) -> None:
        """Share `adapter` and `slots`; never disconnect a device `carries_own_link` names."""
        self._adapter = adapter
        self._slots = slots
        self._carries_own_link = carries_own_link
        slots.serve(self.profile.name, self._evict)

    def gatt_extension(self) -> PhoneGattObjects:
        """The service's objects, to register in the one GATT application."""
        if self._objects is None:
            self._objects = self.profile.gatt_objects(self._on_write)
        return self._objects

    @property
    def service_uuid(self) -> str:
        """The service the shared scanner looks for on our behalf."""
        return self.profile.service_uuid

    # Transport

    async def start(self, sink: LinkSink) -> None:
        """Report links and frames to `sink` (the radio runs with the bound BleTransport)."""
        if self._sink is not None:
            raise RuntimeError("start is called once")
        if self._adapter is None:
            raise RuntimeError(f"bind the {self.profile.name} transport to a BleTransport first")
        self._sink = sink
        self._background.spawn(self._notify_forever())

    def frame_limit(self, peer: PeerId) -> int:
        """The largest frame for `peer`; raises Closed after aclose, Broken without a link."""
        if self._closed:
            raise Closed("transport closed")
        central = self._central.get(peer)
        if central is not None:
            return central.frame_limit
        if peer in self._peripheral:
            return self._channel_limit
        raise Broken(f"no link to {peer}")

    async def send(self, peer: PeerId, frame: bytes) -> None:
        """Queue `frame` for `peer`; raises Closed, Broken, Busy, or ValueError."""
        limit = self.frame_limit(peer)
        if not 0 < len(frame) <= limit:
            raise ValueError(f"frame of {len(frame)} bytes outside 1..{limit}")
        central = self._central.get(peer)
        if central is not None:
            central.offer(frame)
        elif self._shared.must_notify(peer, frame):
            try:
                self._notify_queue.put_nowait(frame)
            except asyncio.QueueFull:
                raise Busy(f"{NOTIFY_QUEUE_FRAMES} notifications already queued") from None

    async def aclose(self) -> None:
        """Close every link of this service; idempotent. The GATT objects stay until the
        BleTransport unregisters them (the database changes only while nothing is connected)."""
        if self._closed:
            return
        self._closed = True
        await self._background.cancel_all()
        if self._slots is not None:
            for peer in self.links():
                self._slots.closed(peer)
        links, self._central = list(self._central.values()), {}
        devices = [link.device for link in self._peripheral.values()]
        self._peripheral.clear()
        for link in links:
            await link.close()
        for device in devices:
            await self._disconnect(device)

    def links(self) -> dict[PeerId, str]:
        """Every live link of this service and its role ("central": we dialed; "peripheral":
        it did)."""
        roles = dict.fromkeys(self._central, "central")
        roles.update(dict.fromkeys(self._peripheral, "peripheral"))
        return roles

    # dialing (called by the shared BleCentral)

    def wants_dial(self, address: str) -> bool:
        """Whether to dial the device advertising this service at `address`."""
        adapter, slots = self._adapter, self._slots
        if self._closed or self._sink is None or adapter is None or slots is None:
            return False
        if not adapter.ready or self.profile.peer_id(address) in self.links():
            return False
        # A device already connected to this adapter (it dialed us) is not dialed again: a
        # second LE connection between the same two controllers confuses bluetoothd.
        if any(n.connected and n.address == address for n in adapter.neighbours().values()):
            return False
        return slots.can_admit(self.profile.name, Role.WE_DIALED, address.upper())

    async def dial(self, device: BLEDevice) -> None:
        """Connect to `device` and bring its link up; raises what `phonecentral.dial_phone`
        raises."""
        from pigeon.transport.ble.central import CONNECT_TIMEOUT_S
        from pigeon.transport.ble.phonecentral import dial_phone

        adapter = self._adapter
        if adapter is None:
            raise Broken(f"the {self.profile.name} transport is not bound to an adapter")

        async def discovered() -> None:
            await adapter.until_discovered(adapter.device_path(device.address))

        # The LE connect first, so that bleak's connect (which skips a connected device) never
        # sends the Disconnect that would cut a connection the phone made meanwhile.
        await adapter.connect(adapter.device_path(device.address), CONNECT_TIMEOUT_S)
        link = await dial_phone(
            device,
            self.profile,
            self._adapter_name,
            self._pacer,
            self._central_disconnected,
            self._clock,
            discovered,
        )
        peer = self.profile.peer_id(link.address)
        slots = self._slots
        if self._closed or peer in self.links() or slots is None:
            await link.close()
            return
        if not slots.admit(peer, self.profile.name, Role.WE_DIALED, link.address.upper()):
            _LOGGER.info("no %s slot left for %s", self.profile.name, peer)
            await link.close()
            return
        self._central[peer] = link
        address = link.address.upper()
        link.run(
            lambda frame: self._deliver(peer, address, frame),
            lambda reason: self._background.spawn(self._drop_central(peer, link, reason)),
        )
        self._upcall_link_up(peer, link.frame_limit)

    async def stop_links(self, reason: str) -> None:
        """The shared central stopped (the adapter went away, or it closes): links we dialed end."""
        for peer, link in list(self._central.items()):
            await self._drop_central(peer, link, reason)

    def _central_disconnected(self, address: str) -> None:
        peer = self.profile.peer_id(address)
        link = self._central.get(peer)
        if link is not None:
            self._background.spawn(self._drop_central(peer, link, "disconnected"))

    async def _drop_central(self, peer: PeerId, link: PhoneCentralLink, reason: str) -> None:
        if self._central.get(peer) is not link:
            return
        del self._central[peer]
        if self._slots is not None:
            self._slots.closed(peer)
        await link.close()
        self._upcall_link_down(peer, reason)

    # adapter events (called by the BleTransport)

    def adapter_lost(self, reason: str) -> None:
        """The adapter or bluetoothd went away: links devices dialed are gone."""
        for peer in list(self._peripheral):
            self._drop_peripheral(peer, reason)

    def neighbour_changed(self, neighbour: Neighbour) -> None:
        """A device disconnected: a link it dialed is gone."""
        if neighbour.connected:
            return
        for peer, link in list(self._peripheral.items()):
            if link.device == neighbour.path:
                self._drop_peripheral(peer, "disconnected")

    # the peripheral side

    def _on_write(self, device: str, value: bytes, mtu: int | None) -> None:
        """A central wrote `value` to the service's inbound characteristic; raises WriteRefused
        (BlueZ answers a write with response with an ATT error, and drops one without)."""
        from pigeon.transport.ble.gattobjects import WriteRefused

        name = self.profile.name
        if self._closed or self._sink is None:
            raise WriteRefused(f"the {name} service is not running")
        try:
            address = address_of(device)
        except ValueError as exc:
            raise WriteRefused(str(exc)) from exc
        peer = self.profile.peer_id(address)
        try:
            self.profile.check_frame(value)
        except MalformedLinkFrame as exc:
            _LOGGER.info("refused a %s write from %s: %s", name, device, exc)
            self._strike(device, address, peer)
            raise WriteRefused(str(exc)) from exc
        if peer not in self._central and peer not in self._peripheral:
            refusal = self._open_peripheral(peer, device, mtu)
            if refusal is not None:
                _LOGGER.info("refused a %s link from %s: %s", name, peer, refusal)
                if not self._carries_own_link(address):
                    self._background.spawn(self._disconnect(device))
                raise WriteRefused(refusal)
        self._deliver(peer, address, value)

    def _strike(self, device: str, address: str, peer: PeerId) -> None:
        # A write that broke the rules; a central that breaks them often is cut and backed off.
        assert self._slots is not None
        key = peer if peer in self._peripheral else None
        if self._slots.refused(address, key):
            self._background.spawn(self._disconnect(device))

    def _open_peripheral(self, peer: PeerId, device: str, mtu: int | None) -> str | None:
        """Bring up the link `device` dialed; return why not, or None."""
        if mtu is None:
            return "BlueZ did not say the link's MTU"
        value_length = peripheral_value_length(mtu)
        limit = self.profile.frame_limit(value_length)
        if limit is None:
            return (
                f"value length {value_length} is under {self.profile.name}'s "
                f"{self.profile.min_frame_limit} bytes"
            )
        assert self._slots is not None
        if self._slots.banned(address_of(device)):
            return "backed off for abuse"
        if not self._slots.admit(peer, self.profile.name, Role.IT_DIALED, address_of(device)):
            return "no link slot free"
        self._peripheral[peer] = _PeripheralPhoneLink(device, value_length)
        self._shared.join(peer)
        old = self._channel_limit
        self._channel_limit = limit if not old else min(old, limit)
        if old and self._channel_limit != old:
            # Every subscribed central hears every notification: the smallest link sets the
            # size for all of them.
            for other in self._peripheral:
                if other != peer:
                    self._upcall_link_down(other, "frame limit changed")
                    self._upcall_link_up(other, self._channel_limit)
        self._upcall_link_up(peer, self._channel_limit)
        return None

    def _drop_peripheral(self, peer: PeerId, reason: str) -> None:
        if self._peripheral.pop(peer, None) is None:
            return
        if self._slots is not None:
            self._slots.closed(peer)
        self._shared.leave(peer)
        if not self._peripheral:
            self._channel_limit = 0
        self._upcall_link_down(peer, reason)

    async def _disconnect(self, device: str) -> None:
        if self._adapter is None or not self._adapter.ready:
            return
        await self._adapter.disconnect(device, DISCONNECT_TIMEOUT_S)

    async def _notify_forever(self) -> None:
        pacer = WritePacer(self._pacer, self._clock())
        last = float("-inf")
        while True:
            value = await self._notify_queue.get()
            now = self._clock()
            delay = max(pacer.delay_s(len(value), now), last + self._gap_s - now)
            if delay > 0:
                await asyncio.sleep(delay)
            last = self._clock()
            pacer.spend(len(value), last)
            if self._objects is not None and self._adapter is not None and self._adapter.ready:
                self._objects.notify(value)

    # plumbing

    def _deliver(self, peer: PeerId, address: str, frame: bytes) -> None:
        if self._sink is not None and not self._closed and peer in self.links():
            verdict = self._sink.frame_received(peer, frame)
            if self._slots is not None:
                self._slots.judge(peer, address, verdict)

    def _evict(self, key: str, reason: EvictReason) -> None:
        """Drop the link to `key` now (the slots' decision) and hang it up."""
        peer = PeerId(key)
        central = self._central.pop(peer, None)
        if central is not None:
            self._upcall_link_down(peer, f"evicted: {reason}")
            self._background.spawn(central.close())
            return
        link = self._peripheral.get(peer)
        if link is None:
            return
        self._drop_peripheral(peer, f"evicted: {reason}")
        # A connection that also carries a link of our own service stays up.
        if not self._carries_own_link(address_of(link.device)):
            self._background.spawn(self._disconnect(link.device))

    def _upcall_link_up(self, peer: PeerId, limit: int) -> None:
        _LOGGER.info("%s link up: %s, frame limit %d", self.profile.name, peer, limit)
        if self._sink is not None and not self._closed:
            self._sink.link_up(peer, limit)

    def _upcall_link_down(self, peer: PeerId, reason: str) -> None:
        _LOGGER.info("%s link down: %s (%s)", self.profile.name, peer, reason)
        if self._sink is not None and not self._closed:
            self._sink.link_down(peer, reason)
