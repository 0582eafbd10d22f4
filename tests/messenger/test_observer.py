"""What a radio observer next to an owner's node learns from announces and receipts.

The observer is a passive neighbour on the simulated radio: nodes link up with it and send it
what they send any neighbour (announces, sprayed copies), and it only records the packets. It
also sniffs every frame on air between the other nodes: where a route is known, envelopes go
down it and are never sprayed to a bystander, but a sniffer beside the link still hears them.
"""

from __future__ import annotations

from pathlib import Path

from pigeon.mesh.errors import MalformedFrame, MalformedPacket
from pigeon.mesh.fragment import Reassembler
from pigeon.mesh.packet import Packet, PacketType, decode_announce, decode_packet, encode_packet
from pigeon.mesh.receipt import RECEIPT_SECRET_LEN, receipt_hash
from pigeon.mesh.tags import SECONDS_PER_DAY, day_number
from pigeon.transport.base import PeerId
from tests.messenger.helpers import T0, befriend
from tests.messenger.meshnet import MeshNet

# 22:50 UTC: the conversation starts on one day and goes on past midnight.
BEFORE_MIDNIGHT_S = SECONDS_PER_DAY - (T0 % SECONDS_PER_DAY) - 600


class Observer:
    """A neighbour that never sends: it reassembles and keeps every packet sent to it."""

    def __init__(self, net: MeshNet) -> None:
        self.net = net
        self.reassembler = Reassembler()
        self.heard: list[tuple[str, float, Packet]] = []  # (from peer, unix time, packet)

    def link_up(self, peer: PeerId, frame_limit: int) -> None:
        """A node came into range."""

    def link_down(self, peer: PeerId, reason: str) -> None:
        """A node left."""

    def frame_sent(self, peer: PeerId) -> None:
        """Never called: the observer sends nothing."""

    def frame_received(self, peer: PeerId, frame: bytes) -> None:
        now = self.net.unix_now()
        try:
            data = self.reassembler.add(peer, frame, now)
            if data is not None:
                self.heard.append((peer, now, decode_packet(data)))
        except (MalformedFrame, MalformedPacket):
            pass

    def overheard(self, src: str, dst: str, frame: bytes) -> None:
        """A frame from `src` to `dst` went by on air."""
        now = self.net.unix_now()
        try:
            data = self.reassembler.add(f"{src}>{dst}", frame, now)
            if data is not None:
                self.heard.append((src, now, decode_packet(data)))
        except (MalformedFrame, MalformedPacket):
            pass

    def announced_by(self, peer: str, day: int) -> set[bytes]:
        """Every tag `peer` announced on `day` (UTC)."""
        return {
            tag
            for sender, when, packet in self.heard
            if sender == peer and packet.type is PacketType.ANNOUNCE and day_number(when) == day
            for tag in decode_announce(packet.payload)
        }


class ObservedNet(MeshNet):
    """A MeshNet (A, one relay, B) with an observer between A and the relay."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, relays=1)
        self.observer = Observer(self)
        self.radio.add_node(PeerId("O"), 20.0, 0.0, self.observer)
        send = self.radio.send

        def sniffed_send(src: PeerId, dst: PeerId, frame: bytes) -> None:
            send(src, dst, frame)
            if dst != "O":
                self.observer.overheard(src, dst, frame)

        self.radio.send = sniffed_send  # type: ignore[method-assign]


class LateNet(ObservedNet):
    """An ObservedNet whose clock starts ten minutes before midnight."""

    def unix_now(self) -> float:
        return T0 + BEFORE_MIDNIGHT_S + self.radio.now


def test_announces_of_consecutive_days_share_no_tag(tmp_path: Path) -> None:
    net = LateNet(tmp_path)
    net.start()
    alice, bob = net.a.endpoint, net.b.endpoint
    assert alice is not None
    assert bob is not None
    day = day_number(net.unix_now())
    bob_id, alice_id = befriend(alice, bob, net.unix_now())
    # Both ways, so each side holds a session tag key from the other and serves its own.
    first = alice.messenger.send_text(bob_id, "before midnight", net.unix_now())
    answer = bob.messenger.send_text(alice_id, "me too", net.unix_now())
    assert net.run_until(
        lambda: (
            {alice.messenger.message(first.id).state, bob.messenger.message(answer.id).state}
            == {"delivered"}
        ),
        500,
    )
    assert day_number(net.unix_now()) == day
    net.run_until(lambda: day_number(net.unix_now()) > day, 900)
    later = alice.messenger.send_text(bob_id, "after midnight", net.unix_now())
    assert net.run_until(lambda: alice.messenger.message(later.id).state == "delivered", 900)

    today, tomorrow = net.observer.announced_by("A", day), net.observer.announced_by("A", day + 1)
    # An intro tag and a session tag each day (and while the handshake ran, a reply tag).
    assert len(today) >= 2
    assert len(tomorrow) >= 2
    assert today.isdisjoint(tomorrow)


def _links(packet: Packet, envelope: Packet) -> bool:
    """Whether `packet`'s bytes show, without a key, that it is about `envelope`: its id, its
    receipt hash, or a preimage of that hash."""
    data = encode_packet(packet)
    if envelope.packet_id in data or envelope.receipt_hash in data:
        return True
    windows = (data[i : i + RECEIPT_SECRET_LEN] for i in range(len(data) - RECEIPT_SECRET_LEN + 1))
    return any(receipt_hash(window) == envelope.receipt_hash for window in windows)


def test_no_receipt_ties_an_envelope_to_another_tag(tmp_path: Path) -> None:
    net = ObservedNet(tmp_path)
    net.start()
    alice, bob = net.a.endpoint, net.b.endpoint
    assert alice is not None
    assert bob is not None
    bob_id, alice_id = befriend(alice, bob, net.unix_now())
    sent = [alice.messenger.send_text(bob_id, f"to bob {i}", net.unix_now()) for i in range(3)]
    sent += [bob.messenger.send_text(alice_id, f"to alice {i}", net.unix_now()) for i in range(3)]

    def delivered() -> bool:
        views = [m.contact_id == bob_id and alice.messenger.message(m.id) for m in sent]
        views += [m.contact_id == alice_id and bob.messenger.message(m.id) for m in sent]
        return all(v.state == "delivered" for v in views if v)

    assert net.run_until(delivered, 900)
    net.run(60)
    heard = [packet for _, _, packet in net.observer.heard]
    envelopes = [p for p in heard if p.type is PacketType.ENVELOPE]
    answers = [p for p in heard if p.type not in (PacketType.ENVELOPE, PacketType.ANNOUNCE)]
    envelope_tags = {e.recipient_tag for e in envelopes}
    # The observer heard the envelopes and what went back to their senders' tags.
    assert len(envelopes) >= 6
    assert any(p.recipient_tag not in envelope_tags for p in answers)
    linking = [
        (answer, envelope)
        for answer in answers
        for envelope in envelopes
        if answer.recipient_tag != envelope.recipient_tag and _links(answer, envelope)
    ]
    assert linking == []
