"""The neighbourhood's public bitchat chat as the node hears it: announces teach who is who
(their signature checked, their peer id checked against their Noise key), and public messages
signed by a peer that announced itself become `PublicMessage`s. bitchat's public messages are
signed plaintext: anyone in radio range reads them; so does this node.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from pigeon.bitchat import packet as wire
from pigeon.bitchat.errors import BadSignature, IdentityMismatch, MalformedAnnounce, RemoteError
from pigeon.bitchat.identity import (
    TLV_CAPABILITIES,
    TLV_NICKNAME,
    TLV_NOISE_KEY,
    TLV_SIGNING_KEY,
    peer_id_for,
)

MAX_TEXT_BYTES: Final = 4096  # a chat line; bitchat's own composer keeps them far shorter
MAX_KNOWN_PEERS: Final = 512  # most recently announced peers kept; older ones are forgotten


@dataclass(frozen=True, slots=True)
class Announce:
    """The parts of an announce the node uses."""

    nickname: str
    noise_key: bytes
    signing_key: bytes
    capabilities: int | None  # None: an old client that sends no capability TLV


@dataclass(frozen=True, slots=True)
class PublicMessage:
    """One public message heard: who (id and announced nickname), when (sender's ms), what."""

    sender: bytes
    nickname: str
    timestamp_ms: int
    text: str


def parse_announce(payload: bytes) -> Announce:
    """An announce payload's TLVs (unknown ones skipped); raises MalformedAnnounce."""
    fields: dict[int, bytes] = {}
    offset = 0
    while offset + 2 <= len(payload):
        kind, length = payload[offset], payload[offset + 1]
        offset += 2
        if offset + length > len(payload):
            raise MalformedAnnounce("an announce TLV runs past the end")
        fields.setdefault(kind, payload[offset : offset + length])
        offset += length
    try:
        nickname = fields[TLV_NICKNAME].decode()
        noise_key, signing_key = fields[TLV_NOISE_KEY], fields[TLV_SIGNING_KEY]
    except (KeyError, UnicodeDecodeError) as exc:
        raise MalformedAnnounce("an announce lacks a UTF-8 nickname or a key") from exc
    if len(noise_key) != 32 or len(signing_key) != 32:
        raise MalformedAnnounce("announced keys are not 32 bytes")
    caps = fields.get(TLV_CAPABILITIES)
    capabilities = int.from_bytes(caps[:8], "little") if caps is not None else None
    return Announce(nickname, noise_key, signing_key, capabilities)


def verify(data: bytes, view: wire.PacketView, signing_key: bytes) -> None:
    """Check a packet's signature under `signing_key`; raises BadSignature."""
    signature = wire.signature_of(data, view)
    if signature is None:
        raise BadSignature("the packet is not signed")
    try:
        VerifyKey(signing_key).verify(wire.signed_bytes(data, view), signature)
    except BadSignatureError as exc:
        raise BadSignature("the signature does not verify") from exc


def _inflated(view: wire.PacketView, payload: bytes) -> bytes:
    """A message payload, inflated if compressed, never past its declared (capped) size."""
    if not view.flags & wire.FLAG_COMPRESSED:
        return payload
    prefix = 2 if view.version == wire.V1 else 4
    size = int.from_bytes(payload[:prefix], "big")
    if size > MAX_TEXT_BYTES:
        raise RemoteError("a compressed public message declares more than 4 KiB")
    inflater = zlib.decompressobj(-15)
    try:
        text = inflater.decompress(payload[prefix:], size)
    except zlib.error as exc:
        raise RemoteError("a compressed public message does not inflate") from exc
    if len(text) != size:
        raise RemoteError("a compressed public message is not its declared size")
    return text


class PublicChat:
    """Who announced what, and the public messages they signed."""

    def __init__(self, max_peers: int = MAX_KNOWN_PEERS) -> None:
        self._peers: OrderedDict[bytes, Announce] = OrderedDict()
        self._max_peers = max_peers

    def nickname_of(self, peer: bytes) -> str | None:
        """The nickname `peer` last announced, if we know it."""
        known = self._peers.get(peer)
        return known.nickname if known is not None else None

    def announced(self, peer: bytes) -> Announce | None:
        """What `peer` last announced (signature and id checked), if we know it."""
        return self._peers.get(peer)

    def receive(self, data: bytes) -> PublicMessage | None:
        """Take one announce or public message; a message by a known peer is returned.
        Raises a RemoteError (bad bytes, signature or identity) for the caller to count."""
        view = wire.parse(data)
        payload = wire.payload_of(data, view)
        if view.type == wire.ANNOUNCE:
            self._learn(data, view, payload)
            return None
        if view.type != wire.MESSAGE:
            return None
        known = self._peers.get(view.sender)
        if known is None:
            return None  # phones drop a message from a peer they have no key for, too
        verify(data, view, known.signing_key)
        try:
            text = _inflated(view, payload).decode()
        except UnicodeDecodeError as exc:
            raise RemoteError("a public message is not UTF-8") from exc
        return PublicMessage(view.sender, known.nickname, view.timestamp_ms, text)

    def _learn(self, data: bytes, view: wire.PacketView, payload: bytes) -> None:
        if view.flags & wire.FLAG_COMPRESSED:
            raise MalformedAnnounce("compressed announces are not read by the node")
        announce = parse_announce(payload)
        if peer_id_for(announce.noise_key) != view.sender:
            raise IdentityMismatch("the sender id is not derived from the announced Noise key")
        verify(data, view, announce.signing_key)
        self._peers[view.sender] = announce
        self._peers.move_to_end(view.sender)
        while len(self._peers) > self._max_peers:
            self._peers.popitem(last=False)
