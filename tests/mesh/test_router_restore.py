"""Router.restore: packets stored before a restart are carried and handed on again."""

from __future__ import annotations

import random

from pigeon.mesh.events import FrameReceived, LinkUp, SendFrame, ServeTags
from pigeon.mesh.fragment import Reassembler
from pigeon.mesh.packet import Packet, PacketType, decode_packet, encode_packet
from pigeon.mesh.receipt import receipt_hash
from pigeon.mesh.router import Router, RouterConfig
from pigeon.mesh.spool import SpoolPolicy

NOW = 1_800_000_000.0
TAG = b"R" * 8


def envelope(index: int, lifetime_s: float = 3600) -> Packet:
    return Packet(
        type=PacketType.ENVELOPE,
        recipient_tag=TAG,
        expires_at_s=int(NOW + lifetime_s),
        payload=b"ciphertext %d" % index,
        receipt_hash=receipt_hash(bytes(16)),
    )


def test_restored_envelope_reaches_its_recipient_when_it_appears() -> None:
    router = Router(RouterConfig(), random.Random(1))
    packet = envelope(1)
    assert router.restore(encode_packet(packet), NOW)
    # The recipient's node comes into range and announces the tag.
    actions = router.handle(LinkUp("recipient", 244), NOW + 1)
    recipient = Router(RouterConfig(), random.Random(2))
    recipient.handle(ServeTags((TAG,)), NOW)
    announces = recipient.handle(LinkUp("relay", 244), NOW + 1)
    frames = [a.frame for a in announces if isinstance(a, SendFrame)]
    for frame in frames:
        actions += router.handle(FrameReceived("recipient", frame), NOW + 2)
    reassembler = Reassembler()
    sent = [
        decode_packet(whole)
        for a in actions
        if isinstance(a, SendFrame) and a.peer == "recipient"
        if (whole := reassembler.add("relay", a.frame, NOW + 2)) is not None
    ]
    assert packet.packet_id in {p.packet_id for p in sent}


def test_expired_malformed_and_repeated_packets_are_not_restored() -> None:
    router = Router(RouterConfig(), random.Random(1))
    assert not router.restore(encode_packet(envelope(1, lifetime_s=10)), NOW + 60)
    assert not router.restore(b"\x00garbage", NOW)
    assert router.restore(encode_packet(envelope(2)), NOW)
    assert not router.restore(encode_packet(envelope(2)), NOW)
    assert router.spool_envelopes == 1


def test_a_large_restored_spool_is_not_refused_as_one_depositor() -> None:
    policy = SpoolPolicy(per_depositor_max_packets=5)
    router = Router(RouterConfig(spool=policy), random.Random(1))
    restored = [
        Packet(
            type=PacketType.ENVELOPE,
            recipient_tag=bytes([i]) * 8,
            expires_at_s=int(NOW + 3600),
            payload=b"c",
            receipt_hash=receipt_hash(bytes(16)),
        )
        for i in range(1, 21)
    ]
    assert all(router.restore(encode_packet(p), NOW) for p in restored)
    assert router.spool_envelopes == len(restored)
