"""Packets for the bitchat tests, built by the independent PyPI codec `bitchat-protocol`."""

import bitchat_protocol as bp

NOW_S = 1_800_000_000.0
NOW_MS = int(NOW_S * 1000)


def packet(
    *,
    type_: int = 2,
    ttl: int = 7,
    sender: bytes = b"\x11" * 8,
    payload: bytes = b"hi",
    recipient: bytes | None = None,
    route: list[bytes] | None = None,
    version: int = 1,
    timestamp_ms: int = NOW_MS,
    signature: bytes | None = b"\x5a" * 64,
    padding: bool = True,
) -> bytes:
    """One packet's wire bytes as bitchat-protocol encodes them."""
    return bp.encode(
        bp.BitchatPacket(
            version=version,
            type=type_,
            ttl=ttl,
            timestamp=timestamp_ms,
            flags=0,
            sender_id=sender,
            payload=payload,
            recipient_id=recipient,
            route=route,
            signature=signature,
        ),
        padding=padding,
    )
