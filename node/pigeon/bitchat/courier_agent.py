"""The courier's packets: bitchat's 0x04, 0x2A and 0x2B addressed to this node in, the node's
hand-overs, spray copies and receipts out. Sans-IO: the caller passes the router's view of links
(`peer_on`), the chat's verified announces, the time, and persists `ops` before sending.

bitchat's checks (BLEService.swift, acceptCourierDeposit and the spray receipts of pull request
#1438): the packet's sender is the peer whose direct announce came in on that link, and its
signature verifies under that peer's announced signing key. Receipts go only to peers whose
announce carries the courierAck capability (bit 12), and spray copies too, since only those
peers tell us whether they kept a copy.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from pigeon.bitchat import packet as wire
from pigeon.bitchat.chat import Announce, PublicChat, verify
from pigeon.bitchat.courier import CourierOp, CourierPolicy
from pigeon.bitchat.courier_wire import (
    MAX_CIPHERTEXT_BYTES,
    candidate_tags,
    ciphertext_hash,
    decode_envelope,
    decode_receipt,
    encode_envelope,
)
from pigeon.bitchat.errors import MalformedEnvelope, RemoteError
from pigeon.bitchat.identity import BitchatIdentity

COURIER_ACK_CAPABILITY: Final = 1 << 12  # bitchat's PeerCapabilities.courierAck (PR #1438)
MAX_INFLATED_BYTES: Final = MAX_CIPHERTEXT_BYTES + 64  # an envelope's TLV heads and fields


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A packet for `link`; once it is on its way, `delivers` (an envelope id) is forgotten; if
    it is not, the spray copy of `spray` (envelope id, courier key) is given back."""

    link: str
    packet: bytes
    delivers: bytes | None = None
    spray: tuple[bytes, bytes] | None = None


@dataclass(slots=True)
class Outcome:
    """What to persist (first) and what to send."""

    ops: list[CourierOp] = field(default_factory=list)
    sends: list[Outgoing] = field(default_factory=list)


class CourierAgent:
    """The node's courier on bitchat's mesh; `counters` name what happened, never who."""

    def __init__(
        self,
        identity: BitchatIdentity,
        policy: CourierPolicy,
        chat: PublicChat,
        peer_on: Callable[[str], bytes | None],
    ) -> None:
        self.identity = identity
        self.policy = policy
        self._chat = chat
        self._peer_on = peer_on
        self.counters: Counter[str] = Counter()

    def capabilities(self) -> int:
        """The capability bits to announce: courier receipts while there is room."""
        return COURIER_ACK_CAPABILITY if self.policy.has_room() else 0

    def on_addressed(self, link: str, data: bytes, now: float) -> Outcome:
        """A 0x04, 0x2A or 0x2B packet addressed to us arrived on `link`."""
        outcome = Outcome()
        try:
            view = wire.parse(data)
            announce = self._direct_signer(link, data, view)
            if view.type == wire.COURIER_ENVELOPE:
                self._deposit(link, view, announce, read_payload(data, view), now, outcome)
            else:
                identity = decode_receipt(read_payload(data, view))
                declined = view.type == wire.COURIER_SPRAY_DECLINE
                outcome.ops += self.policy.receipt(identity, announce.noise_key, declined, now)
                self.counters["declines_in" if declined else "acks_in"] += 1
        except RemoteError as exc:
            self.counters[f"refused_{type(exc).__name__}"] += 1
        return outcome

    def on_announce(self, link: str, data: bytes, now: float) -> Outcome:
        """A (chat-verified) announce arrived on `link`: hand over and spray to a direct peer."""
        outcome = Outcome()
        view = wire.parse(data)
        announce = self._chat.announced(view.sender)
        if announce is None or view.ttl != 7 or self._peer_on(link) != view.sender:
            return outcome  # relayed, or not verified: bitchat hands over only on a direct link
        try:
            verify(data, view, announce.signing_key)  # this very announce, not an earlier one
        except RemoteError:
            self.counters["refused_announce"] += 1
            return outcome
        stamp = int(now * 1000)
        for held in self.policy.for_recipient(announce.noise_key, now):
            packet = self.identity.directed(
                wire.COURIER_ENVELOPE, view.sender, encode_envelope(held.envelope), stamp
            )
            outcome.sends.append(Outgoing(link, packet, held.identity))
        if announce.capabilities is not None and announce.capabilities & COURIER_ACK_CAPABILITY:
            copies, ops = self.policy.spray(announce.noise_key, now)
            outcome.ops += ops
            for copy in copies:
                payload = encode_envelope(copy.envelope)
                packet = self.identity.directed(wire.COURIER_ENVELOPE, view.sender, payload, stamp)
                spray = (copy.envelope.identity, announce.noise_key)
                outcome.sends.append(Outgoing(link, packet, spray=spray))
            self.counters["sprayed"] += len(copies)
        return outcome

    def _direct_signer(self, link: str, data: bytes, view: wire.PacketView) -> Announce:
        """The announce of the packet's sender, who must be the peer on `link` and have signed."""
        announce = self._chat.announced(view.sender)
        if announce is None or self._peer_on(link) != view.sender:
            raise MalformedEnvelope("a courier packet from a peer not announced on its link")
        verify(data, view, announce.signing_key)
        return announce

    def _deposit(
        self,
        link: str,
        view: wire.PacketView,
        announce: Announce,
        payload: bytes,
        now: float,
        outcome: Outcome,
    ) -> None:
        envelope = decode_envelope(payload)
        if envelope.recipient_tag in candidate_tags(self.identity.noise_public, now):
            self.counters["for_node"] += 1  # mail for the node itself: it reads no mail
            return
        result = self.policy.deposit(envelope, announce.noise_key, now)
        outcome.ops += result.ops
        if result.delivered:
            self.counters["already_delivered"] += 1
        elif result.refusal is None:
            self.counters["accepted"] += 1
        else:
            self.counters[f"refused_{result.refusal.value}"] += 1
        if announce.capabilities is not None and announce.capabilities & COURIER_ACK_CAPABILITY:
            kind = wire.COURIER_SPRAY_ACK if result.refusal is None else wire.COURIER_SPRAY_DECLINE
            receipt = self.identity.directed(
                kind, view.sender, ciphertext_hash(envelope.ciphertext), int(now * 1000)
            )
            outcome.sends.append(Outgoing(link, receipt))


def read_payload(data: bytes, view: wire.PacketView) -> bytes:
    """The payload, inflated (raw DEFLATE) when compressed, never past an envelope's size."""
    payload = wire.payload_of(data, view)
    if not view.flags & wire.FLAG_COMPRESSED:
        return payload
    prefix = 2 if view.version == wire.V1 else 4
    size = int.from_bytes(payload[:prefix], "big")
    if size > MAX_INFLATED_BYTES:
        raise MalformedEnvelope("a compressed courier payload declares more than 16 KiB")
    inflater = zlib.decompressobj(-15)
    try:
        body = inflater.decompress(payload[prefix:], size)
    except zlib.error as exc:
        raise MalformedEnvelope("a compressed courier payload does not inflate") from exc
    if len(body) != size:
        raise MalformedEnvelope("a compressed courier payload is not its declared size")
    return body
