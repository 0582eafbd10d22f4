"""Fuzz the Nostr gateway's parsers: the input is read as a carrier's TLVs, as the payload of a
signed 0x28 packet for the uplink policy, as a drop's content, and as a relay event for the
downlink. Only typed errors may escape
the codecs, the policy never raises, and nothing unverified is ever queued for the relays.

Run: .venv/bin/python fuzz/fuzz_bitchat_gateway.py -max_total_time=60
"""

import contextlib
import sys

from pigeon.bitchat import packet as wire
from pigeon.bitchat.carrier import decode_carrier, encode_carrier
from pigeon.bitchat.errors import BitchatError
from pigeon.bitchat.identity import BitchatIdentity
from pigeon.gateway.downlink import DownlinkPolicy
from pigeon.gateway.drops import DROP_KIND, read_drop
from pigeon.gateway.uplink import UplinkPolicy
from pigeon.nostr.errors import NostrError
from pigeon.nostr.event import Event, parse_json, verify

NOW_S = 1_800_000_000.0
NODE = BitchatIdentity(b"\x01" * 32, b"\x02" * 32)
PHONE = BitchatIdentity(b"\x03" * 32, b"\x04" * 32)


def fuzz_one_input(data: bytes) -> None:
    """Run one input through every gateway parser."""
    try:
        carrier = decode_carrier(data)
    except BitchatError:
        pass
    else:
        assert decode_carrier(encode_carrier(carrier)) == carrier, "round trip"
    uplink = UplinkPolicy({PHONE.peer_id: PHONE.signing_public}.get)
    packet = PHONE.directed(wire.NOSTR_CARRIER, NODE.peer_id, data, int(NOW_S * 1000))
    queued = uplink.deposit(packet, NOW_S)
    if queued is not None:
        verify(queued.event)  # raises if anything unverified got through
    text = data.decode("latin-1")
    drop = Event("0" * 64, "0" * 64, int(NOW_S), DROP_KIND, (("x", text[:32]),), text, "0" * 128)
    with contextlib.suppress(NostrError):
        read_drop(drop, NOW_S)
    with contextlib.suppress(NostrError):
        downlink = DownlinkPolicy()
        downlink.posted("u4pruy", NOW_S)
        downlink.on_event(parse_json(data), False, NOW_S)
        for payload in downlink.drain(NOW_S):
            verify(parse_json(decode_carrier(payload).event_json))  # only verified events go out


if __name__ == "__main__":
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
