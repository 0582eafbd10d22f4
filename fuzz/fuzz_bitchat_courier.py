"""Fuzz bitchat's courier parsers and policy (pigeon.bitchat.courier*).

The input is read as a courier envelope, a spray receipt and a packet addressed to a courier
agent; only the room's typed errors may escape; an envelope that decodes re-encodes to an
envelope that decodes equal, with its copy budget within 1..8; a deposit never leaves the
policy over its quotas.

Run: .venv/bin/python fuzz/fuzz_bitchat_courier.py -max_total_time=60
"""

import contextlib
import sys

from pigeon.bitchat.chat import PublicChat
from pigeon.bitchat.courier import CourierConfig, CourierPolicy
from pigeon.bitchat.courier_agent import CourierAgent
from pigeon.bitchat.courier_wire import decode_envelope, decode_receipt, encode_envelope
from pigeon.bitchat.errors import BitchatError
from pigeon.bitchat.identity import BitchatIdentity

NOW_S = 1_800_000_000.0
NODE = BitchatIdentity(b"\x01" * 32, b"\x02" * 32)


def fuzz_one_input(data: bytes) -> None:
    """Run one input through every courier parser."""
    policy = CourierPolicy(CourierConfig(max_held=2, per_depositor=1))
    try:
        envelope = decode_envelope(data)
    except BitchatError:
        pass
    else:
        assert 1 <= envelope.copies <= 8, "copy budget out of range"
        with contextlib.suppress(BitchatError):
            assert decode_envelope(encode_envelope(envelope)) == envelope, "round trip"
        for depositor in (b"\x03" * 32, b"\x03" * 32, b"\x04" * 32):
            policy.deposit(envelope, depositor, NOW_S)
        assert len(policy) <= 2, "over the quota"
    with contextlib.suppress(BitchatError):
        decode_receipt(data)
    agent = CourierAgent(NODE, policy, PublicChat(), lambda link: data[3:11])
    agent.on_addressed("a", data, NOW_S)


if __name__ == "__main__":
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
