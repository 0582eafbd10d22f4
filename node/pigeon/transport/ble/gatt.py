"""The Pigeon GATT service and the link frames that travel on it (docs/protocol.md, "BLE GATT").

One service with two characteristics: centrals write link frames to `RX_UUID` (write without
response) and the node notifies link frames on `TX_UUID`. A BlueZ peripheral's notification
reaches every subscribed central, so each link frame starts with a 4-byte header naming the link:

    version << 4 | kind  u8 | link_tag 3

`link_tag` is chosen at random by the central for one connection and announced in its HELLO. On
writes it names the writer; on notifications it names the addressee, and every other central
drops the frame. Bodies (big-endian):

    HELLO   (central -> node)  identifier 4 | frame_limit u16
    WELCOME (node -> central)  identifier 4 | frame_limit u16   (the limit both ends now use)
    DATA    (either way)       one mesh frame, 1..frame_limit bytes
    BYE     (either way)       reason u8

The same frames run on an L2CAP channel between nodes (`l2cap`), one per SDU, where a frame
limit may reach CHANNEL_FRAME_LIMIT; over GATT it stays at most MAX_FRAME_LIMIT.

`decode_link_frame` turns every fault in outside bytes into MalformedLinkFrame.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from pigeon.transport.ble.errors import MalformedLinkFrame

SERVICE_UUID: Final = "6e1f0001-58c2-4a7d-9b3e-2c8f4d0a7b51"
RX_UUID: Final = "6e1f0002-58c2-4a7d-9b3e-2c8f4d0a7b51"  # centrals write frames here
TX_UUID: Final = "6e1f0003-58c2-4a7d-9b3e-2c8f4d0a7b51"  # the node notifies frames here
# Advertised manufacturer data: company 0xFFFF (the SIG's id for tests and unassigned use)
# followed by the rotating identifier. Flags 3 + 128-bit service UUID 18 + this 8 = 29 of the
# 31 bytes of a legacy advertisement.
MANUFACTURER_ID: Final = 0xFFFF

LINK_VERSION: Final = 1
LINK_TAG_LEN: Final = 3
IDENTIFIER_LEN: Final = 4
LINK_HEADER_LEN: Final = 1 + LINK_TAG_LEN
# One LE data-length PDU carries 251 bytes: L2CAP 4 + ATT 3 + 244. Writes of 511-514 bytes are
# lost in BlueZ 5.66 although the MTU allows them; capping far below keeps clear of that.
MAX_FRAME_LIMIT: Final = 244
# On a channel a frame is one SDU, not one ATT value: 1 KiB with its header. Fewer, larger frames
# cut the per-frame work of both ends and of the mesh (a padded envelope fits one frame).
CHANNEL_FRAME_LIMIT: Final = 1020
MIN_LINK_FRAME_LIMIT: Final = 20  # base.MIN_FRAME_LIMIT: ATT payload at the minimum MTU
# What one ATT value carries at ATT MTU m. A write: m - 3 (opcode, handle). A notification to a
# BlueZ central: m - 5. BlueZ's centrals always ask for multiple-handle notifications, and BlueZ's
# server then puts each value behind its handle and a 2-byte length in a PDU of m - 1 bytes,
# cutting a longer value without a word (shared/gatt-server.c, bt_gatt_server_send_notification).
ATT_WRITE_OVERHEAD: Final = 3
ATT_NOTIFY_OVERHEAD: Final = 5


def peripheral_value_length(mtu: int) -> int:
    """The longest value a link that a central dialed carries both ways (its writes to us, our
    notifications to it) at ATT MTU `mtu`."""
    return mtu - ATT_NOTIFY_OVERHEAD


_HEADER: Final = struct.Struct(f">B{LINK_TAG_LEN}s")
_INTRO: Final = struct.Struct(f">{IDENTIFIER_LEN}sH")
_BYE: Final = struct.Struct(">B")


class LinkKind(IntEnum):
    """What a link frame carries."""

    HELLO = 0
    WELCOME = 1
    DATA = 2
    BYE = 3


class ByeReason(IntEnum):
    """Why a side ends a link."""

    CLOSING = 1  # the sender shuts down
    DUPLICATE = 2  # the two nodes already share a link the tie-break prefers
    TAG_IN_USE = 3  # another central of this node announced the same link tag
    NO_ROOM = 4  # the node has reached its link limit
    TOO_SMALL = 5  # the negotiated MTU leaves less than MIN_LINK_FRAME_LIMIT


@dataclass(frozen=True, slots=True)
class Intro:
    """A HELLO or WELCOME: who the sender is this period, and the frame limit it offers."""

    kind: LinkKind
    link_tag: bytes
    identifier: bytes
    frame_limit: int


@dataclass(frozen=True, slots=True)
class Data:
    """One mesh frame for the link named by `link_tag`."""

    link_tag: bytes
    frame: bytes

    def __repr__(self) -> str:
        return f"Data(tag={self.link_tag.hex()}, {len(self.frame)} bytes)"


@dataclass(frozen=True, slots=True)
class Bye:
    """The end of the link named by `link_tag`."""

    link_tag: bytes
    reason: int


LinkFrame = Intro | Data | Bye


def gatt_frame_limit(offered: int, mtu: int | None) -> int:
    """The frame limit of a link a central dialed over GATT: its offer, capped by what one
    notification to it carries at ATT MTU `mtu` (when BlueZ told it) and by MAX_FRAME_LIMIT."""
    limit = min(offered, MAX_FRAME_LIMIT)
    if mtu is not None:
        limit = min(limit, frame_limit_for(peripheral_value_length(mtu)))
    return limit


def channel_frame_limit(offered: int, send_mtu: int | None) -> int:
    """The frame limit of a link on a channel: `offered`, capped by CHANNEL_FRAME_LIMIT and by
    the largest SDU the peer takes (`send_mtu`, when the socket tells it) less the header."""
    limit = min(offered, CHANNEL_FRAME_LIMIT)
    if send_mtu is not None:
        limit = min(limit, send_mtu - LINK_HEADER_LEN)
    return limit


def frame_limit_for(max_write_without_response_size: int) -> int:
    """The largest mesh frame a link carries when one write may hold this many bytes."""
    return min(max_write_without_response_size - LINK_HEADER_LEN, MAX_FRAME_LIMIT)


def _head(kind: LinkKind, link_tag: bytes) -> bytes:
    if len(link_tag) != LINK_TAG_LEN:
        raise ValueError(f"link tag must be {LINK_TAG_LEN} bytes")
    return _HEADER.pack(LINK_VERSION << 4 | kind, link_tag)


def encode_link_frame(frame: LinkFrame) -> bytes:
    """The wire bytes of `frame`; raises ValueError for fields out of range."""
    if isinstance(frame, Data):
        if not 0 < len(frame.frame) <= CHANNEL_FRAME_LIMIT:
            raise ValueError(
                f"data frame length {len(frame.frame)} outside 1..{CHANNEL_FRAME_LIMIT}"
            )
        return _head(LinkKind.DATA, frame.link_tag) + frame.frame
    if isinstance(frame, Bye):
        if not 0 <= frame.reason <= 0xFF:
            raise ValueError("bye reason is not a u8")
        return _head(LinkKind.BYE, frame.link_tag) + _BYE.pack(frame.reason)
    if frame.kind not in (LinkKind.HELLO, LinkKind.WELCOME):
        raise ValueError("an intro is a HELLO or a WELCOME")
    if len(frame.identifier) != IDENTIFIER_LEN:
        raise ValueError(f"identifier must be {IDENTIFIER_LEN} bytes")
    if not MIN_LINK_FRAME_LIMIT <= frame.frame_limit <= CHANNEL_FRAME_LIMIT:
        raise ValueError(f"frame limit outside {MIN_LINK_FRAME_LIMIT}..{CHANNEL_FRAME_LIMIT}")
    return _head(frame.kind, frame.link_tag) + _INTRO.pack(frame.identifier, frame.frame_limit)


def decode_link_frame(data: bytes) -> LinkFrame:
    """Parse one written or notified value; raises MalformedLinkFrame naming the fault."""
    if len(data) < LINK_HEADER_LEN:
        raise MalformedLinkFrame(f"link frame of {len(data)} bytes is shorter than its header")
    tag_byte, link_tag = _HEADER.unpack_from(data)
    version, kind = tag_byte >> 4, tag_byte & 0x0F
    if version != LINK_VERSION:
        raise MalformedLinkFrame(f"link frame version {version}, expected {LINK_VERSION}")
    body = data[LINK_HEADER_LEN:]
    if kind == LinkKind.DATA:
        if not 0 < len(body) <= CHANNEL_FRAME_LIMIT:
            raise MalformedLinkFrame(
                f"data frame length {len(body)} outside 1..{CHANNEL_FRAME_LIMIT}"
            )
        return Data(link_tag, bytes(body))
    if kind == LinkKind.BYE:
        if len(body) != _BYE.size:
            raise MalformedLinkFrame(f"bye body of {len(body)} bytes, expected {_BYE.size}")
        return Bye(link_tag, body[0])
    if kind in (LinkKind.HELLO, LinkKind.WELCOME):
        return _decode_intro(LinkKind(kind), link_tag, body)
    raise MalformedLinkFrame(f"unknown link frame kind {kind}")


def _decode_intro(kind: LinkKind, link_tag: bytes, body: bytes) -> Intro:
    if len(body) != _INTRO.size:
        raise MalformedLinkFrame(f"{kind.name} body of {len(body)} bytes, expected {_INTRO.size}")
    identifier, limit = _INTRO.unpack(body)
    if not MIN_LINK_FRAME_LIMIT <= limit <= CHANNEL_FRAME_LIMIT:
        raise MalformedLinkFrame(f"{kind.name} frame limit {limit} out of range")
    return Intro(kind, link_tag, identifier, limit)
