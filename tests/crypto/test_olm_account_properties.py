"""Property: whatever mix of publishing, rotating, restoring and first contacts, every genuine
initiation to a live prekey opens exactly once, and nothing opens twice."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.crypto.app_bundle import AppPrekeyBundle
from pigeon.crypto.errors import Replayed, UnknownPrekey
from pigeon.crypto.olm_account import FALLBACK_ROTATION_S, OlmAccount
from pigeon.crypto.olm_session import OlmSession
from pigeon.crypto.signing import SigningKey
from tests.crypto.plain_app_peer import PlainAppPeer
from tests.crypto.test_olm_interop import HIGH_SEED, LOW_SEED

PICKLE_KEY = bytes(32)
operations = st.lists(
    st.sampled_from(["publish", "rotate", "restore", "fallback", "one_time", "replay"]),
    max_size=14,
)


@settings(max_examples=60)
@given(operations)
def test_initiations_open_once_across_rotations_and_restores(ops: list[str]) -> None:
    now = 1_800_000_000.0
    identity = SigningKey(HIGH_SEED)
    account = OlmAccount.create(identity, now)
    peer = PlainAppPeer(LOW_SEED)
    one_time: list[AppPrekeyBundle] = []
    opened: list[tuple[bytes, bytes]] = []  # (initiation, prekey it used)
    fallbacks = [account.fallback_prekey_bundle().prekey]
    for op in ops:
        if op == "publish":
            one_time += account.publish_one_time_prekeys(2)
        elif op == "rotate":
            now += FALLBACK_ROTATION_S
            assert account.rotate_fallback_if_due(now)
            fallbacks.append(account.fallback_prekey_bundle().prekey)
        elif op == "restore":
            account = OlmAccount.from_bytes(account.to_bytes(PICKLE_KEY), PICKLE_KEY, identity)
        elif op == "replay" and opened:
            _check_refused(account, peer, *opened[-1], live_fallbacks=fallbacks[-2:])
        elif op == "fallback" or (op == "one_time" and one_time):
            bundle = one_time.pop() if op == "one_time" else account.fallback_prekey_bundle()
            initiation = peer.start(bundle.to_bytes(), b"m")
            session, first = OlmSession.accept(account, initiation, peer.identity_key)
            assert first == b"m"
            assert peer.decrypt(identity.public_key, session.encrypt(b"r")) == b"r"
            opened.append((initiation, bundle.prekey))
    assert account.unused_one_time_keys == len(one_time)
    for initiation, prekey in opened:
        _check_refused(account, peer, initiation, prekey, live_fallbacks=fallbacks[-2:])


def _check_refused(
    account: OlmAccount,
    peer: PlainAppPeer,
    initiation: bytes,
    prekey: bytes,
    live_fallbacks: list[bytes],
) -> None:
    """A live fallback key's session is remembered; any other prekey is gone or remembered."""
    expected = Replayed if prekey in live_fallbacks else (Replayed, UnknownPrekey)
    with pytest.raises(expected):
        OlmSession.accept(account, initiation, peer.identity_key)
