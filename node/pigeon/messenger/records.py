"""The messenger's own persisted state, versioned byte records kept inside the vault.

- `PeerRecord` (the vault's `sessions` row of a contact, format `PEER_RECORD_VERSION`): the tag
  key we serve this contact under, the tag key it serves us under (once it sent one), the
  contact's prekey bundle if one came by answer (its card may carry one too), when we last
  asked for one, and its Olm sessions, the one we send on first. `confirmed` says whether
  the first can send normal messages (it was opened by the peer, or the peer wrote on it);
  until then what we send on it are pre-key messages to the contact's intro tag.
  Versions 1 and 2 held a Noise/Double Ratchet session: `upgrade_peer_record` keeps their tag
  keys and drops the session (a new Olm session starts by itself on the next send).
  The outgoing messages that wait for a session are rows of the vault's `waiting` table.
- `Transfer` (owner secret `transfer:<file id>`): an outgoing file's window of chunks in flight.
Codecs raise MalformedEnvelope on damaged bytes (the vault is authenticated, so only a bug or a
newer writer produces them).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from typing import Final

from pigeon.messenger.envelope import ID_LEN, TAG_KEY_LEN
from pigeon.messenger.errors import MalformedEnvelope

PEER_RECORD_VERSION: Final = 3
PEER_RECORD_V2: Final = 2  # a Noise/Double Ratchet session; `upgrade_peer_record` reads it
PEER_RECORD_V1: Final = 1  # v2 that also listed the waiting messages
MAX_SESSIONS: Final = 3  # per contact: the current one and the last ones still being read
_RECORD_VERSION: Final = 1
_OLD_HANDSHAKE_ID_LEN: Final = 16
_OLD_PEER_HEAD: Final = struct.Struct(
    f">B{TAG_KEY_LEN}sB{TAG_KEY_LEN}sI{_OLD_HANDSHAKE_ID_LEN}s{TAG_KEY_LEN}sd"
)
_PEER_HEAD: Final = struct.Struct(f">B{TAG_KEY_LEN}sB{TAG_KEY_LEN}sdBHB")
_LEN: Final = struct.Struct(">I")
_TRANSFER_HEAD: Final = struct.Struct(">BIIH")
_INFLIGHT: Final = struct.Struct(f">{ID_LEN}sI")


@dataclass(frozen=True, slots=True, repr=False)
class PeerRecord:
    """Everything session-related about one contact (see the module docstring)."""

    inbound_tag_key: bytes
    outbound_tag_key: bytes | None = None
    prekey: bytes = b""  # an AppPrekeyBundle the contact answered with
    requested_at: float = 0.0  # our last prekey request (0: none)
    confirmed: bool = False
    sessions: tuple[bytes, ...] = ()  # sealed OlmSession states, the current one first

    @property
    def session(self) -> bytes | None:
        """The session we send on, if any."""
        return self.sessions[0] if self.sessions else None

    def with_current(self, state: bytes, confirmed: bool) -> PeerRecord:
        """A copy whose current session is `state` (older ones kept behind, bounded)."""
        return replace(self, sessions=(state, *self.sessions)[:MAX_SESSIONS], confirmed=confirmed)

    def with_session_at(self, index: int, state: bytes) -> PeerRecord:
        """A copy with session `index` replaced by its new state."""
        sessions = list(self.sessions)
        sessions[index] = state
        return replace(self, sessions=tuple(sessions))

    def with_behind(self, state: bytes) -> PeerRecord:
        """A copy keeping `state` behind the current session, only to read from."""
        if not self.sessions:
            return replace(self, sessions=(state,), confirmed=False)
        rest = (state, *self.sessions[1:])[: MAX_SESSIONS - 1]
        return replace(self, sessions=(self.sessions[0], *rest))

    def to_bytes(self) -> bytes:
        """The record as stored."""
        head = _PEER_HEAD.pack(
            PEER_RECORD_VERSION,
            self.inbound_tag_key,
            self.outbound_tag_key is not None,
            self.outbound_tag_key or bytes(TAG_KEY_LEN),
            self.requested_at,
            self.confirmed,
            len(self.prekey),
            len(self.sessions),
        )
        sessions = b"".join(_LEN.pack(len(s)) + s for s in self.sessions)
        return head + self.prekey + sessions

    @classmethod
    def from_bytes(cls, data: bytes) -> PeerRecord:
        """Parse a stored record; raises MalformedEnvelope (also for an older version)."""
        if len(data) < _PEER_HEAD.size:
            raise MalformedEnvelope("peer record is truncated")
        version, inbound, has_out, outbound, requested, confirmed, prekey_len, count = (
            _PEER_HEAD.unpack_from(data)
        )
        if version != PEER_RECORD_VERSION:
            raise MalformedEnvelope("peer record version unsupported")
        at = _PEER_HEAD.size + prekey_len
        prekey = data[_PEER_HEAD.size : at]
        sessions: list[bytes] = []
        for _ in range(count):
            if len(data) < at + _LEN.size:
                raise MalformedEnvelope("peer record is truncated")
            (length,) = _LEN.unpack_from(data, at)
            sessions.append(data[at + _LEN.size : at + _LEN.size + length])
            at += _LEN.size + length
        if at != len(data) or len(prekey) != prekey_len:
            raise MalformedEnvelope("peer record has the wrong length")
        out = outbound if has_out else None
        return cls(inbound, out, prekey, requested, bool(confirmed), tuple(sessions))


def upgrade_peer_record(data: bytes) -> tuple[PeerRecord, tuple[str, ...]]:
    """A version-1 or -2 record as today's (tag keys kept, the old session dropped), and the
    ids a version-1 record listed as waiting (now stored apart).

    Version 1 ended with u32 length | the waiting message ids, ASCII, newline-separated.
    Raises MalformedEnvelope.
    """
    if len(data) < _OLD_PEER_HEAD.size:
        raise MalformedEnvelope("peer record is truncated")
    version, inbound, has_out, outbound, session_len, _, _, _ = _OLD_PEER_HEAD.unpack_from(data)
    if version not in (PEER_RECORD_V1, PEER_RECORD_V2):
        raise MalformedEnvelope("peer record version unsupported")
    rest = data[_OLD_PEER_HEAD.size + session_len :]
    if len(data) < _OLD_PEER_HEAD.size + session_len:
        raise MalformedEnvelope("peer record is truncated")
    record = PeerRecord(inbound, outbound if has_out else None)
    if version == PEER_RECORD_V2:
        if rest:
            raise MalformedEnvelope("peer record has the wrong length")
        return record, ()
    if len(rest) < 4 or int.from_bytes(rest[:4], "big") != len(rest) - 4:
        raise MalformedEnvelope("peer record has the wrong length")
    raw = rest[4:]
    return record, tuple(raw.decode("ascii").split("\n")) if raw else ()


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
