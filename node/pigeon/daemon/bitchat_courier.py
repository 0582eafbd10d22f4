"""The node's bitchat courier wired to its storage: the sans-IO agent and policy
(`pigeon.bitchat.courier*`) over the spool's courier shelf (`pigeon.store.courier_db`).

Every change the policy makes is written, in one transaction, before any packet it implies is
sent, so a power cut never loses an envelope taken nor re-sprays a budget spent. A handed-over
envelope is forgotten only once the router put the packet on the recipient's link.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

from pigeon.bitchat import packet as wire
from pigeon.bitchat.chat import PublicChat
from pigeon.bitchat.courier import CourierConfig, CourierOp, CourierPolicy, Forget, HeldEnvelope
from pigeon.bitchat.courier_agent import CourierAgent, Outcome
from pigeon.bitchat.courier_wire import CourierEnvelope, encode_envelope
from pigeon.bitchat.events import Action
from pigeon.bitchat.identity import BitchatIdentity
from pigeon.bitchat.router import BitchatRouter
from pigeon.daemon.bitchat_send import originate_on_link
from pigeon.store.courier_db import CourierShelf, HeldRow

_LOGGER = logging.getLogger(__name__)


class CourierService:
    """Carries bitchat mail for absent phones, durably."""

    def __init__(
        self,
        identity: BitchatIdentity,
        router: BitchatRouter,
        chat: PublicChat,
        shelf: CourierShelf,
        config: CourierConfig | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._router = router
        self._random_bytes = random_bytes  # fragment ids
        self._shelf = shelf
        held = [_held(row) for row in shelf.load()]
        policy = CourierPolicy(config, held, shelf.was_delivered)
        self.agent = CourierAgent(identity, policy, chat, router.peer_on)
        _LOGGER.info("the bitchat courier carries %d envelopes", len(policy))

    @property
    def policy(self) -> CourierPolicy:
        """The courier's rules and what it holds."""
        return self.agent.policy

    def on_addressed(self, link: str, packet: bytes, now: float) -> list[Action]:
        """A courier packet addressed to the node; returns the router's send actions."""
        return self._run(self.agent.on_addressed(link, packet, now), now)

    def on_announce(self, link: str, packet: bytes, now: float) -> list[Action]:
        """A verified announce heard on `link`; returns the router's send actions."""
        return self._run(self.agent.on_announce(link, packet, now), now)

    def hand_over(
        self, link: str, recipient: bytes, envelope: CourierEnvelope, now: float
    ) -> tuple[bool, list[Action]]:
        """Hand `envelope` (fetched from a Nostr drop) to `recipient` on `link` as a directed
        courier packet; True when every frame of it was queued on that link. Once it went, it
        is recorded as delivered (a copy the courier holds is forgotten with it)."""
        packet = self.agent.identity.directed(
            wire.COURIER_ENVELOPE, recipient, encode_envelope(envelope), int(now * 1000)
        )
        actions: list[Action] = []
        went = self._send(link, packet, now, actions)
        if went:
            identity = envelope.identity
            ops = self.policy.delivered(identity) or [Forget(identity, envelope.expiry_ms / 1000)]
            self._persist(ops, now)
        return went, actions

    def expire(self, now: float) -> None:
        """Forget envelopes whose time is up."""
        ops = self.policy.expire(now)
        self._persist(ops, now)
        self.agent.counters["expired"] += len(ops)

    def _run(self, outcome: Outcome, now: float) -> list[Action]:
        self._persist(outcome.ops, now)
        actions: list[Action] = []
        delivered: list[CourierOp] = []
        for out in outcome.sends:
            went = self._send(out.link, out.packet, now, actions)
            if out.delivers is not None:
                if went:
                    delivered += self.policy.delivered(out.delivers)
                    self.agent.counters["handed_over"] += 1
                else:
                    self.agent.counters["handover_unsent"] += 1  # kept for the next encounter
            elif out.spray is not None and not went:
                delivered += self.policy.unsent(*out.spray)
                self.agent.counters["sprayed"] -= 1
                self.agent.counters["spray_unsent"] += 1
        self._persist(delivered, now)
        return actions

    def _send(self, link: str, packet: bytes, now: float, actions: list[Action]) -> bool:
        """Originate `packet` on `link` (in fragments if need be); True when all was queued."""
        went, sent = originate_on_link(self._router, link, packet, now, self._random_bytes)
        actions += sent
        return went

    def _persist(self, ops: Iterable[CourierOp], now: float) -> None:
        keep: list[HeldRow] = []
        forget: list[bytes] = []
        delivered: list[tuple[bytes, float, float]] = []
        for op in ops:
            if isinstance(op, Forget):
                forget.append(op.identity)
                if op.delivered_until is not None:  # the gateway must not hand it over again
                    delivered.append((op.identity, now, op.delivered_until))
            else:
                keep.append(_row(op.held))
        if keep or forget:
            self._shelf.apply(keep, forget, delivered)


def _row(held: HeldEnvelope) -> HeldRow:
    e = held.envelope
    return HeldRow(
        held.identity, e.recipient_tag, e.expiry_ms, e.ciphertext, e.copies, e.prekey_id,
        held.depositor, held.stored_at, held.expires_at, held.sprayed_to,
    )  # fmt: skip


def _held(row: HeldRow) -> HeldEnvelope:
    envelope = CourierEnvelope(
        row.recipient_tag, row.expiry_ms, row.ciphertext, row.copies, row.prekey_id
    )
    return HeldEnvelope(envelope, row.depositor, row.stored_at, row.expires_at, row.sprayed_to)
