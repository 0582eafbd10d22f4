"""Courier drops: bitchat courier envelopes parked on Nostr relays as kind-1401 events.

bitchat's format (NostrProtocol.createCourierDropEvent, BridgeCourierService.swift, bitchat
1.7.0 on): kind 1401, content the envelope's TLVs in standard Base64, tags `["x", tag hex]`
(the envelope's 16-byte recipient tag, lowercase hex) and `["expiration", Unix seconds]`
(NIP-40, the envelope's expiry), signed by a fresh throwaway key per publish. Readers subscribe
with `{"kinds": [1401], "#x": [candidate tags], "since": now - 24 h}`, refuse a drop whose
envelope is over 20 KiB, expired, or whose `x` tag is not its envelope's tag, and hand a drop
for a peer in range over as a directed 0x04 courier packet on that peer's link.

`DropPlanner` decides which held envelopes to park (held for `park_after_s` without their
recipient coming by, once per `cooldown_s`: bitchat's 30-minute republish cooldown) and which
fetched drops are new; both record a success only once it happened (a relay's OK, a hand-over
on the link), so a relay restart or a lost link leaves the work to be done again. The caller
persists both (the spool's drop ledger, as bitchat's BridgeDropDedupStore does) and passes what
was parked back in at start: relays send every drop again after a restart, each under its own
event id, so what was handed over is looked up by the envelope's identity, not the event's.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pigeon.bitchat.courier import HeldEnvelope
from pigeon.bitchat.courier_wire import (
    MAX_LIFETIME_S,
    CourierEnvelope,
    candidate_tags,
    decode_envelope,
    encode_envelope,
)
from pigeon.bitchat.errors import BitchatError
from pigeon.gateway.ids import RecentIds
from pigeon.nostr.errors import LocalError, MalformedEvent
from pigeon.nostr.event import Event, sign, verify

DROP_KIND: Final = 1401  # bitchat's NostrProtocol.EventKind.courierDrop
MAX_DROP_ENVELOPE_BYTES: Final = 20 * 1024  # bitchat's maxDropEnvelopeBytes
PARK_AFTER_S: Final = 10 * 60  # a recipient not by in ten minutes is parked on the relays
COOLDOWN_S: Final = 30 * 60  # bitchat's heldEnvelopePublishCooldown
PARK_PER_ROUND: Final = 20  # drops published per round: a full courier must not flood a relay
MAX_WATCHED_PEERS: Final = 16  # bitchat's maxWatchedPeers
FETCH_LIMIT: Final = 100
SEEN_DROPS: Final = 4096


def make_drop(
    envelope: CourierEnvelope, created_at: int, random_bytes: Callable[[int], bytes]
) -> Event:
    """A kind-1401 drop of `envelope`, signed by a throwaway key from `random_bytes`."""
    tags = (
        ("x", envelope.recipient_tag.hex()),
        ("expiration", str(envelope.expiry_ms // 1000)),
    )
    content = base64.b64encode(encode_envelope(envelope)).decode()
    while True:
        try:
            return sign(random_bytes(32), created_at, DROP_KIND, tags, content, random_bytes)
        except LocalError:
            continue  # a secret of zero or past the curve order: about 2**-128, draw again


def read_drop(event: Event, now: float) -> CourierEnvelope:
    """The envelope a fetched drop carries; raises MalformedEvent (kind, content, tag, expiry)
    or BadEventId / BadEventSignature (checked last: the shape is cheaper)."""
    if event.kind != DROP_KIND:
        raise MalformedEvent("not a courier drop")
    if len(event.content) > (MAX_DROP_ENVELOPE_BYTES * 4) // 3 + 4:
        raise MalformedEvent("a drop's envelope is over 20 KiB")
    try:
        data = base64.b64decode(event.content, validate=True)
        envelope = decode_envelope(data)
    except (binascii.Error, ValueError, BitchatError) as exc:
        raise MalformedEvent("a drop's content is not a courier envelope") from exc
    if len(data) > MAX_DROP_ENVELOPE_BYTES or envelope.expired_at(int(now * 1000)):
        raise MalformedEvent("a drop's envelope is over 20 KiB or expired")
    if envelope.recipient_tag.hex() not in event.tag_values("x"):
        raise MalformedEvent("a drop's x tag is not its envelope's tag")
    verify(event)
    return envelope


def drop_filter(tags_hex: Iterable[str], now: float) -> dict[str, Any]:
    """The NIP-01 filter for drops under these tags, as bitchat subscribes for them."""
    return {
        "kinds": [DROP_KIND],
        "#x": sorted(tags_hex),
        "since": int(now - MAX_LIFETIME_S),
        "limit": FETCH_LIMIT,
    }


@dataclass(frozen=True, slots=True)
class Watched:
    """A verified peer on a direct link, by its Noise key."""

    peer: bytes
    link: str
    noise_key: bytes


def watch_tags(peers: Iterable[Watched], now: float) -> dict[str, Watched]:
    """The tags (hex) drops for these peers carry around `now`: at most 16 peers."""
    tags: dict[str, Watched] = {}
    for watched in list(peers)[:MAX_WATCHED_PEERS]:
        for tag in candidate_tags(watched.noise_key, now):
            tags[tag.hex()] = watched
    return tags


class DropPlanner:
    """Which held envelopes to park, and which fetched drops were handed over already."""

    def __init__(
        self,
        park_after_s: float = PARK_AFTER_S,
        cooldown_s: float = COOLDOWN_S,
        parked: Mapping[bytes, float] | None = None,
    ) -> None:
        self.park_after_s = park_after_s
        self.cooldown_s = cooldown_s
        self._parked_at: dict[bytes, float] = dict(parked or {})  # identity -> a relay's OK
        self._in_flight: set[bytes] = set()
        self._seen = RecentIds(SEEN_DROPS, MAX_LIFETIME_S)

    def to_park(self, held: Iterable[HeldEnvelope], now: float) -> list[HeldEnvelope]:
        """Envelopes whose recipient has not come by, not parked within the cooldown; each is
        in flight until `parked` says how its publish went."""
        chosen: list[HeldEnvelope] = []
        live: set[bytes] = set()
        for entry in held:
            live.add(entry.identity)
            if (
                len(chosen) < PARK_PER_ROUND
                and now - entry.stored_at >= self.park_after_s
                and entry.expires_at > now
                and entry.identity not in self._in_flight
                and now - self._parked_at.get(entry.identity, float("-inf")) >= self.cooldown_s
            ):
                chosen.append(entry)
                self._in_flight.add(entry.identity)
        for gone in set(self._parked_at) - live:
            del self._parked_at[gone]  # handed over or expired: forget it here too
        return chosen

    def parked(self, identity: bytes, accepted: bool, now: float) -> None:
        """A relay accepted the drop (its cooldown starts) or none did (try again later)."""
        self._in_flight.discard(identity)
        if accepted:
            self._parked_at[identity] = now

    def is_new(self, event_id: str) -> bool:
        """Whether a fetched drop was not handed over already."""
        return event_id not in self._seen

    def handed_over(self, event_id: str, now: float) -> None:
        """The drop reached its recipient's link: a redelivery of it is ignored."""
        self._seen.add(event_id, now)
