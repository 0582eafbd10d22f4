"""The courier at router level over a real SQLCipher spool: bitchat phones (scripted with their
own keys) deposit, leave, and come back later on a simulated clock; the node restarts between."""

import contextlib
import hashlib
import random
import struct
from dataclasses import dataclass, field
from pathlib import Path

from pigeon.bitchat import packet as wire
from pigeon.bitchat.assembly import FragmentAssembler
from pigeon.bitchat.chat import PublicChat, verify
from pigeon.bitchat.courier import CourierConfig
from pigeon.bitchat.courier_agent import COURIER_ACK_CAPABILITY, read_payload
from pigeon.bitchat.courier_wire import (
    CourierEnvelope,
    ciphertext_hash,
    decode_envelope,
    encode_envelope,
    epoch_day,
    recipient_tag,
)
from pigeon.bitchat.errors import RemoteError
from pigeon.bitchat.events import (
    Addressed,
    FrameReceived,
    Heard,
    LinkDown,
    LinkUp,
    SendFrame,
    Tick,
)
from pigeon.bitchat.fragment import read_fragment_header
from pigeon.bitchat.identity import BitchatIdentity
from pigeon.bitchat.router import COURIER_TYPES, BitchatRouter
from pigeon.daemon.bitchat_courier import CourierService
from pigeon.store.courier_db import HeldRow
from pigeon.store.keeper import DataDir, open_spool
from pigeon.store.spool_db import Spool

T0 = 1_800_000_000.0
HOUR = 3600.0
NODE = BitchatIdentity(b"\x01" * 32, b"\x02" * 32)


def phone(n: int) -> BitchatIdentity:
    return BitchatIdentity(bytes((n,)) * 32, bytes((n + 100,)) * 32)


@dataclass
class Node:
    """The node's bitchat side without asyncio: router, chat and courier over a spool file."""

    spool: Spool
    config: CourierConfig = field(default_factory=CourierConfig)
    router: BitchatRouter = field(init=False)
    chat: PublicChat = field(init=False)
    courier: CourierService = field(init=False)

    def __post_init__(self) -> None:
        self.router = BitchatRouter(NODE.peer_id, random.Random(0))
        self.chat = PublicChat()
        self.courier = CourierService(
            NODE, self.router, self.chat, self.spool.courier_shelf(), self.config
        )

    def link(self, name: str, now: float) -> None:
        self.router.handle(LinkUp(name, 512), now)

    def receive(self, link: str, frame: bytes, now: float) -> list[SendFrame]:
        """Feed one frame as the driver does; return the courier frames the node sends (not the
        announces it relays)."""
        pending = self.router.handle(FrameReceived(link, frame), now)
        sent: list[SendFrame] = []
        while pending:
            action = pending.pop(0)
            if isinstance(action, SendFrame) and _from_courier(action.frame):
                sent.append(action)
            elif isinstance(action, Heard) and action.link is not None:
                with contextlib.suppress(RemoteError):  # the driver counts and goes on
                    self.chat.receive(action.packet)
                if action.packet[1] == wire.ANNOUNCE:
                    pending += self.courier.on_announce(action.link, action.packet, now)
            elif isinstance(action, Addressed):
                pending += self.courier.on_addressed(action.link, action.packet, now)
        return sent


def _from_courier(frame: bytes) -> bool:
    """A courier packet, or a fragment of one the node made (not one it relays)."""
    view = wire.parse(frame)
    return view.type in COURIER_TYPES or (
        view.type == wire.FRAGMENT and view.sender == NODE.peer_id
    )


def announce(who: BitchatIdentity, now: float, caps: int = COURIER_ACK_CAPABILITY) -> bytes:
    return who.announce("phone", int(now * 1000), caps)


def sealed_for(recipient: BitchatIdentity, n: int, now: float, ttl_s: float = 6 * HOUR) -> bytes:
    """A deposit packet: an envelope whose 'ciphertext' stands in for a Noise X seal."""
    tag = recipient_tag(recipient.noise_public, epoch_day(now))
    envelope = CourierEnvelope(tag, int((now + ttl_s) * 1000), b"sealed-%04d" % n * 20, copies=1)
    return encode_envelope(envelope)


def deposit(depositor: BitchatIdentity, payload: bytes, now: float) -> bytes:
    return depositor.directed(wire.COURIER_ENVELOPE, NODE.peer_id, payload, int(now * 1000))


def arrive(node: Node, who: BitchatIdentity, link: str, now: float) -> list[SendFrame]:
    node.link(link, now)
    return node.receive(link, announce(who, now), now)


def open_node(data: DataDir, config: CourierConfig | None = None) -> Node:
    return Node(open_spool(data), config or CourierConfig())


def test_recipient_arriving_an_hour_later_after_a_restart_gets_the_envelope(
    tmp_path: Path,
) -> None:
    data = DataDir(tmp_path / "data")
    alice, bob = phone(7), phone(8)
    node = open_node(data)
    assert arrive(node, alice, "a", T0) == []
    payload = sealed_for(bob, 1, T0)
    [ack] = node.receive("a", deposit(alice, payload, T0 + 1), T0 + 1)
    view = wire.parse(ack.frame)
    assert (ack.link, view.type, view.recipient) == ("a", wire.COURIER_SPRAY_ACK, alice.peer_id)
    assert wire.payload_of(ack.frame, view) == ciphertext_hash(decode_envelope(payload).ciphertext)
    verify(ack.frame, view, NODE.signing_public)
    node.router.handle(LinkDown("a"), T0 + 2)  # alice leaves
    node.spool.close()  # the node restarts

    node = open_node(data)
    assert len(node.courier.policy) == 1
    later = T0 + HOUR
    [handover] = arrive(node, bob, "b", later)
    view = wire.parse(handover.frame)
    assert (handover.link, view.type, view.recipient) == ("b", wire.COURIER_ENVELOPE, bob.peer_id)
    verify(handover.frame, view, NODE.signing_public)  # as bitchat signs what it hands over
    assert encode_envelope(decode_envelope(read_payload(handover.frame, view))) == payload
    assert node.courier.agent.counters["handed_over"] == 1
    node.spool.close()
    node = open_node(data)
    assert len(node.courier.policy) == 0  # delivered mail is forgotten, durably
    assert node.spool.courier_shelf().stats().held == 0
    node.spool.close()


def test_a_copy_of_mail_already_handed_over_is_acked_and_never_handed_over_again(
    tmp_path: Path,
) -> None:
    data = DataDir(tmp_path / "data")
    alice, bob, carol = phone(7), phone(8), phone(9)
    node = open_node(data)
    arrive(node, alice, "a", T0)
    payload = sealed_for(bob, 1, T0)
    node.receive("a", deposit(alice, payload, T0), T0)
    [handover] = arrive(node, bob, "b", T0 + 60)
    assert wire.parse(handover.frame).type == wire.COURIER_ENVELOPE
    node.router.handle(LinkDown("b"), T0 + 61)
    # carol carried a copy too (alice gave her one) and hands it to the node later
    arrive(node, carol, "c", T0 + 120)
    [ack] = node.receive("c", deposit(carol, payload, T0 + 121), T0 + 121)
    assert wire.parse(ack.frame).type == wire.COURIER_SPRAY_ACK  # carol may stop carrying it
    assert len(node.courier.policy) == 0
    assert node.courier.agent.counters["already_delivered"] == 1
    node.spool.close()  # the record is durable: a restarted node refuses to keep it too

    node = open_node(data)
    arrive(node, carol, "c", T0 + 300)
    node.receive("c", deposit(carol, payload, T0 + 301), T0 + 301)
    assert arrive(node, bob, "b", T0 + 360) == []  # bob has it: he never gets it twice
    node.spool.close()


def test_relayed_announce_and_other_phones_get_nothing(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    alice, bob, carol = phone(7), phone(8), phone(9)
    node = open_node(data)
    arrive(node, alice, "a", T0)
    node.receive("a", deposit(alice, sealed_for(bob, 1, T0), T0), T0)
    assert arrive(node, carol, "c", T0 + 5) == []  # a carry-only envelope is never sprayed
    relayed = wire.with_ttl(announce(bob, T0 + 6), 6)
    node.link("r", T0 + 6)
    assert node.receive("r", relayed, T0 + 6) == []  # bob is not on a link of ours: keep it
    assert len(node.courier.policy) == 1
    node.spool.close()


def test_a_deposit_from_a_link_that_is_not_the_sender_is_refused(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    alice, bob, mallory = phone(7), phone(8), phone(10)
    node = open_node(data)
    arrive(node, alice, "a", T0)
    arrive(node, mallory, "m", T0)
    # Alice's signed deposit replayed on Mallory's link: not from the peer on that link.
    assert node.receive("m", deposit(alice, sealed_for(bob, 1, T0), T0), T0) == []
    forged = bytearray(deposit(mallory, sealed_for(bob, 2, T0), T0))
    forged[60] ^= 1  # a flipped bit inside the envelope: the signature no longer verifies
    assert node.receive("m", bytes(forged), T0) == []
    assert len(node.courier.policy) == 0
    assert node.courier.agent.counters["refused_MalformedEnvelope"] == 1
    assert node.courier.agent.counters["refused_BadSignature"] == 1
    node.spool.close()


def test_full_courier_declines_and_stops_advertising(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    alice, bob = phone(7), phone(8)
    node = open_node(data, CourierConfig(max_held=2, per_depositor=5))
    arrive(node, alice, "a", T0)
    kinds = [
        wire.parse(s.frame).type
        for n in range(3)
        for s in node.receive("a", deposit(alice, sealed_for(bob, n, T0), T0), T0)
    ]
    assert kinds == [wire.COURIER_SPRAY_ACK, wire.COURIER_SPRAY_ACK, wire.COURIER_SPRAY_DECLINE]
    assert node.courier.agent.counters["refused_full"] == 1
    assert node.courier.agent.capabilities() == 0
    node.spool.close()
    node = open_node(data, CourierConfig(max_held=2, per_depositor=5))
    assert node.courier.agent.capabilities() == 0  # still full after a restart
    node.spool.close()


def test_the_10001st_envelope_is_declined_cleanly_with_the_default_quota(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    alice, bob = phone(7), phone(8)
    spool = open_spool(data)
    tag = recipient_tag(bob.noise_public, epoch_day(T0))
    rows = []
    for n in range(10_000):  # held from 100 depositors, written in one transaction
        envelope = CourierEnvelope(tag, int((T0 + HOUR) * 1000), b"held-%05d" % n)
        depositor = n.to_bytes(2, "big") * 16
        rows.append(HeldRow(envelope.identity, tag, envelope.expiry_ms, envelope.ciphertext, 1,
                            None, depositor, T0 - n / 1000, T0 + HOUR))  # fmt: skip
    spool.courier_shelf().apply(rows, [])
    spool.close()

    node = open_node(data)  # the default quota: 10,000 in all
    assert len(node.courier.policy) == 10_000
    assert node.courier.agent.capabilities() == 0  # full: no courierAck in the announce
    arrive(node, alice, "a", T0)
    [reply] = node.receive("a", deposit(alice, sealed_for(bob, 1, T0), T0), T0)
    assert wire.parse(reply.frame).type == wire.COURIER_SPRAY_DECLINE
    assert node.courier.agent.counters["refused_full"] == 1
    assert node.spool.courier_shelf().stats().held == 10_000  # nothing written, nothing evicted
    node.spool.close()


def test_the_default_per_depositor_quota_declines_the_101st(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    alice, carol, bob = phone(7), phone(9), phone(8)
    node = open_node(data)
    arrive(node, alice, "a", T0)
    arrive(node, carol, "c", T0)
    kinds = []
    for n in range(101):  # 10 a second: within the link's packet rate
        now = T0 + n / 10
        sent = node.receive("a", deposit(alice, sealed_for(bob, n, now), now), now)
        kinds += [wire.parse(s.frame).type for s in sent]
    assert kinds == [wire.COURIER_SPRAY_ACK] * 100 + [wire.COURIER_SPRAY_DECLINE]
    assert node.courier.agent.counters["refused_depositor_quota"] == 1
    later = T0 + 11
    [ack] = node.receive("c", deposit(carol, sealed_for(bob, 101, later), later), later)
    assert wire.parse(ack.frame).type == wire.COURIER_SPRAY_ACK  # another phone still has room
    node.spool.close()


def test_expired_envelopes_are_gone(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    alice, bob = phone(7), phone(8)
    node = open_node(data)
    arrive(node, alice, "a", T0)
    node.receive("a", deposit(alice, sealed_for(bob, 1, T0, ttl_s=2 * HOUR), T0), T0)
    node.receive("a", deposit(alice, sealed_for(bob, 2, T0, ttl_s=30 * HOUR), T0), T0)
    assert len(node.courier.policy) == 1  # past 24 h and the slack: refused
    node.courier.expire(T0 + 2 * HOUR)
    assert node.courier.agent.counters["expired"] == 1
    node.spool.close()
    node = open_node(data)
    assert node.spool.courier_shelf().stats().held == 0
    assert arrive(node, bob, "b", T0 + 2 * HOUR + 1) == []
    node.spool.close()


def test_spray_to_a_courier_capable_phone_and_decline_restores(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    alice, bob, carol = phone(7), phone(8), phone(9)
    node = open_node(data)
    arrive(node, alice, "a", T0)
    tag = recipient_tag(bob.noise_public, epoch_day(T0))
    envelope = CourierEnvelope(tag, int((T0 + HOUR) * 1000), b"\x5e" * 100, copies=4)
    node.receive("a", deposit(alice, encode_envelope(envelope), T0), T0)
    [copy] = arrive(node, carol, "c", T0 + 1)
    view = wire.parse(copy.frame)
    assert (copy.link, view.recipient) == ("c", carol.peer_id)
    assert decode_envelope(read_payload(copy.frame, view)).copies == 2
    assert node.courier.policy.held()[0].envelope.copies == 2
    decline = carol.directed(
        wire.COURIER_SPRAY_DECLINE, NODE.peer_id, envelope.identity, int((T0 + 2) * 1000)
    )
    assert node.receive("c", decline, T0 + 2) == []
    node.spool.close()
    node = open_node(data)
    assert node.courier.policy.held()[0].envelope.copies == 4  # restored, durably
    node.spool.close()


def test_spray_copies_the_link_does_not_take_keep_their_budget(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    alice, bob, carol = phone(7), phone(8), phone(9)
    node = open_node(data)
    arrive(node, alice, "a", T0)
    for n in range(3):
        tag = recipient_tag(bob.noise_public, epoch_day(T0))
        body = bytes((n,)) * 100
        envelope = CourierEnvelope(tag, int((T0 + HOUR) * 1000), body, copies=4)
        node.receive("a", deposit(alice, encode_envelope(envelope), T0 + n), T0 + n)
    node.router.handle(LinkUp("c", 40), T0 + 5)  # a link too small even for a fragment
    assert node.receive("c", announce(carol, T0 + 5), T0 + 5) == []
    assert [h.envelope.copies for h in node.courier.policy.held()] == [4, 4, 4]
    assert node.courier.agent.counters["spray_unsent"] == 3
    node.spool.close()
    node = open_node(data)
    assert [h.envelope.copies for h in node.courier.policy.held()] == [4, 4, 4]
    assert all(not h.sprayed_to for h in node.courier.policy.held())
    node.spool.close()


def fragments(whole: bytes, sender: bytes, now: float, chunk: int = 469) -> list[bytes]:
    """bitchat's fragmenting of a packet too big for one write (BLEOutboundFragmentPlanner): the
    packet's padded bytes in chunks, each a fragment packet (0x20) addressed like the original."""
    fragment_id = hashlib.sha256(whole).digest()[:8]
    parts = [whole[i : i + chunk] for i in range(0, len(whole), chunk)]
    return [
        wire.encode(
            wire.OutPacket(
                wire.FRAGMENT,
                7,
                int(now * 1000) + index,
                sender,
                fragment_id + struct.pack(">HHB", index, len(parts), whole[1]) + part,
                NODE.peer_id,
            )
        )
        for index, part in enumerate(parts)
    ]


def test_a_deposit_too_big_for_one_write_arrives_in_fragments_and_is_taken(
    tmp_path: Path,
) -> None:
    data = DataDir(tmp_path / "data")
    alice, bob = phone(7), phone(8)
    node = open_node(data)
    arrive(node, alice, "a", T0)
    tag = recipient_tag(bob.noise_public, epoch_day(T0))
    sealed = random.Random(3).randbytes(1500)  # incompressible, like a Noise seal
    payload = encode_envelope(CourierEnvelope(tag, int((T0 + HOUR) * 1000), sealed))
    parts = fragments(deposit(alice, payload, T0), alice.peer_id, T0)
    assert len(parts) == 4
    sent = [s for part in reversed(parts) for s in node.receive("a", part, T0)]  # any order
    assert [wire.parse(s.frame).type for s in sent] == [wire.COURIER_SPRAY_ACK]
    [held] = node.courier.policy.held()
    assert held.envelope.ciphertext == sealed
    assert len(node.router.assembler) == 0
    node.spool.close()


def test_fragments_of_other_types_or_incomplete_ones_are_not_assembled(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    alice, bob = phone(7), phone(8)
    node = open_node(data)
    arrive(node, alice, "a", T0)
    noise = random.Random(5).randbytes(900)
    message = alice.directed(wire.NOISE_ENCRYPTED, NODE.peer_id, noise, int(T0 * 1000))
    for part in fragments(message, alice.peer_id, T0, chunk=300):
        assert node.receive("a", part, T0) == []
    assert len(node.router.assembler) == 0
    assert node.router.counters["for_us"] >= 3
    tag = recipient_tag(bob.noise_public, epoch_day(T0))
    sealed = random.Random(4).randbytes(1500)
    payload = encode_envelope(CourierEnvelope(tag, int((T0 + HOUR) * 1000), sealed))
    parts = fragments(deposit(alice, payload, T0), alice.peer_id, T0)
    for part in parts[:-1]:
        node.receive("a", part, T0)
    assert len(node.router.assembler) == 1
    node.router.handle(Tick(), T0 + 31)  # bitchat's 30 s: the rest never comes
    assert len(node.router.assembler) == 0
    assert len(node.courier.policy) == 0
    node.spool.close()


def test_a_hand_over_too_big_for_the_link_goes_in_fragments(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    alice, bob = phone(7), phone(8)
    node = open_node(data)
    arrive(node, alice, "a", T0)
    tag = recipient_tag(bob.noise_public, epoch_day(T0))
    sealed = random.Random(6).randbytes(1500)
    payload = encode_envelope(CourierEnvelope(tag, int((T0 + HOUR) * 1000), sealed))
    for part in fragments(deposit(alice, payload, T0), alice.peer_id, T0):
        node.receive("a", part, T0)
    sent = arrive(node, bob, "b", T0 + 60)
    assert {s.link for s in sent} == {"b"}
    assert all(len(s.frame) <= 512 for s in sent)
    assembler = FragmentAssembler()  # what bob's phone does with them
    whole = None
    for s in sent:
        view = wire.parse(s.frame)
        assert (view.type, view.recipient, view.sender) == (
            wire.FRAGMENT,
            bob.peer_id,
            NODE.peer_id,
        )
        chunk = wire.payload_of(s.frame, view)
        whole = assembler.add(view.sender, read_fragment_header(chunk), chunk[13:], T0) or whole
    assert whole is not None
    view = wire.parse(whole)
    verify(whole, view, NODE.signing_public)
    assert decode_envelope(read_payload(whole, view)).ciphertext == sealed
    assert len(node.courier.policy) == 0
    node.spool.close()


def test_a_forged_announce_with_a_known_id_gets_no_mail(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    alice, bob = phone(7), phone(8)
    node = open_node(data)
    arrive(node, alice, "a", T0)
    node.link("b", T0)
    node.receive("b", announce(bob, T0, caps=0), T0)  # bob announced once, then went away
    node.router.handle(LinkDown("b"), T0 + 1)
    node.receive("a", deposit(alice, sealed_for(bob, 1, T0 + 2), T0 + 2), T0 + 2)
    genuine = announce(bob, T0 + 10, caps=0)
    forged = bytearray(genuine)
    forged[wire.parse(genuine).end - 10] ^= 1  # in the signature: bob's id and keys, not his hand
    node.link("m", T0 + 10)
    assert node.receive("m", bytes(forged), T0 + 10) == []
    assert len(node.courier.policy) == 1
    assert node.courier.agent.counters["refused_announce"] == 1
    node.spool.close()
