"""What the node says about itself: the web status page, the OLED's status and systemd's STATUS.

`NodeStatusBoard` gathers the live figures from the mesh driver, the relay bridge and the vault
state; it implements the web room's `NodeStatusSource` port and makes the OLED `ViewState`.
Neighbours are shown by a short hash of the transport's peer id, never the id itself.
"""

from __future__ import annotations

import datetime
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pigeon import __version__
from pigeon.appmesh.events import DropReason
from pigeon.bitchat.events import DropReason as BitchatDropReason
from pigeon.daemon.app_uplink import AppUplink
from pigeon.daemon.appmesh_driver import AppMeshDriver
from pigeon.daemon.bitchat_driver import BitchatDriver
from pigeon.daemon.bitchat_gateway import GatewayService
from pigeon.daemon.card import CARD_PROBLEMS, CardState
from pigeon.daemon.mesh_driver import MeshDriver
from pigeon.mesh.packet import PacketType
from pigeon.ui.oled import (
    AppMeshLine,
    CourierLine,
    GatewayLine,
    Message,
    Pairing,
    Uplink,
    ViewState,
)
from pigeon.ui.web.ports import (
    AppMeshStatus,
    BitchatStatus,
    CourierStatus,
    GatewayStatus,
    LinkState,
    Neighbour,
    NodeStatus,
    RelayState,
    RelayStatus,
)

SHORT_ID_BYTES = 2


def short_id(peer: str) -> str:
    """A 4-hex-digit label for a neighbour: stable for one link, telling nothing about it."""
    return hashlib.sha256(b"pigeon-neighbour:" + peer.encode()).hexdigest()[: 2 * SHORT_ID_BYTES]


@dataclass(slots=True)
class OwnerView:
    """The owner's side of the OLED, filled by whoever knows it (messenger, pairing, vault)."""

    vault_locked: bool = True
    owner_paired: bool = False
    unread: int = 0
    messages: tuple[Message, ...] = ()
    pairing: Pairing | None = None
    reset_pending: bool = False  # the buttons asked for a reset; cleared by the page or a lapse
    error: str | None = None
    wrong_pairing_codes: int = 0  # wrong codes closed the last pairing window; 0 once reopened


@dataclass(slots=True)
class NodeStatusBoard:
    """The node's live status; `radio_up` and `relays` are kept current by their parts."""

    node_name: str
    radio_kind: str
    web_url: str
    driver: MeshDriver
    started_monotonic: float = field(default_factory=time.monotonic)
    radio_up: bool = False
    relays: tuple[RelayStatus, ...] = ()
    owner: OwnerView = field(default_factory=OwnerView)
    missing: list[str] = field(default_factory=list)  # configured hardware that is not there
    carried_to_relays: Callable[[], int] = lambda: 0  # neighbours' envelopes deposited for them
    today: Callable[[], datetime.date] = datetime.date.today
    twelve_hour: bool = False  # `[node] clock = "12h"`: the OLED's times like the page's
    app_driver: AppMeshDriver | None = None  # None: `[appmesh] enabled = false`
    app_uplink: AppUplink | None = None
    bitchat_driver: BitchatDriver | None = None  # None: `[bitchat] enabled = false`
    bitchat_gateway: GatewayService | None = None  # None: `[bitchat] gateway = false`
    card: CardState = CardState.OK  # the SD card: full or read-only stops saving, not relaying

    def note_card(self, state: CardState) -> bool:
        """Record the card's state; a problem is the OLED's error until it is gone. Returns
        whether it changed."""
        if state is self.card:
            return False
        old = CARD_PROBLEMS.get(self.card)
        self.card = state
        if self.owner.error is None or self.owner.error == old:
            self.owner.error = CARD_PROBLEMS.get(state)
        return True

    def status(self) -> NodeStatus:
        """The snapshot for the web status page."""
        envelopes, spool_bytes = self.spool_figures()
        return NodeStatus(
            node_name=self.node_name,
            version=__version__,
            uptime_s=time.monotonic() - self.started_monotonic,
            radio_kind=self.radio_kind,
            radio_state=LinkState.UP if self.radio_up else LinkState.DOWN,
            neighbours=tuple(Neighbour(short_id(peer)) for peer in self.driver.neighbours),
            spool_envelopes=envelopes,
            spool_bytes=spool_bytes,
            uplink=self.uplink(),
            relays=self.relays,
            carried_to_relays=self.carried_to_relays(),
            appmesh=self.appmesh(),
            bitchat=self.bitchat(),
            card_problem=CARD_PROBLEMS.get(self.card),
        )

    def bitchat(self) -> BitchatStatus:
        """bitchat's mesh: links, announced phones, the router's counters, the chat's."""
        driver = self.bitchat_driver
        if driver is None:
            return BitchatStatus()
        counters = driver.router.counters
        dropped = tuple(
            (reason.value, counters[reason.value])
            for reason in BitchatDropReason
            if counters[reason.value]
        )
        return BitchatStatus(
            enabled=True,
            links=len(driver.links),
            peers=driver.router.peers(),
            relayed=counters["relayed"],
            dropped=dropped,
            public_heard=driver.counters["public_heard"],
            courier=self.courier(),
            gateway=self.gateway(),
        )

    def gateway(self) -> GatewayStatus | None:
        """The Nostr gateway's relays and counters; None when it is off."""
        gateway = self.bitchat_gateway
        if gateway is None:
            return None
        uplink = gateway.uplink.counters
        return GatewayStatus(
            relays=len(gateway.pool.relays),
            relays_connected=sum(1 for r in gateway.pool.relays if r.connected),
            published=uplink["published"],
            refused=uplink["relay_refused"]
            + sum(n for name, n in uplink.items() if name.startswith("refused_")),
            queued=gateway.uplink.queued,
            parked=gateway.counters["parked"],
            fetched=gateway.counters["fetched"],
            rebroadcast=gateway.downlink.counters.get("rebroadcast", 0),
        )

    def courier(self) -> CourierStatus | None:
        """The bitchat courier's envelopes and counters; None when it is off."""
        courier = self.bitchat_driver.courier if self.bitchat_driver is not None else None
        if courier is None:
            return None
        counters = courier.agent.counters
        return CourierStatus(
            held=len(courier.policy),
            held_bytes=courier.policy.held_bytes(),
            accepted=counters["accepted"],
            refused=sum(n for name, n in counters.items() if name.startswith("refused_")),
            handed_over=counters["handed_over"],
            expired=counters["expired"],
            sprayed=counters["sprayed"],
        )

    def appmesh(self) -> AppMeshStatus:
        """The Pigeon app's mesh: links, the router's counters, the bridge's."""
        driver = self.app_driver
        if driver is None:
            return AppMeshStatus()
        counters = driver.router.counters
        dropped = tuple(
            (reason.value, counters[reason.value])
            for reason in DropReason
            if counters[reason.value]
        )
        uplink = self.app_uplink
        return AppMeshStatus(
            enabled=True,
            peers=len(driver.links),
            relayed=counters["relayed"],
            handed_over=counters["custody_handed_over"],
            dropped=dropped,
            bridged=uplink.counters["bridged"] if uplink else 0,
            bridge_pending=uplink.pending if uplink else 0,
            relays=uplink.relays if uplink else (),
            relays_connected=uplink.connected() if uplink else 0,
        )

    def app_mesh_line(self) -> AppMeshLine | None:
        """The OLED's app-mesh row; None when the app mesh is off."""
        if self.app_driver is None:
            return None
        status = self.appmesh()
        return AppMeshLine(status.peers, status.relayed, status.bridged)

    def spool_figures(self) -> tuple[int, int]:
        """(envelopes carried for others, their bytes)."""
        carried = [
            c for c in self.driver.router.carried_packets() if c.packet.type is PacketType.ENVELOPE
        ]
        return len(carried), sum(len(c.encoded) for c in carried)

    def uplink(self) -> LinkState:
        """UP when a relay is connected, CONNECTING while one is tried, else DOWN."""
        states = {relay.state for relay in self.relays}
        if RelayState.CONNECTED in states:
            return LinkState.UP
        if RelayState.CONNECTING in states:
            return LinkState.CONNECTING
        return LinkState.DOWN

    def view_state(self, now_monotonic: float) -> ViewState:
        """The OLED's snapshot (`now_monotonic` is unused but keeps the OLED loop's signature)."""
        envelopes, spool_bytes = self.spool_figures()
        owner = self.owner
        return ViewState(
            node_name=self.node_name,
            web_url=self.web_url,
            neighbours=len(self.driver.neighbours),
            spool_envelopes=envelopes,
            spool_bytes=spool_bytes,
            uplink=_UPLINK[self.uplink()],
            unread=owner.unread,
            today=self.today(),
            owner_paired=owner.owner_paired,
            vault_locked=owner.vault_locked,
            messages=owner.messages,
            pairing=owner.pairing,
            reset_pending=owner.reset_pending,
            error=owner.error,
            wrong_pairing_codes=owner.wrong_pairing_codes,
            twelve_hour=self.twelve_hour,
            app_mesh=self.app_mesh_line(),
            bitchat_peers=self.bitchat().peers if self.bitchat_driver is not None else None,
            bitchat_held=self._courier_held(),
            bitchat_nostr=self._gateway_traffic(),
            bitchat_courier=self._courier_line(),
            bitchat_gateway=self._gateway_line(),
        )

    def _courier_line(self) -> CourierLine | None:
        c = self.courier()
        return None if c is None else CourierLine(c.held, c.handed_over, c.expired, c.sprayed)

    def _gateway_line(self) -> GatewayLine | None:
        gateway = self.gateway()
        return None if gateway is None else GatewayLine(gateway.published, gateway.fetched)

    def _gateway_traffic(self) -> int | None:
        gateway = self.gateway()
        return gateway.published + gateway.fetched if gateway is not None else None

    def _courier_held(self) -> int | None:
        courier = self.courier()
        return courier.held if courier is not None else None

    def summary(self) -> str:
        """One line for systemd's STATUS: what is wrong first (the card, missing parts: STATUS
        is clipped to MAX_STATUS_CHARS), then neighbours, spool, carried deposits, uplink, vault,
        and the phones' meshes when they run."""
        problems = [f"SD card {self.card.value}"] if self.card is not CardState.OK else []
        if self.missing:
            problems.append(f"missing: {', '.join(self.missing)}")
        return "; ".join([*problems, self._figures()])

    def _figures(self) -> str:
        envelopes, _ = self.spool_figures()
        vault = "locked" if self.owner.vault_locked else "unlocked"
        line = (
            f"{len(self.driver.neighbours)} neighbours, {envelopes} envelopes carried,"
            f" {self.carried_to_relays()} deposited for neighbours,"
            f" uplink {self.uplink().value}, vault {vault}"
        )
        app = self.appmesh()
        if app.enabled:
            line += f", {app.peers} app phones, {app.relayed} app packets relayed"
            line += f", {app.bridged} bridged"
        chat = self.bitchat()
        if chat.enabled:
            line += f", {chat.peers} bitchat phones, {chat.relayed} bitchat packets relayed"
            if chat.courier is not None:
                line += f", {chat.courier.held} bitchat envelopes held"
            if chat.gateway is not None:
                line += f", {chat.gateway.published} published to Nostr"
                line += f", {chat.gateway.fetched} Nostr drops fetched"
        return line


_UPLINK = {
    LinkState.DOWN: Uplink.OFFLINE,
    LinkState.CONNECTING: Uplink.CONNECTING,
    LinkState.UP: Uplink.ONLINE,
}
