"""Pairing a browser with the node: button, six-digit code on the OLED, session cookie (sans-IO).

The owner holds a button; the daemon calls `start(now)` and shows the code on the OLED. The
code is valid for `CODE_TTL_S`, works once, and `MAX_TRIES` wrong entries close the window;
`closed_by_wrong_codes()` then says when, until the next `start`, so the OLED and the page can
tell the owner that someone typed wrong codes (maybe guessing) rather than just going quiet.
A correct `submit` returns a fresh session token (32 random bytes, URL-safe base64) that the
page puts in a cookie; only its SHA-256 is kept, so a copy of the store admits nobody. Times
are Unix seconds (the `WebConfig.clock`). Paired browsers are listed and revoked by a public
session id unrelated to the token. Raises NoPairingWindow (ClosedByWrongCodes), WrongCode,
UnknownSession.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Final

from pigeon.ui.web.errors import ClosedByWrongCodes, NoPairingWindow, UnknownSession, WrongCode
from pigeon.ui.web.ports import PairingStore

_LOGGER = logging.getLogger(__name__)

CODE_DIGITS: Final = 6
CODE_TTL_S: Final = 120.0
MAX_TRIES: Final = 5
TOKEN_BYTES: Final = 32
SESSION_ID_BYTES: Final = 8
MAX_SESSIONS: Final = 16
SESSION_IDLE_S: Final = 180 * 24 * 3600.0  # a browser unused for half a year must pair again
LAST_SEEN_PERSIST_S: Final = 3600.0  # last-seen times are saved at most hourly
MAX_LABEL_LEN: Final = 80
STORE_VERSION: Final = 1

Rng = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class PairingWindow:
    """An open code: what the OLED shows, and until when it works."""

    code: str = field(repr=False)
    expires_at: float


@dataclass(frozen=True, slots=True)
class BrowserSession:
    """A paired browser as the owner sees it; `label` describes the browser (user agent)."""

    session_id: str
    label: str
    created_at: float
    last_seen_at: float


@dataclass(frozen=True, slots=True)
class _Stored:
    session: BrowserSession
    token_hash: bytes = field(repr=False)


@dataclass(slots=True)
class _Window:
    code: str = field(repr=False)
    expires_at: float
    tries_left: int = MAX_TRIES


class Pairing:
    """Pairing codes and paired browsers. `on_change` runs after a window or session changes."""

    def __init__(
        self,
        store: PairingStore,
        *,
        rng: Rng = secrets.token_bytes,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._rng = rng
        self._on_change = on_change
        self._window: _Window | None = None
        self._closed_by_wrong_codes_at: float | None = None
        self._sessions: dict[bytes, _Stored] = _decode(store.load())
        self._persisted_seen: dict[bytes, float] = {
            key: stored.session.last_seen_at for key, stored in self._sessions.items()
        }

    def start(self, now: float) -> str:
        """Open a new window (closing any open one) and return its six-digit code."""
        code = _random_code(self._rng)
        self._window = _Window(code, now + CODE_TTL_S)
        self._closed_by_wrong_codes_at = None
        _LOGGER.info("pairing window opened for %.0f s", CODE_TTL_S)
        self._changed()
        return code

    def cancel(self) -> None:
        """Close the open window, if any."""
        if self._window is not None:
            self._window = None
            self._changed()

    def window(self, now: float) -> PairingWindow | None:
        """The open window, or None once it is closed, used, exhausted or expired."""
        window = self._live_window(now)
        return None if window is None else PairingWindow(window.code, window.expires_at)

    def closed_by_wrong_codes(self) -> float | None:
        """When `MAX_TRIES` wrong codes closed the last window; None if they did not, or once
        a new window is open."""
        return self._closed_by_wrong_codes_at

    def submit(self, code: str, now: float, label: str = "") -> str:
        """Trade a correct code for a new session token.

        Raises NoPairingWindow (ClosedByWrongCodes if wrong codes closed the last one), WrongCode.
        """
        window = self._live_window(now)
        if window is None and self._closed_by_wrong_codes_at is not None:
            raise ClosedByWrongCodes("wrong codes closed the pairing code; hold the node's button")
        if window is None:
            raise NoPairingWindow("no pairing code is open; hold the node's button")
        if not hmac.compare_digest(code.strip().encode(), window.code.encode()):
            window.tries_left -= 1
            if window.tries_left <= 0:
                self._window = None
                self._closed_by_wrong_codes_at = now
                _LOGGER.warning("pairing window closed after %d wrong codes", MAX_TRIES)
                self._changed()
            raise WrongCode(max(window.tries_left, 0))
        self._window = None
        token = self._rng(TOKEN_BYTES)
        session_id = self._rng(SESSION_ID_BYTES).hex()
        clean_label = _clean_label(label)
        session = BrowserSession(session_id, clean_label, now, now)
        self._sessions[_hash(token)] = _Stored(session, _hash(token))
        self._evict_beyond_cap()
        self._persist()
        _LOGGER.info("browser paired (session %s)", session_id)
        self._changed()
        return _b64(token)

    def authenticate(self, token: str, now: float) -> BrowserSession | None:
        """The session a cookie token belongs to (noting it was seen), or None."""
        raw = _unb64(token)
        if raw is None or len(raw) != TOKEN_BYTES:
            return None
        key = _hash(raw)
        stored = self._sessions.get(key)
        if stored is None:
            return None
        if now - stored.session.last_seen_at > SESSION_IDLE_S:
            del self._sessions[key]
            self._persist()
            self._changed()
            return None
        seen = replace(stored.session, last_seen_at=max(now, stored.session.last_seen_at))
        self._sessions[key] = _Stored(seen, key)
        if now - self._persisted_seen.get(key, 0.0) >= LAST_SEEN_PERSIST_S:
            self._persist()
        return seen

    def sessions(self) -> tuple[BrowserSession, ...]:
        """Paired browsers, most recently seen first."""
        found = (stored.session for stored in self._sessions.values())
        return tuple(sorted(found, key=lambda s: (-s.last_seen_at, s.session_id)))

    def is_paired(self) -> bool:
        """True if at least one browser holds a session."""
        return bool(self._sessions)

    def revoke(self, session_id: str) -> None:
        """Forget one paired browser; its cookie stops working. Raises UnknownSession."""
        for key, stored in self._sessions.items():
            if hmac.compare_digest(stored.session.session_id, session_id):
                del self._sessions[key]
                self._persist()
                _LOGGER.info("browser session %s revoked", stored.session.session_id)
                self._changed()
                return
        raise UnknownSession("no paired browser has that id")

    def revoke_all(self) -> int:
        """Forget every paired browser (the identity reset); returns how many there were."""
        count = len(self._sessions)
        self._sessions.clear()
        try:
            self._persist()
        finally:
            self._changed()
        _LOGGER.info("every browser session revoked (%d)", count)
        return count

    def _live_window(self, now: float) -> _Window | None:
        if self._window is not None and now >= self._window.expires_at:
            self._window = None
            self._changed()
        return self._window

    def _evict_beyond_cap(self) -> None:
        while len(self._sessions) > MAX_SESSIONS:
            oldest = min(self._sessions, key=lambda k: self._sessions[k].session.last_seen_at)
            del self._sessions[oldest]

    def _persist(self) -> None:
        self._store.save(_encode(self._sessions))
        self._persisted_seen = {k: s.session.last_seen_at for k, s in self._sessions.items()}

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()


def _random_code(rng: Rng) -> str:
    """A uniform six-digit code by rejection sampling (no modulo bias)."""
    limit = 10**CODE_DIGITS
    bound = (2**32 // limit) * limit
    while True:
        value = int.from_bytes(rng(4), "big")
        if value < bound:
            return f"{value % limit:0{CODE_DIGITS}d}"


def _hash(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    if not text or len(text) > 64 or not text.isascii():
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _clean_label(label: str) -> str:
    printable = "".join(ch for ch in label if ch.isprintable())
    return printable[:MAX_LABEL_LEN] or "browser"


def _encode(sessions: dict[bytes, _Stored]) -> bytes:
    rows = [
        {
            "id": s.session.session_id,
            "hash": s.token_hash.hex(),
            "label": s.session.label,
            "created_at": s.session.created_at,
            "last_seen_at": s.session.last_seen_at,
        }
        for s in sessions.values()
    ]
    return json.dumps({"version": STORE_VERSION, "sessions": rows}).encode()


def _decode(blob: bytes | None) -> dict[bytes, _Stored]:
    """Saved sessions; an unreadable blob admits nobody (the owner pairs again) and is logged."""
    if blob is None:
        return {}
    try:
        return decode_sessions(blob)
    except ValueError:
        _LOGGER.warning("stored browser sessions are unreadable; every browser must pair again")
        return {}


def decode_sessions(blob: bytes) -> dict[bytes, _Stored]:
    """Parse a saved blob. Raises ValueError (including json and unicode errors) if malformed."""
    document = json.loads(blob)
    if not isinstance(document, dict) or document.get("version") != STORE_VERSION:
        raise ValueError("unknown session store version")
    rows = document.get("sessions")
    if not isinstance(rows, list):
        raise ValueError("sessions must be a list")
    found: dict[bytes, _Stored] = {}
    for row in rows[:MAX_SESSIONS]:
        stored = _decode_row(row)
        found[stored.token_hash] = stored
    return found


def _decode_row(row: object) -> _Stored:
    if not isinstance(row, dict):
        raise ValueError("session row must be an object")
    session_id, token_hash, label = row.get("id"), row.get("hash"), row.get("label")
    created_at, last_seen_at = row.get("created_at"), row.get("last_seen_at")
    if not (isinstance(session_id, str) and isinstance(token_hash, str)):
        raise ValueError("session id and hash must be strings")
    if not isinstance(label, str):
        raise ValueError("session label must be a string")
    digest = bytes.fromhex(token_hash)
    if len(digest) != hashlib.sha256().digest_size or len(session_id) != 2 * SESSION_ID_BYTES:
        raise ValueError("session hash or id has the wrong length")
    session = BrowserSession(
        session_id, _clean_label(label), _seconds(created_at), _seconds(last_seen_at)
    )
    return _Stored(session, digest)


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("session times must be finite numbers")
    return float(value)
