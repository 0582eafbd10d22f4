"""The messenger's own persisted state, versioned byte records kept inside the vault.

- `PeerRecord` (the vault's `sessions` row of a contact, format `PEER_RECORD_VERSION`): the tag
  key we serve this contact under, the tag key it serves us under (once it sent one), the
  secure session (pending initiator or established) and our pending initiation's reply tag key.
  The outgoing messages that wait for a session are rows of the vault's `waiting` table (version
  1 listed them inside the record, rewritten whole on every send; see `upgrade_peer_record`).
- `PendingResponder` (owner secret `responder:<handshake id hex>`): a responder session waiting
  for message 3 from a sender not known yet, and where to send message 2 again.
- `Transfer` (owner secret `transfer:<file id>`): an outgoing file's window of chunks in flight.
Codecs raise MalformedEnvelope on damaged bytes (the vault is authenticated, so only a bug or a
newer writer produces them).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from typing import Final

from pigeon.messenger.envelope import HANDSHAKE_ID_LEN, ID_LEN, TAG_KEY_LEN
from pigeon.messenger.errors import MalformedEnvelope

PEER_RECORD_VERSION: Final = 2
PEER_RECORD_V1: Final = 1  # also listed the waiting messages; `upgrade_peer_record` reads it
_RECORD_VERSION: Final = 1
_PEER_HEAD: Final = struct.Struct(
    f">B{TAG_KEY_LEN}sB{TAG_KEY_LEN}sI{HANDSHAKE_ID_LEN}s{TAG_KEY_LEN}sd"
)
_RESPONDER_HEAD: Final = struct.Struct(f">B{TAG_KEY_LEN}sd")
_TRANSFER_HEAD: Final = struct.Struct(">BIIH")
_INFLIGHT: Final = struct.Struct(f">{ID_LEN}sI")
_NO_HANDSHAKE: Final = bytes(HANDSHAKE_ID_LEN)


@dataclass(frozen=True, slots=True, repr=False)
class PeerRecord:
    """Everything session-related about one contact (see the module docstring)."""

    inbound_tag_key: bytes
    outbound_tag_key: bytes | None = None
    session: bytes = b""
    handshake_id: bytes = _NO_HANDSHAKE  # our pending (or last) initiation
    reply_tag_key: bytes = bytes(TAG_KEY_LEN)
    handshake_started_at: float = 0.0

    def with_session(self, session: bytes) -> PeerRecord:
        """A copy holding another session state."""
        return replace(self, session=session)

    def to_bytes(self) -> bytes:
        """The record as stored."""
        head = _PEER_HEAD.pack(
            PEER_RECORD_VERSION,
            self.inbound_tag_key,
            self.outbound_tag_key is not None,
            self.outbound_tag_key or bytes(TAG_KEY_LEN),
            len(self.session),
            self.handshake_id,
            self.reply_tag_key,
            self.handshake_started_at,
        )
        return head + self.session

    @classmethod
    def from_bytes(cls, data: bytes) -> PeerRecord:
        """Parse a stored record; raises MalformedEnvelope (also for a version-1 record)."""
        record, rest = _parse_peer(data, PEER_RECORD_VERSION)
        if rest:
            raise MalformedEnvelope("peer record has the wrong length")
        return record


def upgrade_peer_record(data: bytes) -> tuple[PeerRecord, tuple[str, ...]]:
    """A version-1 record as today's, and the ids it listed as waiting (now stored apart).

    Version 1 ended with u32 length | the waiting message ids, ASCII, newline-separated.
    Raises MalformedEnvelope.
    """
    record, rest = _parse_peer(data, PEER_RECORD_V1)
    if len(rest) < 4 or int.from_bytes(rest[:4], "big") != len(rest) - 4:
        raise MalformedEnvelope("peer record has the wrong length")
    raw = rest[4:]
    return record, tuple(raw.decode("ascii").split("\n")) if raw else ()


def _parse_peer(data: bytes, expected_version: int) -> tuple[PeerRecord, bytes]:
    if len(data) < _PEER_HEAD.size:
        raise MalformedEnvelope("peer record is truncated")
    version, inbound, has_out, outbound, session_len, hsid, reply, started = _PEER_HEAD.unpack_from(
        data
    )
    if version != expected_version:
        raise MalformedEnvelope("peer record version unsupported")
    at = _PEER_HEAD.size
    session = data[at : at + session_len]
    if len(session) != session_len:
        raise MalformedEnvelope("peer record is truncated")
    record = PeerRecord(inbound, outbound if has_out else None, session, hsid, reply, started)
    return record, data[at + session_len :]


@dataclass(frozen=True, slots=True, repr=False)
class PendingResponder:
    """A responder session awaiting message 3, and the initiator's reply tag key."""

    session: bytes
    reply_tag_key: bytes
    created_at: float

    def to_bytes(self) -> bytes:
        """The record as stored."""
        head = _RESPONDER_HEAD.pack(_RECORD_VERSION, self.reply_tag_key, self.created_at)
        return head + self.session

    @classmethod
    def from_bytes(cls, data: bytes) -> PendingResponder:
        """Parse a stored record; raises MalformedEnvelope."""
        if len(data) < _RESPONDER_HEAD.size:
            raise MalformedEnvelope("responder record is truncated")
        version, reply, created_at = _RESPONDER_HEAD.unpack_from(data)
        if version != _RECORD_VERSION:
            raise MalformedEnvelope("responder record version unsupported")
        return cls(data[_RESPONDER_HEAD.size :], reply, created_at)


@dataclass(frozen=True, slots=True)
class Transfer:
    """An outgoing file: next chunk to encrypt, chunks delivered, envelopes in flight."""

    message_id: str
    chunk_count: int
    next_index: int = 0
    delivered: int = 0
    in_flight: dict[bytes, int] = field(default_factory=dict)  # envelope id -> chunk index

    @property
    def complete(self) -> bool:
        """Whether every chunk was delivered."""
        return self.delivered >= self.chunk_count

    def to_bytes(self) -> bytes:
        """The record as stored."""
        message_id = self.message_id.encode("ascii")
        head = _TRANSFER_HEAD.pack(
            _RECORD_VERSION, self.chunk_count, self.next_index, len(self.in_flight)
        )
        flights = b"".join(_INFLIGHT.pack(k, v) for k, v in self.in_flight.items())
        return head + self.delivered.to_bytes(4, "big") + flights + message_id

    @classmethod
    def from_bytes(cls, data: bytes) -> Transfer:
        """Parse a stored record; raises MalformedEnvelope."""
        if len(data) < _TRANSFER_HEAD.size + 4:
            raise MalformedEnvelope("transfer record is truncated")
        version, count, next_index, flying = _TRANSFER_HEAD.unpack_from(data)
        if version != _RECORD_VERSION:
            raise MalformedEnvelope("transfer record version unsupported")
        at = _TRANSFER_HEAD.size
        delivered = int.from_bytes(data[at : at + 4], "big")
        at += 4
        end = at + flying * _INFLIGHT.size
        if len(data) < end:
            raise MalformedEnvelope("transfer record is truncated")
        in_flight = dict(_INFLIGHT.iter_unpack(data[at:end]))
        return cls(data[end:].decode("ascii"), count, next_index, delivered, in_flight)
