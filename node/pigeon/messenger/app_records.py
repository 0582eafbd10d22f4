"""The persisted state of one app contact (owner secret `app:<contact id>`, versioned bytes).

`AppRecord`: the contact's Olm sessions (sealed states, the one we send on first, bounded),
whether the contact has confirmed the current one (its established ack, or anything it sent
on it), and the ids of our messages waiting for a session (the lower-key-initiates rule can
make us wait for the contact's X3DH init). Unacknowledged messages stay in `unacked`, so a
resend after a rehandshake carries them again. Raises MalformedEnvelope on damaged bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import Final

from pigeon.messenger.errors import MalformedEnvelope

APP_RECORD_VERSION: Final = 1
APP_RECORD_PREFIX: Final = "app:"
MAX_APP_SESSIONS: Final = 3
MAX_WAITING: Final = 256  # our messages waiting for a session; older ones are failed
_HEAD: Final = struct.Struct(">BBBH")
_LEN: Final = struct.Struct(">I")


def app_record_key(contact_id: str) -> str:
    """The owner-secret name an app contact's record lives under."""
    return APP_RECORD_PREFIX + contact_id


@dataclass(frozen=True, slots=True, repr=False)
class AppRecord:
    """Sessions and waiting messages of one app contact (see the module docstring)."""

    sessions: tuple[bytes, ...] = ()
    confirmed: bool = False
    waiting: tuple[str, ...] = ()

    @property
    def session(self) -> bytes | None:
        """The session we send on, if any."""
        return self.sessions[0] if self.sessions else None

    def with_current(self, state: bytes, confirmed: bool) -> AppRecord:
        """A copy sending on `state` from now on (older sessions kept to read, bounded)."""
        sessions = (state, *self.sessions)[:MAX_APP_SESSIONS]
        return replace(self, sessions=sessions, confirmed=confirmed)

    def with_session_at(self, index: int, state: bytes) -> AppRecord:
        """A copy with session `index` replaced by its new state."""
        sessions = list(self.sessions)
        sessions[index] = state
        return replace(self, sessions=tuple(sessions))

    def to_bytes(self) -> bytes:
        """The record as stored."""
        head = _HEAD.pack(APP_RECORD_VERSION, self.confirmed, len(self.sessions), len(self.waiting))
        sessions = b"".join(_LEN.pack(len(s)) + s for s in self.sessions)
        waiting = "\n".join(self.waiting).encode("ascii")
        return head + sessions + waiting

    @classmethod
    def from_bytes(cls, data: bytes) -> AppRecord:
        """Parse a stored record."""
        if len(data) < _HEAD.size:
            raise MalformedEnvelope("app record is truncated")
        version, confirmed, count, waiting_count = _HEAD.unpack_from(data)
        if version != APP_RECORD_VERSION:
            raise MalformedEnvelope("app record version unsupported")
        at = _HEAD.size
        sessions: list[bytes] = []
        for _ in range(count):
            if len(data) < at + _LEN.size:
                raise MalformedEnvelope("app record is truncated")
            (length,) = _LEN.unpack_from(data, at)
            end = at + _LEN.size + length
            if len(data) < end:
                raise MalformedEnvelope("app record is truncated")
            sessions.append(data[at + _LEN.size : end])
            at = end
        raw = data[at:]
        waiting = tuple(raw.decode("ascii").split("\n")) if raw else ()
        if len(waiting) != waiting_count:
            raise MalformedEnvelope("app record has the wrong length")
        return cls(tuple(sessions), bool(confirmed), waiting)
