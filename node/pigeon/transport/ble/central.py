"""The node as a GATT central, with bleak: scan for the Pigeon service, dial, run links.

Only one LE connect may be pending per controller, so one task dials: it pauses scanning,
connects, opens an L2CAP channel to the peer on that connection (`l2cap`) or, where it listens
on none, waits for the negotiated MTU and subscribes to TX; then it says HELLO and waits for the
WELCOME, and scans again. Whom to dial is the host's decision (`CentralHost.wants`, fed with the
advertised identifier); failed neighbours wait out a jittered exponential backoff. Each link
writes through its own bounded queue, one write at a time: on a channel as fast as the peer
grants room, over GATT through a `WritePacer`, so BlueZ's queue never overflows. The phone
services of the node (the Pigeon app's, bitchat's: `phone`) dial through the same scanner and
task as `ExtraService`s: a device advertising their service and not ours is theirs to dial.
bleak is imported here and in `phonecentral` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, Protocol

from pigeon.transport.base import Broken
from pigeon.transport.ble.advert import SERVICE_ORDER, advert_plan, longest_silence_s
from pigeon.transport.ble.errors import BleError, MalformedLinkFrame
from pigeon.transport.ble.gatt import (
    CHANNEL_FRAME_LIMIT,
    IDENTIFIER_LEN,
    MANUFACTURER_ID,
    MIN_LINK_FRAME_LIMIT,
    RX_UUID,
    SERVICE_UUID,
    TX_UUID,
    Bye,
    ByeReason,
    Data,
    Intro,
    LinkKind,
    channel_frame_limit,
    decode_link_frame,
    encode_link_frame,
    frame_limit_for,
)
from pigeon.transport.ble.hangup import connect, hang_up
from pigeon.transport.ble.l2cap import Channel, ChannelClosed, ChannelUnavailable, address_type_code
from pigeon.transport.ble.l2cap import connect as open_channel
from pigeon.transport.ble.linkwriter import DRAIN_S, LinkWriter
from pigeon.transport.ble.policy import (
    PacerParams,
    ReconnectBackoff,
    WritePacer,
    new_link_tag,
)

if TYPE_CHECKING:
    from bleak import BleakClient
    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData
    from bleak.backends.service import BleakGATTServiceCollection

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT_S: Final = 20.0
WELCOME_TIMEOUT_S: Final = 10.0
MTU_WAIT_S: Final = 2.0
SEEN_TTL_S: Final = 60.0
IDLE_RECHECK_S: Final = 1.0
# A node advertises each of its services from its own advertising instance, and BlueZ shows a
# scanner the UUIDs of all only once it has heard all: a device is dialed for another service
# only after it advertised that long without our own service (a node is dialed as a node). On a
# legacy controller a node running every service keeps ours off the air for two turns of the
# others (`advert.longest_silence_s`); the rest is room for our own scan pauses.
EXTRA_SETTLE_S: Final = longest_silence_s(advert_plan(SERVICE_ORDER)) + 3.0


class CentralHost(Protocol):
    """What the central asks and tells the transport; implementations must not block."""

    def identifier(self) -> bytes:
        """Our identifier right now."""

    def wants(self, address: str, identifier: bytes, waited_s: float) -> bool:
        """Whether to dial the node advertising `identifier` at `address`, seen for `waited_s`."""

    def shares_connection(self, address: str) -> bool:
        """Whether a link the peer at `address` dialed rides the same LE connection."""

    def channel_source(self) -> str | None:
        """Our adapter's address to open L2CAP channels from, or None to link over GATT only."""

    def central_link_up(self, link: CentralLink) -> None:
        """`link` finished its HELLO/WELCOME exchange."""

    def central_frame(self, link: CentralLink, frame: bytes) -> None:
        """`link`'s peer notified a DATA frame for us."""

    def central_link_down(self, link: CentralLink, reason: str) -> None:
        """`link` is gone (after `central_link_up` only)."""

    async def clear_stale_discovery(self) -> None:
        """Called before each scan: make bluetoothd forget a discovery no one runs any more."""

    async def until_discovered(self, address: str) -> None:
        """Until bluetoothd's GATT discovery of the connected device at `address` is over (a
        bounded wait): a dial that failed hangs up only then."""

    async def connect_device(self, address: str, within_s: float) -> None:
        """Connect to the device at `address`, or find it connected by the peer meanwhile
        (`adapter.BlueZAdapter.connect`); raises TimeoutError or BleError."""


class ExtraService(Protocol):
    """Another service whose devices the central dials, one connect at a time with ours."""

    @property
    def service_uuid(self) -> str:
        """The service UUID its devices advertise."""

    def wants_dial(self, address: str) -> bool:
        """Whether to dial the device advertising the service at `address` now."""

    async def dial(self, device: BLEDevice) -> None:
        """Connect and bring the link up; raise BleakError, Broken, TimeoutError or OSError."""

    async def stop_links(self, reason: str) -> None:
        """Drop every link it dialed (the central stops)."""


@dataclass(frozen=True, slots=True)
class ExtraSighting:
    """One advertisement of a device of an `ExtraService`."""

    device: BLEDevice
    service: ExtraService
    seen_at: float
    first_seen: float


@dataclass(frozen=True, slots=True)
class Sighting:
    """One advertisement of a Pigeon node."""

    device: BLEDevice
    identifier: bytes
    seen_at: float
    first_seen: float


def identifier_from(adv: AdvertisementData) -> bytes | None:
    """The Pigeon identifier in an advertisement, or None if it carries none."""
    if SERVICE_UUID not in adv.service_uuids:
        return None
    data = adv.manufacturer_data.get(MANUFACTURER_ID)
    if data is None or len(data) != IDENTIFIER_LEN:
        return None
    return bytes(data)


def pigeon_characteristics(
    services: BleakGATTServiceCollection,
) -> tuple[BleakGATTCharacteristic, BleakGATTCharacteristic] | None:
    """The RX and TX characteristics of the peer's Pigeon service, or None.

    After the peer registered its service again (its node or bluetoothd restarted), BlueZ can
    still list the earlier registration beside the new one for a while: the service with the
    highest handle that has both characteristics is the newest.
    """
    ours = [s for s in services if s.uuid == SERVICE_UUID]
    for service in sorted(ours, key=lambda s: s.handle, reverse=True):
        rx, tx = service.get_characteristic(RX_UUID), service.get_characteristic(TX_UUID)
        if rx is not None and tx is not None:
            return rx, tx
    return None


class Refused(Broken):
    """The peer answered our HELLO with a BYE."""

    def __init__(self, reason: int) -> None:
        super().__init__(f"refused: {_reason(reason)}")
        self.reason = reason


class CentralLink:
    """One connection we opened: its handshake, inbound filter and writer. Its link frames
    travel on an L2CAP channel when `channel` is given (then `pacer` is None: the channel's
    credits bound it), otherwise as writes to `rx` and notifications."""

    def __init__(
        self,
        client: BleakClient,
        rx: BleakGATTCharacteristic,
        link_tag: bytes,
        frame_limit: int,
        pacer: WritePacer | None,
        clock: Callable[[], float],
        channel: socket.socket | None = None,
    ) -> None:
        self.client = client
        self.address = client.address
        self.link_tag = link_tag
        self.frame_limit = frame_limit
        self.peer_identifier = b""
        self.up = False  # received DATA frames are delivered
        self._rx = rx
        self.notifying: BleakGATTCharacteristic | None = None  # once notifications are on
        self._welcome: asyncio.Future[Intro] = asyncio.get_running_loop().create_future()
        self.channel = (
            None
            if channel is None
            else Channel(channel, self.address, self.on_notify, self._channel_ended)
        )
        if self.channel is not None:
            self.frame_limit = channel_frame_limit(frame_limit, self.channel.send_mtu())
        self._writer = LinkWriter(
            self._write,
            (*write_failures(), ChannelClosed),
            pacer,
            clock,
            self.address,
            lambda reason: self._on_bye(reason),
        )
        self._on_frame: Callable[[bytes], None] = lambda frame: None
        self._on_bye: Callable[[str], None] = lambda reason: None

    @property
    def queued_bytes(self) -> int:
        """What its write queue holds."""
        return self._writer.queued_bytes

    def _channel_ended(self, reason: str) -> None:
        if not self._welcome.done():
            self._welcome.set_exception(Broken(reason))
            self._welcome.exception()  # a handshake may never await it: no "never retrieved"
        self._on_bye(reason)

    def on_notify(self, value: bytes) -> None:
        """A link frame from the peer: a notification of its TX characteristic (addressed to any
        of its centrals), or an SDU on our channel."""
        try:
            frame = decode_link_frame(value)
        except MalformedLinkFrame as exc:
            _LOGGER.info("dropped a malformed link frame from %s: %s", self.address, exc)
            return
        if frame.link_tag != self.link_tag:
            return  # for another central of the same node
        if isinstance(frame, Data):
            if self.up:
                self._on_frame(frame.frame)
        elif isinstance(frame, Bye):
            if not self._welcome.done():
                self._welcome.set_exception(Refused(frame.reason))
            self._on_bye(f"peer said bye: {_reason(frame.reason)}")
        elif frame.kind == LinkKind.WELCOME and not self._welcome.done():
            self._welcome.set_result(frame)

    async def handshake(self, identifier: bytes) -> None:
        """Say HELLO and wait for WELCOME; raises Broken or TimeoutError."""
        hello = Intro(LinkKind.HELLO, self.link_tag, identifier, self.frame_limit)
        await self._write(encode_link_frame(hello))  # before the writer starts: unpaced
        async with asyncio.timeout(WELCOME_TIMEOUT_S):
            welcome = await self._welcome
        self.peer_identifier = welcome.identifier
        self.frame_limit = min(self.frame_limit, welcome.frame_limit)

    def run(self, on_frame: Callable[[bytes], None], on_bye: Callable[[str], None]) -> None:
        """Start delivering frames and writing the queue."""
        self._on_frame = on_frame
        self._on_bye = on_bye
        self.up = True
        self._writer.start()

    def offer(self, frame: bytes) -> None:
        """Queue a DATA frame; raises Busy if the queue is full, Broken if the link is down."""
        self._writer.offer(encode_link_frame(Data(self.link_tag, frame)))

    async def _write(self, value: bytes) -> None:
        if self.channel is not None:
            await self.channel.send(value)
        else:
            await self.client.write_gatt_char(self._rx, value, response=False)

    async def close(
        self,
        say_bye: bool,
        disconnect: bool = True,
        bye_reason: ByeReason = ByeReason.CLOSING,
        keep_receiving: bool = False,
    ) -> None:
        """Write what is queued (for up to DRAIN_S), optionally say BYE, and disconnect.

        Two controllers share one LE connection whichever side dialed, so a link that loses
        the duplicate tie-break only says BYE (`disconnect=False`): disconnecting would also
        cut the link that won. It may also `keep_receiving`: frames the peer sent before it
        saw our BYE still arrive on it.
        """
        self.up = keep_receiving
        await self._writer.stop()
        if not self._welcome.done():
            self._welcome.set_exception(Broken("disconnected during the handshake"))
            self._welcome.exception()  # a handshake may never await it: no "never retrieved"
        with contextlib.suppress(Exception):
            if say_bye and self.client.is_connected:
                async with asyncio.timeout(DRAIN_S):
                    await self._write(encode_link_frame(Bye(self.link_tag, bye_reason)))
        if self.channel is not None and not keep_receiving:
            self.channel.close()
        if disconnect:
            if self.channel is not None:
                self.channel.close()
            await hang_up(self.client, self.notifying)


def write_failures() -> tuple[type[BaseException], ...]:
    """What ends a link's writes: bleak's errors and a connection gone (bleak loads lazily)."""
    from bleak.exc import BleakError

    return (BleakError, EOFError, OSError)


def _reason(code: int) -> str:
    try:
        return ByeReason(code).name.lower()
    except ValueError:
        return f"reason {code}"


class BleCentral:
    """Scans one adapter for Pigeon nodes and dials the ones the host wants, one at a time."""

    def __init__(
        self,
        adapter_name: str,
        host: CentralHost,
        rng: random.Random,
        pacer_params: PacerParams,
        clock: Callable[[], float] = time.monotonic,
        extras: Sequence[ExtraService] = (),
    ) -> None:
        self._adapter_name = adapter_name
        self._host = host
        self._extras = tuple(extras)
        self._extra_seen: dict[str, ExtraSighting] = {}
        self._rng = rng
        self._pacer_params = pacer_params
        self._clock = clock
        self._backoff = ReconnectBackoff(rng)
        self._seen: dict[str, Sighting] = {}
        self._sighted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._links: dict[str, CentralLink] = {}
        self._pending: BleakClient | None = None
        self._closed = False

    def start(self) -> None:
        """Begin scanning and dialing (again, after `stop`)."""
        if self._closed or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, reason: str, say_bye: bool = False) -> None:
        """Stop scanning and drop every link, reporting each as down with `reason`."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for link in list(self._links.values()):
            await self._drop(link, reason, say_bye)
        for extra in self._extras:
            await extra.stop_links(reason)
        self._extra_seen.clear()
        # What was seen before (say, before bluetoothd restarted) says nothing about who dials
        # first now: a kept sighting made the node with the higher identifier dial at once,
        # together with the other, and two controllers initiating to each other both time out.
        self._seen.clear()

    async def aclose(self) -> None:
        """Stop for good, saying BYE on every link."""
        self._closed = True
        await self.stop("closed", say_bye=True)

    async def yield_duplicate(self, link: CentralLink) -> None:
        """Say BYE on a link that lost the duplicate tie-break, keeping the shared connection."""
        if self._links.get(link.address) is not link:
            return
        del self._links[link.address]
        await link.close(True, False, ByeReason.DUPLICATE, keep_receiving=True)

    async def evict(self, link: CentralLink, reason: str) -> None:
        """End `link` for the host's slots: BYE (no room), then hang up."""
        await self._drop(link, reason, True, bye_reason=ByeReason.NO_ROOM)

    async def _drop(
        self,
        link: CentralLink,
        reason: str,
        say_bye: bool,
        disconnect: bool = True,
        bye_reason: ByeReason = ByeReason.CLOSING,
    ) -> None:
        if self._links.get(link.address) is not link:
            return
        del self._links[link.address]
        self._restart_patience(link.address)
        was_up = link.up
        # Two controllers share one LE connection: disconnecting it would also cut the link
        # the peer dialed to us.
        shared = self._host.shares_connection(link.address)
        await link.close(say_bye, disconnect and not shared, bye_reason)
        if was_up:
            self._host.central_link_down(link, reason)

    def _restart_patience(self, address: str) -> None:
        # The sighting stays: BlueZ reports an unchanged advertisement only once, so dropping
        # it would leave the peer unseen until its device object expires (30 s).
        sighting = self._seen.get(address)
        if sighting is not None:
            self._seen[address] = replace(sighting, first_seen=self._clock())

    def _on_advertisement(self, device: BLEDevice, adv: AdvertisementData) -> None:
        identifier = identifier_from(adv)
        if identifier is None:
            if SERVICE_UUID not in adv.service_uuids:
                self._on_extra_advertisement(device, adv)
            return
        self._extra_seen.pop(device.address, None)
        now = self._clock()
        old = self._seen.get(device.address)
        first = now if old is None else old.first_seen
        self._seen[device.address] = Sighting(device, identifier, now, first)
        self._sighted.set()

    def _on_extra_advertisement(self, device: BLEDevice, adv: AdvertisementData) -> None:
        for extra in self._extras:
            if extra.service_uuid in adv.service_uuids and device.address not in self._seen:
                now = self._clock()
                old = self._extra_seen.get(device.address)
                first = now if old is None else old.first_seen
                self._extra_seen[device.address] = ExtraSighting(device, extra, now, first)
                self._sighted.set()
                return

    def _next(self, now: float) -> Sighting | ExtraSighting | None:
        for address, sighting in list(self._seen.items()):
            if now - sighting.seen_at > SEEN_TTL_S:
                del self._seen[address]
            elif (
                address not in self._links
                and self._backoff.ready(address, now)
                and self._host.wants(address, sighting.identifier, now - sighting.first_seen)
            ):
                return sighting
        for address, extra in list(self._extra_seen.items()):
            if now - extra.seen_at > SEEN_TTL_S:
                del self._extra_seen[address]
            elif (
                now - extra.first_seen >= EXTRA_SETTLE_S
                and address not in self._links
                and self._backoff.ready(address, now)
                and extra.service.wants_dial(address)
            ):
                return extra
        return None

    async def _run(self) -> None:
        from bleak import BleakScanner
        from bleak.exc import BleakError

        while True:
            await self._host.clear_stale_discovery()
            uuids = [SERVICE_UUID, *(extra.service_uuid for extra in self._extras)]
            scanner = BleakScanner(
                self._on_advertisement, uuids, bluez={"adapter": self._adapter_name}
            )
            # A cancel that lands while StartDiscovery is under way must not abandon it: bleak
            # would never learn that the scan started, so it could not stop it, and BlueZ would
            # answer every later StartDiscovery from bleak's bus with InProgress. The start runs
            # shielded and is always finished, then stopped.
            starting = asyncio.ensure_future(scanner.start())
            try:
                await asyncio.shield(starting)
                sighting = await self._wait_for_candidate()
            except (BleakError, EOFError, OSError) as exc:
                _LOGGER.info("scan on %s did not start: %s", self._adapter_name, exc)
                sighting = None
            finally:
                with contextlib.suppress(BleakError, EOFError, OSError):
                    await starting
                    await scanner.stop()
            if sighting is None:
                await asyncio.sleep(IDLE_RECHECK_S)
            elif isinstance(sighting, ExtraSighting):
                await self._dial_extra(sighting)
            else:
                await self._dial(sighting)

    async def _dial_extra(self, sighting: ExtraSighting) -> None:
        from bleak.exc import BleakError

        address = sighting.device.address
        _LOGGER.info("dialing %s for service %s", address, sighting.service.service_uuid)
        try:
            await sighting.service.dial(sighting.device)
        except (BleakError, BleError, Broken, TimeoutError, EOFError, OSError) as exc:
            delay = self._backoff.failed(address, self._clock())
            why = str(exc) or type(exc).__name__
            _LOGGER.info("dial %s failed (%s); next try in %.1f s", address, why, delay)
            return
        self._backoff.succeeded(address)
        # Linked: the sighting is spent. A phone whose link drops has walked away or dropped
        # us; dialing it again on this old sighting would hold the one dialing task (and a
        # pending LE connect) for the whole connect timeout. It is dialed again once it
        # advertises again.
        self._extra_seen.pop(address, None)

    async def _wait_for_candidate(self) -> Sighting | ExtraSighting:
        while (sighting := self._next(self._clock())) is None:
            self._sighted.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(IDLE_RECHECK_S):
                    await self._sighted.wait()
        return sighting

    async def _dial(self, sighting: Sighting) -> None:
        from bleak.exc import BleakError

        address = sighting.device.address
        _LOGGER.info("dialing %s", address)
        link: CentralLink | None = None
        try:
            link = await self._connect(sighting.device)
            await link.handshake(self._host.identifier())
        except (BleakError, BleError, Broken, TimeoutError, EOFError, OSError) as exc:
            delay = self._backoff.failed(address, self._clock())
            # Patience (CentralHost.wants) starts over: two nodes that dialed each other at
            # once (the higher one out of patience) would otherwise retry in step, each
            # initiating while the other does, until both time out again.
            self._restart_patience(address)
            why = str(exc) or type(exc).__name__
            _LOGGER.info("dial %s failed (%s); next try in %.1f s", address, why, delay)
            duplicate = isinstance(exc, Refused) and exc.reason == ByeReason.DUPLICATE
            shared = self._host.shares_connection(address)
            if link is not None:
                self._links.pop(address, None)
                await link.close(say_bye=False, disconnect=not (duplicate or shared))
            elif self._pending is not None and not shared:
                # bleak reuses a connection the peer made meanwhile (it skips Connect then), and
                # finds no services while bluetoothd still discovers them.
                await hang_up(
                    self._pending, discovered=lambda: self._host.until_discovered(address)
                )
            return
        except asyncio.CancelledError:
            # stop() while connecting: a connect BlueZ already made must not outlive us.
            if self._pending is not None and not self._host.shares_connection(address):
                await hang_up(
                    self._pending, discovered=lambda: self._host.until_discovered(address)
                )
            raise
        finally:
            self._pending = None
        self._backoff.succeeded(address)
        _LOGGER.info("link to %s up, frame limit %d", address, link.frame_limit)
        live = link
        live.run(
            lambda frame: self._host.central_frame(live, frame),
            lambda reason: self._spawn_drop(live, reason),
        )
        self._host.central_link_up(live)

    async def _connect(self, device: BLEDevice) -> CentralLink:
        from bleak import BleakClient

        # The LE connect first, so that bleak's connect (which skips a connected device) never
        # sends the Disconnect that would cut a connection the peer made meanwhile.
        await self._host.connect_device(device.address, CONNECT_TIMEOUT_S)
        client = BleakClient(
            device,
            lambda c: self._spawn_drop_address(c.address, "disconnected"),
            timeout=CONNECT_TIMEOUT_S,
            bluez={"adapter": self._adapter_name},
        )
        self._pending = client
        await connect(client)
        found = pigeon_characteristics(client.services)
        if found is None:
            raise Broken("the peer has no Pigeon characteristics")
        rx, tx = found
        channel = await self._open_channel(device)
        if channel is not None:
            link = CentralLink(
                client,
                rx,
                new_link_tag(self._rng),
                CHANNEL_FRAME_LIMIT,
                None,  # the channel's credits bound it
                self._clock,
                channel,
            )
            self._links[client.address] = link
            if link.frame_limit < MIN_LINK_FRAME_LIMIT:
                raise Broken(f"the peer's channel takes only {link.frame_limit}-byte frames")
            return link
        limit = await self._frame_limit(rx)
        link = CentralLink(
            client,
            rx,
            new_link_tag(self._rng),
            limit,
            WritePacer(self._pacer_params, self._clock()),
            self._clock,
        )
        self._links[client.address] = link
        # AcquireNotify, not StartNotify: BlueZ batches Value PropertiesChanged signals, so a
        # burst of notifications read through D-Bus properties loses all but the last.
        await client.start_notify(
            tx, lambda _c, value: link.on_notify(bytes(value)), bluez={"use_start_notify": False}
        )
        link.notifying = tx
        if limit < MIN_LINK_FRAME_LIMIT:
            raise Broken(f"negotiated MTU leaves only {limit}-byte frames")
        return link

    async def _open_channel(self, device: BLEDevice) -> socket.socket | None:
        source = self._host.channel_source()
        if source is None:
            return None
        props = device.details.get("props", {}) if isinstance(device.details, dict) else {}
        kind = address_type_code(str(props.get("AddressType", "public")))
        try:
            return await open_channel(source, device.address, kind)
        except ChannelUnavailable as exc:
            _LOGGER.info("no L2CAP channel to %s (%s): linking over GATT", device.address, exc)
            return None

    async def _frame_limit(self, rx: BleakGATTCharacteristic) -> int:
        return frame_limit_for(await settled_value_length(rx, self._clock))

    def _spawn_drop(self, link: CentralLink, reason: str) -> None:
        asyncio.get_running_loop().create_task(self._drop(link, reason, say_bye=False))

    def _spawn_drop_address(self, address: str, reason: str) -> None:
        link = self._links.get(address)
        if link is not None:
            self._spawn_drop(link, reason)


async def settled_value_length(rx: BleakGATTCharacteristic, clock: Callable[[], float]) -> int:
    """The longest value `rx` takes once BlueZ exchanged the MTU, right after connecting (it
    reads 20 until then). BlueZ sends no signal bleak exposes for it, so this polls briefly,
    then accepts what is there."""
    deadline = clock() + MTU_WAIT_S
    while rx.max_write_without_response_size <= 20 and clock() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    return int(rx.max_write_without_response_size)
