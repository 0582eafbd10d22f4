"""The identity reset: both buttons held for 10 s, then confirmed on the web page.

The hold (the OLED's `RequestReset`) opens a request for `pending_s` (2 minutes); BACK on the
OLED or "Keep my identity" on the page withdraws it, and it lapses by itself. The page lets only
a paired browser that passes the Origin check and types the node's name confirm it, and only
while the request is open: physical presence and an authenticated page, never one alone.
Confirming (`IdentityResetter.confirm`, the web room's `IdentityReset` port):

1. pauses the parts that hold the old identity (the messenger endpoint and the relay bridge);
2. locks the vault, then revokes every paired browser and closes any pairing window;
3. crypto-erases: the wrapped data key is zeroed and synced before it is deleted, then the
   vault database and the first-boot passphrase go, and the envelopes the spool held for the
   old identity are dropped;
4. creates a fresh vault and identity exactly as first boot does, and starts the parts again.

The device key, the envelopes relayed for others, the TLS certificate and the config stay. A
step that fails is named on the OLED, in the log and on the page (`ResetFailed`); the parts start
again with what is left (if step 4 failed, the messenger part makes the vault when it starts),
and holding the buttons again allows a retry, which repeats every step.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pigeon.daemon.first_boot import erase_auto_passphrase, open_vault_at_start
from pigeon.daemon.node_messenger import NodeMessenger
from pigeon.daemon.status import OwnerView
from pigeon.daemon.supervisor import Supervisor, describe
from pigeon.mesh.packet import Packet
from pigeon.store.keeper import VaultKeeper
from pigeon.store.spool_db import DropEnvelope, Spool
from pigeon.ui.web.errors import ResetFailed, ResetNotPending
from pigeon.ui.web.pairing import Pairing

_LOGGER = logging.getLogger(__name__)

RESET_PENDING_S: Final = 120.0
RESET_PARTS: Final = ("messenger", "relays")  # the supervised parts that cache the identity
HELD_BATCH: Final = 500
NOT_PENDING: Final = "no reset is pending: hold both buttons on the node for 10 s first"


@dataclass(frozen=True, slots=True)
class ResetScope:
    """What a reset erases or renews."""

    keeper: VaultKeeper
    messenger: NodeMessenger
    spool: Spool
    pairing: Pairing
    sessions_file: Path


class IdentityResetter:
    """The reset request from the buttons (`request`, `cancel`) and its confirmation (`confirm`).

    Call everything on the event loop. `on_change` runs when the OLED's owner view changed;
    `send` carries the packets the new identity produced.
    """

    def __init__(
        self,
        scope: ResetScope,
        supervisor: Supervisor,
        owner: OwnerView,
        *,
        on_change: Callable[[], None],
        send: Callable[[Sequence[Packet]], None],
        pending_s: float = RESET_PENDING_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._scope = scope
        self._supervisor = supervisor
        self._owner = owner
        self._on_change = on_change
        self._send = send
        self._pending_s = pending_s
        self._clock = clock
        self._until: float | None = None  # on the event loop's clock
        self._timer: asyncio.TimerHandle | None = None
        self._running = False

    # -- the request (buttons, and the page's cancel) -------------------------------------------

    def request(self) -> None:
        """Both buttons were held: wait `pending_s` for a confirmation on the page."""
        if self._running:
            return
        loop = asyncio.get_running_loop()
        self._until = loop.time() + self._pending_s
        self._arm(self._pending_s)
        self._owner.reset_pending = True
        _LOGGER.info(
            "identity reset requested on the buttons; it waits %g s for the web page",
            self._pending_s,
        )
        self._on_change()

    def cancel(self) -> None:
        """Withdraw the request (BACK on the OLED, or the page); the identity stays."""
        if self._until is not None:
            self._close()
            _LOGGER.info("identity reset request withdrawn")

    def pending(self) -> bool:
        """True while a request waits for confirmation (it lapses after `pending_s`)."""
        if self._until is not None and asyncio.get_running_loop().time() >= self._until:
            self._close()
            _LOGGER.info("identity reset request lapsed without confirmation")
        return self._until is not None

    def _arm(self, delay_s: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.pending() and self._until is not None:  # a timer may fire a hair early
            self._arm(max(self._until - asyncio.get_running_loop().time(), 0.01))

    def _close(self) -> None:
        self._until = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._owner.reset_pending = False
        self._on_change()

    # -- the reset ------------------------------------------------------------------------------

    async def confirm(self) -> None:
        """Carry out the pending reset. Raises ResetNotPending (nothing changed) or ResetFailed."""
        if self._running:
            raise ResetNotPending("a reset is already under way")
        if not self.pending():
            raise ResetNotPending(NOT_PENDING)
        self._close()
        self._running = True
        _LOGGER.info("identity reset confirmed on the web page")
        try:
            async with self._supervisor.paused(*RESET_PARTS):
                packets = await self._replace_identity()
        except ResetFailed as exc:
            self._owner.error = f"Reset failed: {exc.step}. Hold both buttons to retry."
            cause = describe(exc.__cause__) if exc.__cause__ else "unknown"
            _LOGGER.error("identity reset failed while %s (%s)", exc.step, cause)
            raise
        finally:
            self._running = False
            self._on_change()
        self._owner.error = None
        self._send(packets)
        _LOGGER.info("identity reset done: the node has a new identity")

    async def _replace_identity(self) -> list[Packet]:
        scope, now = self._scope, self._clock()
        data_dir = scope.keeper.data_dir
        _step("locking the vault", lambda: scope.messenger.lock(now))
        self._owner.vault_locked, self._owner.unread, self._owner.messages = True, 0, ()
        self._on_change()
        _step("revoking the browsers", self._revoke_browsers)
        _step("erasing the vault", scope.keeper.erase)
        _step("erasing the passphrase", lambda: erase_auto_passphrase(data_dir))
        _step("dropping held mail", self._drop_held)
        try:
            packets = await asyncio.to_thread(open_vault_at_start, scope.messenger, data_dir, now)
        except Exception as exc:  # named on the page and the OLED, never a silent half-reset
            raise ResetFailed("making the new identity") from exc
        return packets or []

    def _revoke_browsers(self) -> None:
        pairing = self._scope.pairing
        pairing.cancel()  # a code shown before the reset must not pair with the new identity
        pairing.revoke_all()
        self._scope.sessions_file.unlink(missing_ok=True)

    def _drop_held(self) -> None:
        # Envelopes held for the old identity can never be read now.
        spool = self._scope.spool
        while batch := spool.owner_held(HELD_BATCH):
            spool.apply([DropEnvelope(held.packet_id) for held in batch])


def _step(step: str, action: Callable[[], object]) -> None:
    try:
        action()
    except Exception as exc:  # named on the page and the OLED, never a silent half-reset
        raise ResetFailed(step) from exc
