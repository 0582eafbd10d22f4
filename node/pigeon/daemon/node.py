"""The composition root: one `Node` built from config, its parts run under one TaskGroup.

Start-up: the self-test table, then the data directory (device key, spool), the router with its
saved seen-cache, the radio, the OLED, the pairing manager and the web page; READY=1 goes to
systemd once the radio runs and the page listens. The vault is opened after READY (first boot
creates it; see `first_boot`), because its key derivation takes seconds on a Pi. Every part runs
under the `Supervisor`; a part that gives up stops the node with its reason. Shutdown (the `stop`
event, set by SIGTERM or SIGINT) cancels the parts and then flushes the router's state.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

from pigeon.appmesh.router import AppRouter
from pigeon.bitchat.chat import PublicMessage
from pigeon.bitchat.courier import CourierConfig
from pigeon.bitchat.router import BitchatRouter
from pigeon.config import NodeConfig
from pigeon.daemon import hardware
from pigeon.daemon.app_contact_relays import AppContactRelays
from pigeon.daemon.app_endpoint import AppEndpoint
from pigeon.daemon.app_uplink import AppUplink, AppUplinkPolicy
from pigeon.daemon.appmesh_driver import AppMeshDriver
from pigeon.daemon.bitchat_courier import CourierService
from pigeon.daemon.bitchat_driver import BitchatDriver
from pigeon.daemon.bitchat_gateway import GatewayService
from pigeon.daemon.bitchat_identity import (
    PAGE_SECRET_NAME,
    bitchat_nickname,
    load_or_create_bitchat_identity,
)
from pigeon.daemon.card import persist_guarded, probe
from pigeon.daemon.carrier import Carrier, CarryPolicy
from pigeon.daemon.clock_sync import system_clock_synchronized
from pigeon.daemon.endpoint import EndpointDriver
from pigeon.daemon.identity_reset import RESET_PENDING_S, IdentityResetter, ResetScope
from pigeon.daemon.mesh_driver import MeshDriver
from pigeon.daemon.node_messenger import NodeMessenger
from pigeon.daemon.oled_loop import OledLoop
from pigeon.daemon.panel import NodePanel
from pigeon.daemon.relay_bridge import RelayBridge
from pigeon.daemon.sdnotify import Notifier
from pigeon.daemon.selftest import run_selftest
from pigeon.daemon.spool_sync import SpoolSync, load_seen_cache
from pigeon.daemon.status import NodeStatusBoard
from pigeon.daemon.supervisor import (
    Part,
    PartFailed,
    PartState,
    RestartPolicy,
    Supervisor,
    describe,
)
from pigeon.drivers.errors import DriverError
from pigeon.mesh.router import Router, RouterConfig
from pigeon.messenger.config import MessengerConfig
from pigeon.messenger.neighbourhood import Neighbourhood
from pigeon.store.errors import ReadOnlyStore, StoreError
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import load_or_create_device_key
from pigeon.store.spool_db import Spool
from pigeon.store.vault_records import PublicChatLine
from pigeon.transport.sim import SimMedium
from pigeon.ui.oled import (
    CancelPairing,
    CancelReset,
    MarkRead,
    Pairing,
    RequestReset,
    StartPairing,
    UiRequest,
)
from pigeon.ui.web.pairing import MAX_TRIES as PAIRING_MAX_TRIES
from pigeon.ui.web.pairing import Pairing as PairingManager
from pigeon.ui.web.ports import RelayStatus, WebConfig
from pigeon.ui.web.session_file import FilePairingStore
from pigeon.ui.web.tls import ensure_certificate

_LOGGER = logging.getLogger(__name__)

_Device = TypeVar("_Device")

EXIT_OK: Final = 0
EXIT_PART_FAILED: Final = 1
EXIT_SELFTEST: Final = 3
EXIT_STORE: Final = 4
SPOOL_SYNC_S: Final = 60.0
STATUS_EVERY_S: Final = 10.0
HEALTHY_TICK_FACTOR: Final = 3.0
SESSIONS_FILE: Final = "browsers.json"
CERT_DIR: Final = "tls"


@dataclass(frozen=True, slots=True)
class NodeEnvironment:
    """What the process around the node provides (the demo runs several nodes in one process)."""

    medium: SimMedium | None = None
    sim_position: tuple[float, float] = (0.0, 0.0)
    notifier: Notifier = field(default_factory=Notifier)
    selftest: bool = True
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    web: bool = True
    page_host: str | None = None  # the host name the OLED shows; default "<node name>.local"
    reset_pending_s: float = RESET_PENDING_S  # how long a reset asked for on the buttons waits


class StopRequested(Exception):
    """The stop event was set: shut down cleanly."""


def node_name(config: NodeConfig, device_key: bytes, host_name: str) -> str:
    """The configured name; else the host's own pigeon-XXXX name (what mDNS answers to, set by
    the image and the Ansible role); else "pigeon-XXXX" from a hash of the device key."""
    if config.node.name:
        return config.node.name
    if re.fullmatch(r"pigeon-[0-9a-f]{4}", host_name):
        return host_name
    digest = hashlib.sha256(b"pigeon-node-name:" + device_key).hexdigest()
    return f"pigeon-{digest[:4]}"


class Node:
    """One node; `run(stop)` returns the process exit status."""

    def __init__(self, config: NodeConfig, env: NodeEnvironment | None = None) -> None:
        self.config = config
        self.env = env or NodeEnvironment()
        self.data_dir = DataDir(Path(config.node.data_dir))
        self.notifier = self.env.notifier
        self.supervisor = Supervisor(self.env.restart)
        self.keeper = VaultKeeper(self.data_dir, ephemeral=config.messenger.ephemeral)
        self.name = ""
        self.web_url = ""
        self.stop_reason = ""
        self._spool: Spool | None = None
        self._sync: SpoolSync | None = None
        self.ready = asyncio.Event()
        self.mesh_started = asyncio.Event()
        self.web_started = asyncio.Event()
        self.web_ports: tuple[int, int | None] | None = None

    async def run(self, stop: asyncio.Event) -> int:
        """Run until `stop` is set or a part fails for good; flushes the stores on the way out."""
        if self.env.selftest:
            self.notifier.status("running the self-test")
            result = run_selftest()
            if not result.passed:
                names = ", ".join(name for name, _ in result.failures)
                self.stop_reason = f"self-test failed: {names}"
                self.notifier.status(self.stop_reason)
                return EXIT_SELFTEST
        try:
            self._build()
        except Exception as exc:  # a store or a driver that cannot start: say why, then stop
            self.stop_reason = f"cannot start: {describe(exc)}"
            _LOGGER.error("%s", self.stop_reason)
            self.notifier.status(self.stop_reason)
            self._flush()
            return EXIT_STORE
        try:
            return await self._run_parts(stop)
        finally:
            self._flush()

    # -- building -------------------------------------------------------------------------------

    def _build(self) -> None:
        config = self.config
        self.notifier.status("opening the data directory")
        self.data_dir.ensure()
        device_key = load_or_create_device_key(self.data_dir.device_key)
        self.name = node_name(config, device_key.raw, socket.gethostname())
        page_host = self.env.page_host or f"{self.name}.local"
        self.web_url = f"https://{page_host}:{config.web.https_port}/"
        self._spool = open_spool(self.data_dir)
        router_config = RouterConfig(routing=config.routing.policy)
        seen = load_seen_cache(self._spool, router_config)
        router = Router(router_config, random.Random(os.urandom(16)), seen)
        self._sync = SpoolSync(router, self._spool)
        self._sync.restore(time.time())
        self.driver = MeshDriver(router)
        self.board = NodeStatusBoard(
            self.name,
            config.radio.kind,
            self.web_url,
            self.driver,
            twelve_hour=config.node.clock == "12h",
        )
        # Told from the start: a card that is already read-only (or full) at boot opens the
        # stores read-only, and the first spool sync would say so only a minute later.
        self.board.note_card(probe(self.data_dir.root))
        self._make_transport = self._transport_factory()
        self._build_appmesh()
        self._build_bitchat()
        self._make_radio: hardware.RadioFactory | None = None
        if config.radio.kind == "ble":  # every service's links ride one adapter: the radio part
            self._make_radio = hardware.ble_radio_factory(
                config.radio,
                app=self.app_driver is not None,
                bitchat=self.bitchat_driver is not None,
            )
        display = self._optional("display", lambda: hardware.make_display(config.display))
        buttons = self._optional("buttons", lambda: hardware.make_buttons(config.buttons))
        self.oled = OledLoop(display, buttons, self.board.view_state, self._on_ui_request)
        self.panel = NodePanel(display, buttons, lambda: self.oled.view)
        store = FilePairingStore(self.data_dir.root / SESSIONS_FILE)
        self.addresses = local_addresses()
        self.hostnames = tuple(dict.fromkeys((f"{self.name}.local", page_host, "localhost")))
        self.cert_dir = self.data_dir.root / CERT_DIR
        self.cert = ensure_certificate(self.cert_dir, self.hostnames, self.addresses)
        self.pairing = PairingManager(store, on_change=self._pairing_changed)
        self.board.owner.owner_paired = self.pairing.is_paired()
        app_mailboxes = self.app_uplink.relays if self.app_uplink is not None else ()
        self.messenger = NodeMessenger(
            self.keeper, self._spool, config=messenger_config(config, app_mailboxes)
        )
        self._build_neighbourhood()
        self.carrier = Carrier(carry_policy(config))
        self.driver.set_uplink(self.carrier.offer)
        for carried in router.carried_envelopes():  # restored: their deposits may not have run
            if carried.packet.mailbox_hint:
                self.carrier.offer(carried.packet)
        self.board.carried_to_relays = lambda: self.carrier.counters["carried"]
        self.bridge = RelayBridge(
            config.relays.urls,
            owner=self.messenger.mailbox_owner,
            store=self._store_from_relay,
            targets=self.messenger.deposit_target,
            on_relayed=lambda ids: self.messenger.note_relayed(ids, time.time()),
            on_status=self._relays_changed,
        )
        self.endpoint = EndpointDriver(
            self.messenger,
            self.driver,
            self.board.owner,
            self.data_dir,
            on_change=self.oled.refresh,
            on_send=self.bridge.offer,
        )
        self.app_contact_relays: AppContactRelays | None = None
        if self.app_driver is not None:
            app = AppEndpoint(self.messenger, self.app_driver)
            self.app_endpoint: AppEndpoint | None = app
            if self.app_uplink is not None and self.app_uplink.relays:
                # The owner's app mailbox lives on the same app relays the bridge uses.
                self.app_contact_relays = AppContactRelays(
                    self.messenger,
                    app,
                    self.app_uplink.relays,
                    private_addresses=self.config.appmesh.relay_private_addresses,
                )
                app.set_publish(self.app_contact_relays.publish)

            def app_pass() -> None:
                app.refresh()
                app.pump()

            self.endpoint.on_pass = app_pass
        else:
            self.app_endpoint = None
        self.identity_reset = IdentityResetter(
            ResetScope(
                self.keeper,
                self.messenger,
                self._spool,
                self.pairing,
                self.data_dir.root / SESSIONS_FILE,
            ),
            self.supervisor,
            self.board.owner,
            on_change=self.oled.refresh,
            send=self.endpoint.send,
            pending_s=self.env.reset_pending_s,
        )
        _LOGGER.info("node %s built (radio %s)", self.name, config.radio.kind)

    def _build_appmesh(self) -> None:
        """The Pigeon app's mesh on its own transport, and its uplink bridge (`[appmesh]`)."""
        self.app_driver: AppMeshDriver | None = None
        self.app_uplink: AppUplink | None = None
        section = self.config.appmesh
        if not section.enabled:
            return
        if self.config.radio.kind != "ble":  # on BLE the app's links ride our radio's adapter
            self._make_app_transport = self._app_transport_factory()
        self.app_uplink = AppUplink(
            AppUplinkPolicy(
                relays=section.relays,
                per_hour=section.bridge_per_hour,
                private_addresses=section.relay_private_addresses,
            )
        )
        uplink = self.app_uplink.offer if self.app_uplink.relays else None
        self.app_driver = AppMeshDriver(AppRouter(), uplink=uplink)
        self.board.app_driver = self.app_driver
        self.board.app_uplink = self.app_uplink

    def _build_bitchat(self) -> None:
        """bitchat's mesh on its own transport, as the node's own bitchat identity (`[bitchat]`)."""
        self.bitchat_driver: BitchatDriver | None = None
        self.bitchat_gateway: GatewayService | None = None
        section = self.config.bitchat
        if not section.enabled:
            return
        if self.config.radio.kind != "ble":  # on BLE bitchat's links ride our radio's adapter
            self._make_bitchat_transport = self._bitchat_transport_factory()
        assert self._spool is not None  # opened first in `_build`
        identity = load_or_create_bitchat_identity(self._spool, time.time())
        router = BitchatRouter(identity.peer_id, random.Random(os.urandom(16)))
        self.bitchat_driver = BitchatDriver(
            router,
            identity,
            bitchat_nickname(section.nickname, self.name),
            announce_interval_s=section.announce_interval_s,
            clock_synchronized=system_clock_synchronized,
        )
        if section.courier:
            self.bitchat_driver.courier = CourierService(
                identity,
                router,
                self.bitchat_driver.chat,
                self._spool.courier_shelf(),
                CourierConfig(section.courier_max_held, section.courier_per_depositor),
            )
        if section.gateway and section.nostr_relays:
            self.bitchat_gateway = GatewayService(
                self.bitchat_driver, section.nostr_relays, self._spool.drop_ledger()
            )
            self.bitchat_driver.gateway = self.bitchat_gateway
        self.board.bitchat_driver = self.bitchat_driver
        self.board.bitchat_gateway = self.bitchat_gateway

    def _build_neighbourhood(self) -> None:
        """The owner's Neighbourhood view: bitchat's public chat heard, and posts from the page."""
        self.neighbourhood = Neighbourhood(self.keeper)
        driver = self.bitchat_driver
        if driver is None:
            return
        assert self._spool is not None
        speaker = load_or_create_bitchat_identity(self._spool, time.time(), name=PAGE_SECRET_NAME)

        def heard(message: PublicMessage) -> None:
            self.neighbourhood.heard(
                PublicChatLine(
                    message.sender,
                    message.nickname,
                    message.text,
                    message.timestamp_ms,
                    time.time(),
                )
            )

        def post(nickname: str, text: str) -> PublicChatLine:
            sent = driver.post(speaker, nickname, text)
            return PublicChatLine(sent.sender, nickname, text, sent.timestamp_ms, time.time(), True)

        driver.set_on_public(heard)
        self.neighbourhood.set_poster(post, speaker.peer_id)

    def _bitchat_transport_factory(self) -> hardware.TransportFactory:
        medium = self.env.medium or self._own_medium
        return hardware.sim_bitchat_transport_factory(medium, self.name, self.env.sim_position)

    def _app_transport_factory(self) -> hardware.TransportFactory:
        medium = self.env.medium or self._own_medium
        return hardware.sim_app_transport_factory(medium, self.name, self.env.sim_position)

    def _optional(self, what: str, make: Callable[[], _Device]) -> _Device | None:
        """A panel or buttons that are missing leave the node running without them."""
        try:
            return make()
        except DriverError as exc:
            _LOGGER.error("no %s: %s; running without it", what, exc)
            self.board.missing.append(what)
            return None

    def _transport_factory(self) -> hardware.TransportFactory | None:
        """The simulated radio's mesh transport; None on BLE, where `_make_radio` makes every
        service's transport together."""
        radio = self.config.radio
        if radio.kind == "ble":
            return None
        self._own_medium = self.env.medium or hardware.make_sim_medium()
        return hardware.sim_transport_factory(self._own_medium, self.name, self.env.sim_position)

    # -- running --------------------------------------------------------------------------------

    def parts(self) -> list[Part]:
        """The supervised jobs of this node."""
        parts = [
            Part("radio", self._run_radio),
            Part("oled", self.oled.run),
            Part("spool-sync", self._run_spool_sync),
            Part("messenger", self.endpoint.run),
            Part("relays", self.bridge.run),
        ]
        if self.config.relays.carry_for_neighbours:
            parts.append(Part("carrier", self.carrier.run))
        if self.app_driver is not None:
            if self._make_radio is None:  # on BLE the radio part runs the app's links
                parts.append(Part("app-mesh", self._run_app_mesh))
            if self.app_uplink is not None and self.app_uplink.relays:
                parts.append(Part("app-uplink", self.app_uplink.run))
            if self.app_contact_relays is not None:
                parts.append(Part("app-contacts", self.app_contact_relays.run))
        if self.bitchat_driver is not None and self._make_radio is None:  # on BLE: the radio's
            parts.append(Part("bitchat", self._run_bitchat))
            if self.bitchat_gateway is not None:
                parts.append(Part("bitchat-gateway", self.bitchat_gateway.run))
        if self.env.web:
            parts.append(Part("web", self._run_web))
        return parts

    async def _run_parts(self, stop: asyncio.Event) -> int:
        try:
            async with asyncio.TaskGroup() as group:
                for part in self.parts():
                    group.create_task(self.supervisor.supervise(part), name=part.name)
                group.create_task(self._announce_ready(), name="ready")
                group.create_task(self._health(), name="health")
                group.create_task(_raise_when_set(stop), name="stop")
        except* StopRequested:
            self.stop_reason = "stopped on request"
        except* PartFailed as failed:
            self.stop_reason = str(failed.exceptions[0])
        except* Exception as crashed:  # a bug in the daemon itself: say so, never hang
            self.stop_reason = f"internal error: {describe(crashed.exceptions[0])}"
            _LOGGER.error("node stops on an internal error", exc_info=crashed.exceptions[0])
        ok = self.stop_reason == "stopped on request"
        self.notifier.stopping(self.stop_reason)
        _LOGGER.log(logging.INFO if ok else logging.ERROR, "node stops: %s", self.stop_reason)
        return EXIT_OK if ok else EXIT_PART_FAILED

    async def _run_radio(self) -> None:
        if self._make_radio is None:
            assert self._make_transport is not None  # the simulated radio's
            radio = hardware.RadioTransports(self._make_transport())
        else:
            radio = self._make_radio()
        self.board.radio_up = True
        self.mesh_started.set()
        try:
            if radio.app is None and radio.bitchat is None:
                await self.driver.run(radio.mesh)
                return
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self.driver.run(radio.mesh), name="mesh")
                    if radio.app is not None:
                        assert self.app_driver is not None  # made only for its driver
                        group.create_task(self.app_driver.run(radio.app), name="app-mesh")
                    if radio.bitchat is not None:
                        assert self.bitchat_driver is not None  # made only for its driver
                        group.create_task(self.bitchat_driver.run(radio.bitchat), name="bitchat")
            except ExceptionGroup as failed:  # the supervisor names the first failure
                raise failed.exceptions[0] from None
        finally:
            self.board.radio_up = False

    async def _run_app_mesh(self) -> None:
        assert self.app_driver is not None
        await self.app_driver.run(self._make_app_transport())

    async def _run_bitchat(self) -> None:
        assert self.bitchat_driver is not None
        await self.bitchat_driver.run(self._make_bitchat_transport())

    async def _run_web(self) -> None:
        from pigeon.ui.web.app import build_app  # aiohttp's server side loads with the page
        from pigeon.ui.web.server import serve

        web_config = WebConfig(
            node_name=self.name,
            allowed_hosts=self.hostnames + self.addresses,
            https_port=self.config.web.https_port,
            passphrase_set=lambda: not self.messenger.device_bound,
            twelve_hour=self.config.node.clock == "12h",
        )
        app = build_app(
            self.messenger,
            self.board,
            self.panel,
            self.pairing,
            web_config,
            reset=self.identity_reset,
            neighbourhood=self.neighbourhood,
        )
        web = self.config.web
        async with serve(app, web.https_port, web.http_port, web.host, self.cert_dir) as ports:
            self.web_ports = ports
            self.web_started.set()
            await asyncio.Event().wait()  # serve until cancelled

    async def _store_from_relay(self, url: str, envelope_id: bytes, data: bytes) -> None:
        await self.endpoint.store_from_relay(url, envelope_id, data)

    def _relays_changed(self, relays: tuple[RelayStatus, ...]) -> None:
        if relays != self.board.relays:
            self.board.relays = relays
            self.oled.refresh()

    async def _run_spool_sync(self) -> None:
        while True:
            await asyncio.sleep(SPOOL_SYNC_S)
            assert self._sync is not None
            state = persist_guarded(self._sync, self.data_dir.root, time.time())
            if self.board.note_card(state):
                self.oled.refresh()

    async def _announce_ready(self) -> None:
        await self.mesh_started.wait()
        if self.env.web:
            await self.web_started.wait()
        self.ready.set()
        self.notifier.ready(f"ready: {self.board.summary()}")
        _LOGGER.info("ready")

    async def _health(self) -> None:
        interval = self.notifier.watchdog_interval_s
        period = min(interval, STATUS_EVERY_S) if interval else STATUS_EVERY_S
        last_status = time.monotonic()
        while True:
            now = time.monotonic()
            if interval and self.healthy(now):
                self.notifier.watchdog()
            if self.ready.is_set() and now - last_status >= STATUS_EVERY_S:
                self.notifier.status(self.board.summary())
                last_status = now
            await asyncio.sleep(period)

    def healthy(self, now_monotonic: float) -> bool:
        """True while the router ticks on time, or its radio waits out a restart backoff.

        (That this runs at all shows the event loop is alive.)
        """
        radio = self.supervisor.status().get("radio")
        if radio is not None and radio.state is PartState.BACKING_OFF:
            return True  # the supervisor has it in hand; a stuck backoff ends in PartFailed
        stale_after = self.driver.tick_s * HEALTHY_TICK_FACTOR
        return now_monotonic - self.driver.last_tick_monotonic <= stale_after

    # -- OLED requests and pairing --------------------------------------------------------------

    def _on_ui_request(self, request: UiRequest, now_monotonic: float) -> None:
        if isinstance(request, StartPairing):
            self.pairing.start(time.time())
        elif isinstance(request, CancelPairing):
            self.pairing.cancel()
        elif isinstance(request, MarkRead):
            self.endpoint.mark_read(request.message_id)
        elif isinstance(request, RequestReset):
            self.identity_reset.request()
        elif isinstance(request, CancelReset):
            self.identity_reset.cancel()

    def _pairing_changed(self) -> None:
        window = self.pairing.window(time.time())
        owner = self.board.owner
        owner.owner_paired = self.pairing.is_paired()
        closed_by_guesses = self.pairing.closed_by_wrong_codes() is not None
        owner.wrong_pairing_codes = PAIRING_MAX_TRIES if closed_by_guesses else 0
        if window is None:
            owner.pairing = None
        else:
            left_s = window.expires_at - time.time()
            owner.pairing = Pairing(
                window.code, self._pairing_url(), self.cert.sha256, time.monotonic() + left_s
            )
        self.oled.refresh()

    def _pairing_url(self) -> str:
        return f"{self.web_url}pair"

    # -- shutdown -------------------------------------------------------------------------------

    def _flush(self) -> None:
        if self._sync is not None:
            try:
                self._sync.persist(time.time())
            except ReadOnlyStore:  # told since it was found; what is stored stays as it was
                _LOGGER.warning("the SD card is read-only: the router's state was not saved")
            except StoreError as exc:
                _LOGGER.error("could not save the router's state at shutdown: %s", exc)
        self.keeper.lock()
        if self._spool is not None:
            self._spool.close()
        _LOGGER.info("stores flushed and closed")


def messenger_config(
    config: NodeConfig, app_mailbox_relays: tuple[str, ...] = ()
) -> MessengerConfig:
    """The messenger's tunables that `[messenger]` sets, and the app relays where the owner's
    app mailbox is read (those `[appmesh] relays` the app uplink uses)."""
    section = config.messenger
    return MessengerConfig(
        check_in_interval_s=float(section.check_in_interval_s),
        attach_mailbox_hints=section.attach_mailbox_hints,
        app_mailbox_relays=app_mailbox_relays,
    )


def carry_policy(config: NodeConfig) -> CarryPolicy:
    """What we carry for neighbours, from `[relays]`."""
    relays = config.relays
    return CarryPolicy(
        enabled=relays.carry_for_neighbours,
        per_hour=relays.carry_per_hour,
        private_addresses=relays.carry_to_private_addresses,
    )


def local_addresses() -> tuple[str, ...]:
    """Loopback plus the address of the default route's interface, if there is one."""
    addresses = ["127.0.0.1"]
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: a UDP connect picks a route, sends nothing
        primary = probe.getsockname()[0]
    except OSError:
        primary = None
    finally:
        probe.close()
    if primary and primary not in addresses:
        addresses.append(primary)
    return tuple(addresses)


async def _raise_when_set(event: asyncio.Event) -> None:
    await event.wait()
    raise StopRequested
