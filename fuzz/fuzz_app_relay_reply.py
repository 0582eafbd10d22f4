"""Fuzz the node's reading of an app relay's reply to a publish (`parse_reply`).

A relay's reply is text from the network: only AppRelayBroken, AppRelayBusy or AppRelayRefused
may escape, and a stored reply yields its envelope id as a string.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from pigeon.transport.app_relay_client import (
        AppRelayBroken,
        AppRelayBusy,
        AppRelayRefused,
        parse_reply,
    )


def fuzz_one_input(data: bytes) -> None:
    """Read `data` (as UTF-8, as a text frame must be) as a reply, and nested deeply."""
    text = data.decode("utf-8", errors="replace")
    for reply in (text, "[" * 100_000 + text):  # deeper than Python's recursion limit
        try:
            envelope_id = parse_reply(reply)
        except (AppRelayBroken, AppRelayBusy, AppRelayRefused):
            continue
        if not isinstance(envelope_id, str):
            raise AssertionError("a stored reply gave no string id")


if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_one_input)
