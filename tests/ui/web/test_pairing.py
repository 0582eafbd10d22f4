"""Pairing codes and browser sessions: expiry, single use, five tries, revoke, persistence."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.ui.web.errors import ClosedByWrongCodes, NoPairingWindow, UnknownSession, WrongCode
from pigeon.ui.web.pairing import (
    CODE_TTL_S,
    MAX_SESSIONS,
    MAX_TRIES,
    SESSION_IDLE_S,
    Pairing,
    decode_sessions,
)
from pigeon.ui.web.session_file import FilePairingStore

T0 = 1_700_000_000.0


def _rng(seed: int = 1) -> random.Random:
    return random.Random(seed)


def _pairing(tmp_path: Path, seed: int = 1) -> Pairing:
    return Pairing(FilePairingStore(tmp_path / "sessions.json"), rng=_rng(seed).randbytes)


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_code_is_six_digits_and_window_reports_expiry(tmp_path: Path) -> None:
    pairing = _pairing(tmp_path)
    code = pairing.start(T0)
    assert len(code) == 6
    assert code.isdigit()
    window = pairing.window(T0 + 1)
    assert window is not None
    assert window.code == code
    assert window.expires_at == T0 + CODE_TTL_S
    assert code not in repr(window)


def test_correct_code_gives_a_token_that_authenticates(tmp_path: Path) -> None:
    pairing = _pairing(tmp_path)
    code = pairing.start(T0)
    token = pairing.submit(code, T0 + 5, label="Firefox on Android")
    session = pairing.authenticate(token, T0 + 6)
    assert session is not None
    assert session.label == "Firefox on Android"
    assert pairing.is_paired()
    assert pairing.window(T0 + 6) is None


def test_code_expires_after_two_minutes(tmp_path: Path) -> None:
    pairing = _pairing(tmp_path)
    code = pairing.start(T0)
    with pytest.raises(NoPairingWindow):
        pairing.submit(code, T0 + CODE_TTL_S)
    assert pairing.window(T0 + CODE_TTL_S) is None
    assert not pairing.is_paired()


def test_code_works_once(tmp_path: Path) -> None:
    pairing = _pairing(tmp_path)
    code = pairing.start(T0)
    pairing.submit(code, T0 + 1)
    with pytest.raises(NoPairingWindow):
        pairing.submit(code, T0 + 2)
    assert len(pairing.sessions()) == 1


def test_five_wrong_tries_end_the_window(tmp_path: Path) -> None:
    pairing = _pairing(tmp_path)
    code = pairing.start(T0)
    for attempt in range(MAX_TRIES):
        with pytest.raises(WrongCode) as caught:
            pairing.submit(_wrong(code), T0 + 1)
        assert caught.value.tries_left == MAX_TRIES - attempt - 1
    with pytest.raises(NoPairingWindow):
        pairing.submit(code, T0 + 2)
    assert pairing.window(T0 + 2) is None


def test_the_owner_learns_that_wrong_codes_closed_the_window(tmp_path: Path) -> None:
    changes: list[float | None] = []
    made: list[Pairing] = []
    store = FilePairingStore(tmp_path / "s.json")
    pairing = Pairing(
        store,
        rng=_rng().randbytes,
        on_change=lambda: changes.append(made[0].closed_by_wrong_codes()),
    )
    made.append(pairing)
    code = pairing.start(T0)
    for _ in range(MAX_TRIES):
        with contextlib.suppress(WrongCode):
            pairing.submit(_wrong(code), T0 + 7)
    assert pairing.closed_by_wrong_codes() == T0 + 7
    assert changes[-1] == T0 + 7  # the change hook (the OLED's refresh) sees it already
    with pytest.raises(ClosedByWrongCodes):
        pairing.submit(code, T0 + 8)
    fresh = pairing.start(T0 + 9)  # the owner holds the button again: a clean slate
    assert pairing.closed_by_wrong_codes() is None
    assert changes[-1] is None
    assert pairing.authenticate(pairing.submit(fresh, T0 + 10), T0 + 11) is not None


@pytest.mark.parametrize("ending", ["expired", "cancelled", "used", "four wrong"])
def test_other_endings_are_not_blamed_on_wrong_codes(tmp_path: Path, ending: str) -> None:
    pairing = _pairing(tmp_path)
    code = pairing.start(T0)
    if ending == "four wrong":
        for _ in range(MAX_TRIES - 1):
            with contextlib.suppress(WrongCode):
                pairing.submit(_wrong(code), T0 + 1)
        pairing.cancel()
    elif ending == "cancelled":
        pairing.cancel()
    elif ending == "used":
        pairing.submit(code, T0 + 1)
    at = T0 + CODE_TTL_S if ending == "expired" else T0 + 2
    with pytest.raises(NoPairingWindow) as caught:
        pairing.submit(code, at)
    assert not isinstance(caught.value, ClosedByWrongCodes)
    assert pairing.closed_by_wrong_codes() is None


def test_four_wrong_tries_still_allow_the_right_code(tmp_path: Path) -> None:
    pairing = _pairing(tmp_path)
    code = pairing.start(T0)
    for _ in range(MAX_TRIES - 1):
        with pytest.raises(WrongCode):
            pairing.submit(_wrong(code), T0 + 1)
    assert pairing.authenticate(pairing.submit(code, T0 + 2), T0 + 3) is not None


def test_a_new_window_replaces_the_old_code(tmp_path: Path) -> None:
    pairing = _pairing(tmp_path)
    first = pairing.start(T0)
    second = pairing.start(T0 + 1)
    if first != second:
        with pytest.raises(WrongCode):
            pairing.submit(first, T0 + 2)
    pairing.submit(second, T0 + 3)


def test_cancel_closes_the_window(tmp_path: Path) -> None:
    changes: list[None] = []
    store = FilePairingStore(tmp_path / "s.json")
    pairing = Pairing(store, rng=_rng().randbytes, on_change=lambda: changes.append(None))
    code = pairing.start(T0)
    pairing.cancel()
    with pytest.raises(NoPairingWindow):
        pairing.submit(code, T0 + 1)
    assert len(changes) == 2


def test_revoke_locks_the_browser_out(tmp_path: Path) -> None:
    pairing = _pairing(tmp_path)
    keep = pairing.submit(pairing.start(T0), T0 + 1, "kept")
    drop = pairing.submit(pairing.start(T0 + 2), T0 + 3, "dropped")
    dropped = pairing.authenticate(drop, T0 + 4)
    assert dropped is not None
    pairing.revoke(dropped.session_id)
    assert pairing.authenticate(drop, T0 + 5) is None
    assert pairing.authenticate(keep, T0 + 5) is not None
    with pytest.raises(UnknownSession):
        pairing.revoke(dropped.session_id)
    assert [s.label for s in pairing.sessions()] == ["kept"]


def test_sessions_survive_a_restart_and_only_hashes_are_stored(tmp_path: Path) -> None:
    pairing = _pairing(tmp_path)
    token = pairing.submit(pairing.start(T0), T0 + 1, "phone")
    blob = (tmp_path / "sessions.json").read_bytes()
    assert token.encode() not in blob
    assert (tmp_path / "sessions.json").stat().st_mode & 0o077 == 0
    reborn = _pairing(tmp_path, seed=2)
    session = reborn.authenticate(token, T0 + 10)
    assert session is not None
    assert session.label == "phone"


def test_revocation_survives_a_restart(tmp_path: Path) -> None:
    pairing = _pairing(tmp_path)
    token = pairing.submit(pairing.start(T0), T0 + 1)
    session = pairing.authenticate(token, T0 + 2)
    assert session is not None
    pairing.revoke(session.session_id)
    assert _pairing(tmp_path, seed=3).authenticate(token, T0 + 3) is None


def test_revoke_all_locks_every_browser_out_now_and_after_a_restart(tmp_path: Path) -> None:
    changes: list[bool] = []
    pairing = Pairing(
        FilePairingStore(tmp_path / "sessions.json"),
        rng=_rng().randbytes,
        on_change=lambda: changes.append(True),
    )
    tokens = [pairing.submit(pairing.start(T0 + i), T0 + i, f"b{i}") for i in range(3)]
    changes.clear()
    assert pairing.revoke_all() == 3
    assert changes
    assert not pairing.is_paired()
    assert all(pairing.authenticate(token, T0 + 5) is None for token in tokens)
    reborn = _pairing(tmp_path, seed=4)
    assert not reborn.is_paired()
    assert all(reborn.authenticate(token, T0 + 5) is None for token in tokens)


def test_idle_sessions_expire(tmp_path: Path) -> None:
    pairing = _pairing(tmp_path)
    token = pairing.submit(pairing.start(T0), T0 + 1)
    assert pairing.authenticate(token, T0 + 1 + SESSION_IDLE_S + 1) is None
    assert not pairing.is_paired()


def test_session_count_is_capped_dropping_the_least_recently_seen(tmp_path: Path) -> None:
    pairing = _pairing(tmp_path)
    tokens = [pairing.submit(pairing.start(T0 + i), T0 + i, f"b{i}") for i in range(MAX_SESSIONS)]
    newest = pairing.submit(pairing.start(T0 + 100), T0 + 100, "newest")
    assert len(pairing.sessions()) == MAX_SESSIONS
    assert pairing.authenticate(tokens[0], T0 + 101) is None
    assert pairing.authenticate(newest, T0 + 101) is not None


def test_garbage_store_admits_nobody(tmp_path: Path) -> None:
    (tmp_path / "sessions.json").write_bytes(b"\xff not json")
    pairing = _pairing(tmp_path)
    assert not pairing.is_paired()
    assert pairing.sessions() == ()


def test_stored_hash_is_sha256_of_the_token(tmp_path: Path) -> None:
    pairing = _pairing(tmp_path)
    token = pairing.submit(pairing.start(T0), T0 + 1)
    raw = __import__("base64").urlsafe_b64decode(token + "=")
    rows = json.loads((tmp_path / "sessions.json").read_bytes())["sessions"]
    assert rows[0]["hash"] == hashlib.sha256(raw).hexdigest()


@given(st.text(max_size=80))
def test_bad_tokens_authenticate_nobody(token: str) -> None:
    class Memory:
        blob: bytes | None = None

        def load(self) -> bytes | None:
            return self.blob

        def save(self, blob: bytes) -> None:
            self.blob = blob

    pairing = Pairing(Memory(), rng=_rng().randbytes)
    pairing.submit(pairing.start(T0), T0 + 1)
    assert pairing.authenticate(token, T0 + 2) is None


@given(st.binary(max_size=300))
def test_session_blob_parser_raises_only_value_error(blob: bytes) -> None:
    with contextlib.suppress(ValueError):
        decode_sessions(blob)


def test_codes_are_spread_over_all_digits() -> None:
    class Memory:
        def load(self) -> bytes | None:
            return None

        def save(self, blob: bytes) -> None:
            del blob

    pairing = Pairing(Memory(), rng=_rng(7).randbytes)
    codes = {pairing.start(T0) for _ in range(2000)}
    assert len(codes) > 1990
    assert {code[0] for code in codes} == set("0123456789")
