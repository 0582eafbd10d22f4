"""Mailbox relay URL lists as cards and mailbox hints encode them.

Encoding: one to `MAX_RELAYS` times `u8 length || URL`; each URL a plain ws:// or wss:// URL
with a host, printable ASCII, no user part, no fragment, no repeats.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from typing import Final

from pigeon.crypto.errors import MalformedInput

MAX_RELAYS: Final = 4
MAX_RELAY_URL_LEN: Final = 160  # 4 of them, a name and the signatures fit a card
MAX_ENCODED_RELAYS_LEN: Final = MAX_RELAYS * (1 + MAX_RELAY_URL_LEN)
RELAY_SCHEMES: Final = frozenset({"ws", "wss"})


def encode_relays(relays: Sequence[str]) -> bytes:
    """The encoded list; raises MalformedInput on a bad URL, a repeat or a bad count."""
    encoded = b"".join(bytes([len(url)]) + url.encode("ascii") for url in map(check_url, relays))
    decode_relays(encoded)  # the same limits (count, duplicates) as a reader applies
    return encoded


def decode_relays(value: bytes) -> tuple[str, ...]:
    """The URLs of an encoded list; raises MalformedInput naming the fault."""
    urls: list[str] = []
    offset = 0
    while offset < len(value):
        end = offset + 1 + value[offset]
        if end > len(value):
            raise MalformedInput("relay URL is truncated")
        urls.append(check_url(value[offset + 1 : end].decode("latin-1")))
        offset = end
    if not 1 <= len(urls) <= MAX_RELAYS:
        raise MalformedInput(f"a relay list has 1 to {MAX_RELAYS} relays")
    if len(set(urls)) != len(urls):
        raise MalformedInput("relay URLs repeat")
    return tuple(urls)


def check_url(url: str) -> str:
    """Return `url` if it is a plain ws:// or wss:// URL within the limits."""
    if not 1 <= len(url) <= MAX_RELAY_URL_LEN:
        raise MalformedInput(f"a relay URL is 1 to {MAX_RELAY_URL_LEN} characters")
    if not all("!" <= char <= "~" for char in url):
        raise MalformedInput("a relay URL is printable ASCII without spaces")
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # parsing the port is the check
    except ValueError as exc:
        raise MalformedInput("relay URL does not parse") from exc
    if parts.scheme not in RELAY_SCHEMES or not parts.hostname:
        raise MalformedInput("a relay URL is ws:// or wss:// with a host")
    if "@" in parts.netloc or parts.fragment:
        raise MalformedInput("a relay URL has no user part and no fragment")
    return url
