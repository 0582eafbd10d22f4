"""Connections a stranger may make us open: to public internet addresses only.

A mesh neighbour's mailbox hint names relay URLs we then connect to. Without a check, anyone in
radio range could make the node reach into its own network (the router's admin page, a LAN
service, 127.0.0.1): server-side request forgery. `is_public_url` refuses IP literals outside
the global unicast ranges and names that only mean something locally; `PublicOnlyResolver`
refuses DNS answers that point inside, at connect time, so a name cannot be rebound between
the check and the connection.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from typing import Final

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

_LOCAL_SUFFIXES: Final = (".local", ".localhost", ".internal", ".lan", ".home.arpa", ".onion")


def is_public_address(address: str) -> bool:
    """True for a global unicast IPv4 or IPv6 address (not private, loopback, link-local...)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def is_public_url(url: str) -> bool:
    """True if `url`'s host is a public IP literal or a name that is not a local-only name."""
    try:
        host = urllib.parse.urlsplit(url).hostname
    except ValueError:
        return False
    if not host:
        return False
    host = host.rstrip(".").lower()
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return is_public_address(host)
    # A single label ("router") resolves through the LAN's search domain.
    return "." in host and not host.endswith(_LOCAL_SUFFIXES)


class PublicOnlyResolver(AbstractResolver):
    """The system resolver with every non-public answer removed (OSError if none is left)."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Public addresses of `host` only."""
        answers = [a for a in await self._inner.resolve(host, port, family) if _public(a)]
        if not answers:
            raise OSError(f"{host} resolves to no public address")
        return answers

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._inner.close()


def _public(answer: ResolveResult) -> bool:
    return is_public_address(answer["host"])
