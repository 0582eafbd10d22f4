"""Fuzz the Nostr room (pigeon.nostr): the input is read as an event's JSON and as a relay's
message. Only the room's typed errors may escape; an event that parses serialises again to an id
of 64 hex digits, verifies or raises a typed error, and re-parses from its own JSON unchanged.

Run: .venv/bin/python fuzz/fuzz_nostr.py -max_total_time=60
"""

import contextlib
import json
import sys

from pigeon.nostr.errors import NostrError, RemoteError
from pigeon.nostr.event import event_id, from_json, parse_json, verify
from pigeon.nostr.messages import RelayEvent, decode


def fuzz_one_input(data: bytes) -> None:
    """Run one input through every Nostr parser."""
    try:
        event = parse_json(data)
    except RemoteError:
        pass
    else:
        ident = event_id(event.pubkey, event.created_at, event.kind, event.tags, event.content)
        assert len(ident) == 64, "an id is 32 bytes of hex"
        with contextlib.suppress(RemoteError):
            verify(event)
        assert from_json(json.loads(json.dumps(event.to_json()))) == event, "round trip"
    try:
        message = decode(data)
    except NostrError:
        return
    if type(message) is RelayEvent:
        assert len(message.event.id) == 64, "a relayed event is shape-checked"


if __name__ == "__main__":
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
