"""Builders shared by the appmesh tests: app packets as a phone would send them."""

from pigeon.appmesh.envelope import Envelope, EnvelopeType, encode_envelope
from pigeon.appmesh.events import Action, SendFrame
from pigeon.appmesh.fragment import decode_fragment
from pigeon.appmesh.packet import DEFAULT_TTL, AppPacket, encode_packet
from pigeon.appmesh.reassembly import Reassembler

ALICE = bytes([0xA1]) * 32
BOB = bytes([0xB2]) * 32
CAROL = bytes([0xC3]) * 32


def app_packet(
    number: int,
    *,
    ttl: int = DEFAULT_TTL,
    sender: bytes = ALICE,
    recipient: bytes = BOB,
    kind: EnvelopeType = EnvelopeType.MESSAGE,
    body: bytes = b"olm ciphertext",
) -> bytes:
    """A packet with id `number` carrying an envelope."""
    envelope = encode_envelope(Envelope(kind, sender, recipient, body))
    return encode_packet(AppPacket(ttl, number.to_bytes(16, "big"), envelope))


def packets_sent(actions: list[Action]) -> dict[str, list[bytes]]:
    """The packets each link was sent, reassembled from the frames in `actions`."""
    reassembler = Reassembler()
    out: dict[str, list[bytes]] = {}
    for action in actions:
        if isinstance(action, SendFrame):
            whole = reassembler.add(action.link, decode_fragment(action.frame), 0.0)
            if whole is not None:
                out.setdefault(action.link, []).append(whole)
    return out
