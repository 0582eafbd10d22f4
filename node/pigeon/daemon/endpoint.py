"""The owner's messenger on the mesh: deliveries in, packets out, ticks, and the OLED's owner view.

The messenger is sans-IO: it returns packets to send. This driver hands them to the router
(`LocalSend`), gives it the packets the router delivers for our tags, ticks it, keeps the served
tags current (`ServeTags`), tells it when its envelopes were handed to a neighbour (`note_sent`),
and keeps the OLED's `OwnerView` (lock state, unread count, latest received messages) in step
with the messenger's events. Opening the vault runs in a thread (its key derivation takes
seconds on a Pi); packets delivered meanwhile, or while the driver is not running (between
restarts, and while the identity reset holds it paused), wait in a backlog, then go in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

from pigeon.daemon.first_boot import open_vault_at_start
from pigeon.daemon.mesh_driver import MeshDriver
from pigeon.daemon.node_messenger import NodeMessenger
from pigeon.daemon.status import OwnerView
from pigeon.mesh.errors import MalformedPacket
from pigeon.mesh.packet import Packet, decode_packet
from pigeon.messenger.api import LockChanged, MessengerError
from pigeon.messenger.first_contact import relay_source
from pigeon.store.keeper import DataDir
from pigeon.ui.oled import Message

_LOGGER = logging.getLogger(__name__)

TICK_S: Final = 5.0
RELAY_REST_AFTER_S: Final = 0.002  # an envelope from a relay that took longer is paid back
OLED_MESSAGES: Final = 8


class EndpointDriver:
    """Runs one `NodeMessenger` against one `MeshDriver`."""

    def __init__(
        self,
        messenger: NodeMessenger,
        mesh: MeshDriver,
        owner: OwnerView,
        data_dir: DataDir,
        *,
        on_change: Callable[[], None] = lambda: None,
        on_send: Callable[[Packet], None] = lambda packet: None,
        clock: Callable[[], float] = time.time,
        tick_s: float = TICK_S,
    ) -> None:
        self.messenger = messenger
        self._mesh = mesh
        self._owner = owner
        self._data_dir = data_dir
        self._on_change = on_change
        self._on_send = on_send
        # Set once the start-up attempt to open the vault ended: open, or waiting for the owner.
        self.vault_opened = asyncio.Event()
        self._clock = clock
        self._tick_s = tick_s
        self._opening = False
        self._backlog: list[Packet] = []
        self._backlog_out: list[Packet] = []
        self._tags: tuple[tuple[bytes, ...], tuple[bytes, ...]] = ((), ())  # served, announced
        self._contact_of: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Called on every pass of the loop, after the messenger's packets went out: the app
        # contacts' side (`AppEndpoint.refresh` and `pump`) rides the same wakeups.
        self.on_pass: Callable[[], None] = lambda: None
        messenger.send_packets = self._send_from_any_thread
        mesh.set_deliver(self.deliver)

    def send(self, packets: Sequence[Packet]) -> None:
        """Carry our own packets."""
        for packet in packets:
            self._mesh.local_send(packet)
            self._on_send(packet)

    def _send_from_any_thread(self, packets: Sequence[Packet]) -> None:
        loop = self._loop
        if loop is None:  # between runs (a restart): sent when the driver runs again
            self._backlog_out.extend(packets)
        elif _running_loop() is loop:
            self.send(packets)
        else:  # the vault is opened in a worker thread; the router lives on the loop
            loop.call_soon_threadsafe(self.send, list(packets))

    def _wakeup(self) -> None:
        loop = self._loop
        if loop is not None and _running_loop() is not loop:
            loop.call_soon_threadsafe(self._wake.set)
        else:
            self._wake.set()

    def deliver(self, packet: Packet) -> None:
        """The router delivered a packet for one of our tags."""
        if self._opening or self._loop is None:
            self._backlog.append(packet)
            return
        self.send(self.messenger.handle_packet(packet, self._clock()))
        self._wake.set()

    async def store_from_relay(self, url: str, envelope_id: bytes, data: bytes) -> None:
        """An envelope from the owner's mailbox at relay `url`; returns once it is durable
        (vault or spool), so that the relay client may acknowledge it. Raises MessengerError
        if not. The messenger checks its tag and budgets it as coming from that relay."""
        try:
            packet = decode_packet(data)
        except MalformedPacket as exc:
            _LOGGER.info("dropped a malformed envelope from a relay: %s", exc)
            return  # acknowledged: it can never become readable
        await self.vault_opened.wait()
        started = time.perf_counter()
        self.send(self.messenger.handle_packet(packet, self._clock(), relay_source(url)))
        self._wake.set()
        # A relay hands over a whole mailbox at once, and awaiting queued items never yields:
        # let the page, the radio and the other relays run between two envelopes, and after
        # costly work rest as long as it took, so a mailbox of junk takes at most half the loop.
        spent = time.perf_counter() - started
        await asyncio.sleep(spent if spent > RELAY_REST_AFTER_S else 0)

    def mark_read(self, message_id: str) -> None:
        """The owner opened a message on the OLED: its conversation is read."""
        contact_id = self._contact_of.get(message_id)
        if contact_id is None:
            return
        try:
            self.messenger.mark_read(contact_id)
        except MessengerError as exc:
            _LOGGER.info("could not mark a conversation read: %s", exc)

    async def run(self) -> None:
        """Open the vault, then follow the messenger until cancelled."""
        self._loop = asyncio.get_running_loop()
        subscription = self.messenger.subscribe(wakeup=self._wakeup)
        try:
            await self._open_vault()
            pending, self._backlog_out = self._backlog_out, []
            self.send(pending)
            next_tick = 0.0
            while True:
                self._wake.clear()  # before draining: a wakeup from now on is not lost
                now = self._clock()
                events = subscription.drain()
                self.send(self.messenger.take_outgoing())
                self.on_pass()
                ticked = now >= next_tick
                if ticked:
                    self._tick(now)
                    next_tick = now + self._tick_s
                if any(isinstance(event, LockChanged) for event in events):
                    self._refresh_tags(now)
                if events:
                    # The owner view is read from the vault, which changes only with events;
                    # rebuilding it costs a query per contact, so a quiet tick does not.
                    self.refresh_owner_view()
                if self.messenger.held_pending:
                    # Held and parked envelopes go a slice at a time: the page, the radio
                    # and the relays run between two slices.
                    self.send(self.messenger.process_held(now))
                    await asyncio.sleep(0)
                    continue
                # asyncio.timeout, not wait_for: 3.11's wait_for loses a cancel that arrives
                # together with a wakeup, and the identity reset must be able to stop this loop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, next_tick - now)):
                        await self._wake.wait()
        finally:
            subscription.close()
            self._loop = None

    async def _open_vault(self) -> None:
        self._opening = True
        opening = asyncio.ensure_future(
            asyncio.to_thread(open_vault_at_start, self.messenger, self._data_dir, self._clock())
        )
        try:
            packets = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # A thread cannot be stopped: let it finish before anyone else touches the vault.
            with contextlib.suppress(Exception):
                await opening
            raise
        finally:
            self._opening = False
            self.vault_opened.set()
        if packets is not None:
            self.send(packets)
        backlog, self._backlog = self._backlog, []
        if backlog:
            self.send(self.messenger.handle_packets(backlog, self._clock()))
        self._refresh_tags(self._clock())
        self.refresh_owner_view()

    def _tick(self, now: float) -> None:
        self.send(self.messenger.tick(now))
        self._refresh_tags(now)
        self._note_sent(now)

    def _refresh_tags(self, now: float) -> None:
        tags = self.messenger.served_tags(now)
        announced = self.messenger.announced_tags(now)
        if (tags, announced) != self._tags:
            self._tags = (tags, announced)
            self._mesh.serve_tags(announced, tuple(t for t in tags if t not in announced))

    def _note_sent(self, now: float) -> None:
        if self.messenger.is_locked or self.messenger.is_read_only:
            return  # a read-only card keeps each message's state as it was stored
        outstanding = set(self.messenger.outstanding_envelopes())
        if not outstanding:
            return
        handed = [
            carried.packet.packet_id
            for carried in self._mesh.router.carried_packets()
            if carried.holders and carried.packet.packet_id in outstanding
        ]
        self.messenger.note_sent(handed, now)

    def refresh_owner_view(self) -> None:
        """Rebuild the OLED's owner view from the messenger (cheap: a few vault reads)."""
        owner = self._owner
        owner.vault_locked = self.messenger.is_locked
        if owner.vault_locked:
            owner.unread = 0
            owner.messages = ()
            self._contact_of = {}
        else:
            try:
                self._load_messages(owner)
            except MessengerError as exc:
                _LOGGER.info("could not read the conversations: %s", exc)
        self._on_change()

    def _load_messages(self, owner: OwnerView) -> None:
        received: list[tuple[float, Message, str]] = []
        unread_total = 0
        for contact in self.messenger.contacts():
            unread_total += contact.unread
            incoming = [
                view
                for view in self.messenger.conversation(contact.id, limit=OLED_MESSAGES)
                if view.direction == "in" and view.kind == "text"
            ]
            for rank, view in enumerate(reversed(incoming)):
                message = Message(
                    message_id=view.id,
                    sender=contact.name,
                    text=view.text or "",
                    received_at=datetime.datetime.fromtimestamp(view.created_at),
                    unread=rank < contact.unread,
                )
                received.append((view.created_at, message, contact.id))
        received.sort(key=lambda item: item[0], reverse=True)
        latest = received[:OLED_MESSAGES]
        owner.unread = unread_total
        owner.messages = tuple(message for _, message, _ in latest)
        self._contact_of = {message.message_id: contact_id for _, message, contact_id in latest}


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
