"""What the messenger hands the daemon for an app contact: one app envelope and where it goes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class AppOutgoing:
    """An app envelope (`pigeon.appmesh.envelope` bytes) for the contact with Ed25519 key
    `recipient`; `relay_urls` are the relays its card signed (empty: mesh only)."""

    recipient: bytes
    envelope: bytes = field(repr=False)
    relay_urls: tuple[str, ...] = ()
