"""The ratchet and session known-answer checks of `pigeon selftest` pass, and can fail."""

from __future__ import annotations

import pytest

import pigeon.crypto.ratchet as ratchet_module
from pigeon.crypto import session_kat
from pigeon.crypto.ratchet_kdf import kdf_rk
from pigeon.crypto.selftest_command import CHECKS


def test_checks_pass_and_are_registered() -> None:
    for check in (
        session_kat.check_ratchet_kdf,
        session_kat.check_ratchet,
        session_kat.check_session,
    ):
        check()
        assert check in CHECKS.values()


def test_checks_fail_when_the_root_kdf_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    def other_label(root_key: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
        return kdf_rk(root_key, dh_out, info=b"another label")

    monkeypatch.setattr(ratchet_module, "kdf_rk", other_label)
    with pytest.raises(AssertionError):
        session_kat.check_ratchet()
    with pytest.raises(AssertionError):
        session_kat.check_session()


def test_kdf_check_fails_on_a_wrong_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_kat, "_SIGNAL_NEXT_CHAIN_KEY", bytes(32))
    with pytest.raises(AssertionError):
        session_kat.check_ratchet_kdf()
