"""Notices (receipt version 2): delivery is proven by the secret, not by the tag key."""

from pigeon.mesh.packet import Packet, PacketType, make_notice
from pigeon.mesh.receipt import open_notice, seal_notice
from tests.messenger.helpers import T0, Endpoint, Wire, befriend


def test_a_notice_needs_the_receipt_secret_not_just_the_tag_key(
    alice: Endpoint, bob: Endpoint
) -> None:
    wire = Wire(alice, bob)
    bob_id, _ = befriend(alice, bob, T0)
    warm = alice.messenger.send_text(bob_id, "a session first", T0)
    wire.pump(T0 + 1)
    assert alice.messenger.message(warm.id).state == "delivered"
    message = alice.messenger.send_text(bob_id, "prove you got this", T0 + 2)
    notices: list[Packet] = []

    def withhold(packet: Packet) -> bool:
        if packet.type is PacketType.NOTICE:
            notices.append(packet)
            return True
        return False

    wire.pump(T0 + 3, lose=withhold)
    assert alice.messenger.message(message.id).state == "queued"  # no router: never "sent"
    [notice] = notices
    # The forger holds the tag key (the recipient does, and anyone does for intro tags) and
    # the envelope id, but not the secret inside the envelope.
    tag_key = alice.messenger._routing(T0 + 3).book.keys[notice.recipient_tag]
    genuine = open_notice(tag_key, notice.payload)
    forged = make_notice(
        seal_notice(tag_key, bytes(16), genuine.envelope_id),
        notice.recipient_tag,
        notice.expires_at_s,
    )
    assert alice.messenger.handle_packet(forged, T0 + 4) == []
    assert alice.messenger.message(message.id).state == "queued"  # no router: never "sent"
    replies = alice.messenger.handle_packet(notice, T0 + 5)
    assert alice.messenger.message(message.id).state == "delivered"
    # Alice's own receipt (TTL 0) clears the copy her router still carries.
    assert [(p.type, p.ttl, p.payload) for p in replies] == [
        (PacketType.RECEIPT, 0, genuine.secret)
    ]
