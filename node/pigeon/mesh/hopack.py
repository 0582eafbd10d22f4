"""Hop-by-hop acknowledgement: what one neighbour has not yet confirmed, and what to confirm.

A node acks every packet a neighbour sends it, duplicates included, in ACK packets (link-local,
up to `MAX_ACK_IDS` ids each): the first in a second at once, the others of a burst at the next
tick (every second) or as soon as one is full. Packets come in bursts (a neighbour meets us and
hands over what it carries), and an ack a second per link costs far fewer frames than one per
packet, while a lone packet on a quiet link is still acked without delay. The sender keeps
each packet it started to send until the ack comes; one not acked in time is queued again, with
the timeout doubling each time up to `ACK_MAX_BACKOFF_S`, for as long as the link lasts and the
router still holds the packet. How long to wait follows from the receiver's rule: a packet
that went out `ACK_BATCH_S` (plus `ACK_LONE_MARGIN_S`) after the one before it on the link
waits the link's measured round trip (RFC 6298's smoothed RTT plus four deviations, from such
packets acked at their first send; at least `ACK_MIN_TIMEOUT_S`); a packet of a burst may wait
for the receiver's tick, so it waits `ACK_TIMEOUT_S`, as every packet did before, and so does
a routes update (acked at once, without using up the receiver's first ack of the second, and
measured; resent sooner, it let more and smaller updates through). On a quiet static link a
lost packet goes again about a second sooner, while a burst costs no more resends than
before. Sooner still, an ack shows a loss by its gap: it names a packet, so whatever went out
before that one and is not acked was lost (frames arrive in order, and an ack carries every
id still to ack, earliest first), and is due at once. When the link drops, what was never
acked counts as not handed over (the router offers it again later): a connection dying
mid-transfer and a host buffer overflowing lose nothing that is still held.
A neighbour that has never acked anything after `ACK_MAX_TRIES` sends of a packet is taken
for a node of the previous version (which drops ACK packets as unknown): no more acks are
awaited from it, until an ack from it shows otherwise (on a link losing a fifth of its frames,
a packet and its ack both get through in only 41% of tries, and 6 failed tries in a row, the
bar before, happened on about 4% of fresh links: they lost their resends for the link's life).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from pigeon.mesh.packet import ACK_ID_LEN, MAX_ACK_IDS

# The receiver acks the first packet in this long at once, the others of a burst at its tick.
ACK_BATCH_S: Final = 1.0
# A packet this much later than ACK_BATCH_S after the one before is surely acked at once (the
# receiver's clock starts when the packet completes there, which can be a little later).
ACK_LONE_MARGIN_S: Final = 0.25
ACK_TIMEOUT_S: Final = 1.5  # acks in a burst wait for the receiver's tick, at most a second
ACK_MIN_TIMEOUT_S: Final = 0.25  # the least wait for an ack a lone packet gets
ACK_MAX_BACKOFF_S: Final = 4.0
ACK_MAX_TRIES: Final = 10


@dataclass(slots=True)
class InFlight:
    """A packet sent to the neighbour and not acked yet."""

    packet_id: bytes
    encoded: bytes
    priority: int
    due: float  # when to send it again
    sent_at: float  # when it first went out
    timeout_s: float  # the wait after its first send, doubled after each resend
    lone: bool  # it went out alone, so its ack came at once: a round-trip sample
    send_no: int  # its place among the link's sends (its latest send)
    message_id: int  # the message id of its latest send
    tries: int = 1  # how many times it went out


class HopAcks:
    """One neighbour's acknowledgement state, both directions."""

    __slots__ = (
        "_last_batch",
        "_last_started",
        "_rttvar",
        "_sends",
        "_srtt",
        "_unacked",
        "ack_now",
        "acked_at",
        "confirmed",
        "silent",
        "timeout_s",
        "to_ack",
    )

    def __init__(self) -> None:
        self._unacked: dict[bytes, InFlight] = {}  # by id prefix
        self.to_ack: list[bytes] = []  # ids received from the neighbour, not acked yet
        self._last_batch: tuple[bytes, ...] = ()  # the ids of our last ack of several
        self.acked_at = -math.inf  # when an ack last went out at once
        self.ack_now = False  # the pending acks go without waiting for the tick
        self.confirmed = False  # it has acked something: it speaks this protocol
        self.silent = False  # it never acks: an older node
        self._last_started = -math.inf  # when a packet last went out (first send or not)
        self._sends = 0  # packets that went out on the link, resends included
        self._srtt: float | None = None  # smoothed round trip of lone packets, out to ack
        self._rttvar = 0.0
        self.timeout_s = ACK_TIMEOUT_S  # the wait for a lone packet's ack, from `_srtt`

    def __len__(self) -> int:
        return len(self._unacked)

    def __contains__(self, prefix: bytes) -> bool:
        return prefix in self._unacked

    def forget(self, packet_id: bytes) -> None:
        """Stop awaiting an ack for `packet_id` (it is no longer worth sending)."""
        self._unacked.pop(packet_id[:ACK_ID_LEN], None)

    def started(
        self,
        packet_id: bytes,
        encoded: bytes,
        priority: int,
        now: float,
        at_once: bool = False,
        message_id: int = 0,
    ) -> None:
        """The packet was cut into frames for the neighbour at `now`, under `message_id`;
        `at_once`: the receiver acks its kind at once, without using up its second's first
        ack."""
        if self.silent:
            return
        lone = at_once or now >= self._last_started + ACK_BATCH_S + ACK_LONE_MARGIN_S
        if not at_once:
            self._last_started = now
        self._sends += 1
        key = packet_id[:ACK_ID_LEN]
        entry = self._unacked.get(key)
        if entry is None:
            # A routes update keeps the longer wait: resent sooner, it let more and smaller
            # updates through (each waits for the last one's ack): `churn` sent 7% more frames.
            timeout_s = self.timeout_s if lone and not at_once else ACK_TIMEOUT_S
            self._unacked[key] = InFlight(
                packet_id,
                encoded,
                priority,
                now + timeout_s,
                now,
                timeout_s,
                lone,
                self._sends,
                message_id,
            )
        else:
            entry.due = now + _backoff(entry.timeout_s, entry.tries)
            entry.tries += 1
            entry.send_no = self._sends
            entry.message_id = message_id

    def acked(self, prefixes: list[bytes], now: float) -> list[bytes]:
        """The neighbour acked these id prefixes at `now`; return the full ids awaited.

        A packet that went out before one acked now and is not acked itself was lost: frames
        on a link arrive in order, and an ack carries every id the neighbour still had to ack
        (earliest first), so it is due at once rather than at its timeout.
        """
        self.confirmed = True
        self.silent = False  # it acks: not an older node after all
        done = []
        newest = 0
        for prefix in prefixes:
            entry = self._unacked.pop(prefix, None)
            if entry is not None:
                done.append(entry.packet_id)
                newest = max(newest, entry.send_no)
                if entry.lone and entry.tries == 1:  # Karn: a resent one's ack is ambiguous
                    self._measured(now - entry.sent_at)
        for entry in self._unacked.values():
            if entry.send_no < newest and entry.due > now:
                entry.due = now
        return done

    def _measured(self, rtt: float) -> None:
        """Fold one round trip into the timeout (RFC 6298, section 2)."""
        srtt = self._srtt
        if srtt is None:
            srtt, self._rttvar = rtt, rtt / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(srtt - rtt)
            srtt = 0.875 * srtt + 0.125 * rtt
        self._srtt = srtt
        self.timeout_s = min(max(srtt + 4 * self._rttvar, ACK_MIN_TIMEOUT_S), ACK_TIMEOUT_S)

    def due(self, now: float) -> list[InFlight]:
        """Packets to send again now; drops those out of tries (and, if never acked, all)."""
        resend = []
        for entry in list(self._unacked.values()):
            if entry.due > now:
                continue
            if self.confirmed or entry.tries < ACK_MAX_TRIES:
                resend.append(entry)
                entry.due = now + _backoff(entry.timeout_s, entry.tries + 1)  # until it goes again
                continue
            self.silent = True
            self._unacked.clear()
            return []
        return resend

    def give_up(self) -> list[InFlight]:
        """The link is gone: everything still unacked, which the neighbour may not have."""
        lost = list(self._unacked.values())
        self._unacked.clear()
        self.to_ack.clear()
        return lost

    def take_acks(self, everything: bool) -> list[list[bytes]]:
        """Full batches of `MAX_ACK_IDS` ids to ack now, and the rest too if `everything`."""
        ids = self.to_ack
        cut = len(ids) if everything else len(ids) - len(ids) % MAX_ACK_IDS
        self.to_ack = ids[cut:]
        batches = [ids[i : min(i + MAX_ACK_IDS, cut)] for i in range(0, cut, MAX_ACK_IDS)]
        if batches and len(batches[-1]) > 1:
            self._last_batch = tuple(batches[-1])
        return batches

    def ack_again(self, packet_id: bytes) -> bool:
        """`packet_id` came again though our last ack of several named it: that ack was lost,
        and the neighbour is about to resend every packet it named. Ack them all again (once);
        True if so. The sender drops the resends still queued when this ack comes."""
        batch = self._last_batch
        if packet_id not in batch:
            return False
        self._last_batch = ()
        pending = set(self.to_ack)
        self.to_ack.extend(pid for pid in batch if pid not in pending)
        return True


def _backoff(timeout_s: float, tries: int) -> float:
    """How long to wait for an ack after the `tries`-th send."""
    return min(timeout_s * (1 << min(tries - 1, 16)), ACK_MAX_BACKOFF_S)
