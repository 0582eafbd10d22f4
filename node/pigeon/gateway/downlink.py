"""The gateway's downlink: geohash chat from the relays, rebroadcast onto bitchat's mesh so the
mesh-only phones that post through the node also read the channel.

bitchat's rules (GatewayService.swift `rebroadcastRelayEvent`, bitchat 1.6.0 on): only kind
20000 events, fresh (15 minutes), whose `g` tag names the channel; never an event the gateway
itself published (its own relay subscription echoes it) nor one rebroadcast already; the
signature checked before airtime is spent; 30 a minute, the rest waiting (30 at most, the
oldest dropped first) and marked rebroadcast only once sent. The broadcast is a 0x28 carrier with
direction 2 ("from a gateway") in an unsigned broadcast packet: receivers check the event's own
signature. bitchat's gateway carries the channel its user is viewing; the node has no user, so
it carries the channels phones posted to through it in the last hour (at most 8).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, Final

from pigeon.bitchat.carrier import Direction, NostrCarrier, encode_carrier
from pigeon.bitchat.errors import BitchatError
from pigeon.gateway.ids import RecentIds
from pigeon.gateway.uplink import EPHEMERAL_KIND, MAX_EVENT_AGE_S
from pigeon.nostr.errors import NostrError
from pigeon.nostr.event import Event, verify

PER_MINUTE: Final = 30  # bitchat's downlinkEventsPerMinute
MAX_PENDING: Final = 30  # bitchat's maxPendingDownlinks
CHANNEL_TTL_S: Final = 60 * 60
MAX_CHANNELS: Final = 8
TRACKED_IDS: Final = 4096


class DownlinkPolicy:
    """Which relay events go onto the mesh, and when; `counters` name what happened."""

    def __init__(self) -> None:
        self._channels: OrderedDict[str, float] = OrderedDict()  # geohash -> last post
        self._pending: OrderedDict[str, tuple[str, Event]] = OrderedDict()  # id -> (geohash, ev)
        self._sent = RecentIds(TRACKED_IDS, 2 * MAX_EVENT_AGE_S)
        self._send_times: list[float] = []
        self.counters: dict[str, int] = {}

    def posted(self, geohash: str, now: float) -> None:
        """A phone posted to `geohash` through the node: carry that channel for an hour."""
        self._channels.pop(geohash, None)
        self._channels[geohash] = now
        while len(self._channels) > MAX_CHANNELS:
            self._channels.popitem(last=False)

    def channels(self, now: float) -> list[str]:
        """The channels carried now, sorted."""
        for geohash in [g for g, at in self._channels.items() if now - at >= CHANNEL_TTL_S]:
            del self._channels[geohash]
        return sorted(self._channels)

    def subscription(self, now: float) -> dict[str, Any] | None:
        """The NIP-01 filter for the channels carried (live events only), or None."""
        channels = self.channels(now)
        if not channels:
            return None
        return {"kinds": [EPHEMERAL_KIND], "#g": channels, "since": int(now)}

    def on_event(self, event: Event, published: bool, now: float) -> None:
        """A relay event for the channels; `published` says the node uplinked it itself."""
        channel = next((g for g in event.tag_values("g") if g in self._channels), None)
        if (
            event.kind != EPHEMERAL_KIND
            or channel is None
            or abs(now - event.created_at) > MAX_EVENT_AGE_S
            or published
            or event.id in self._sent
            or event.id in self._pending
        ):
            self._count("skipped")
            return
        try:
            verify(event)
        except NostrError:
            self._count("refused")
            return
        self._pending[event.id] = (channel, event)
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)  # fresher chat is worth more
            self._count("dropped")

    def drain(self, now: float) -> list[bytes]:
        """Carrier payloads to broadcast now, within the per-minute budget."""
        self._send_times = [t for t in self._send_times if now - t < 60.0]
        out: list[bytes] = []
        while self._pending and len(self._send_times) < PER_MINUTE:
            ident, (channel, event) = self._pending.popitem(last=False)
            if abs(now - event.created_at) > MAX_EVENT_AGE_S:
                continue  # aged while it waited: receivers would drop it
            body = json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":"))
            try:
                out.append(
                    encode_carrier(NostrCarrier(Direction.FROM_GATEWAY, channel, body.encode()))
                )
            except BitchatError:
                continue  # over 16 KiB: bitchat could not carry it either
            self._sent.add(ident, now)
            self._send_times.append(now)
            self._count("rebroadcast")
        return out

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1
