"""Read authorisation decided without a server: every refusal and the one way in."""

from __future__ import annotations

import pytest

from pigeon.crypto.signing import SigningKey
from pigeon.relay.auth import IssuedChallenge, KeyCheckCache, check_auth
from pigeon.relay.protocol import Auth, ErrorCode, read_signed_message

URL = "wss://relay.example.org/v1"
NOW_S = 1_800_000_000.0
CHALLENGE = bytes(range(32))
ISSUED = IssuedChallenge(CHALLENGE, NOW_S - 5)


def answer(
    key: SigningKey,
    *,
    url: str = URL,
    challenge: bytes = CHALLENGE,
    timestamp_ms: int = int(NOW_S * 1000),
    claimed_key: bytes | None = None,
) -> Auth:
    message = read_signed_message(challenge, url, timestamp_ms, claimed_key or key.public_key)
    return Auth(claimed_key or key.public_key, timestamp_ms, key.sign(message))


def check(auth: Auth, issued: IssuedChallenge = ISSUED) -> ErrorCode | None:
    return check_auth(auth, issued, (URL, "ws://relay.lan/v1"), NOW_S, 60.0, 300.0)


def test_a_correct_answer_opens_the_mailbox() -> None:
    key = SigningKey.generate()
    assert check(answer(key)) is None
    assert check(answer(key, url="ws://relay.lan/v1")) is None


def test_wrong_key() -> None:
    owner, thief = SigningKey.generate(), SigningKey.generate()
    assert check(answer(thief, claimed_key=owner.public_key)) is ErrorCode.BAD_SIGNATURE


def test_small_order_key_with_the_classic_forgery() -> None:
    small = bytes([1]) + bytes(31)
    forged = Auth(small, int(NOW_S * 1000), small + bytes(32))
    assert check(forged) is ErrorCode.BAD_KEY


def test_other_relay_url() -> None:
    assert check(answer(SigningKey.generate(), url="wss://other/v1")) is ErrorCode.BAD_SIGNATURE


def test_other_challenge() -> None:
    other = bytes(32)
    assert check(answer(SigningKey.generate(), challenge=other)) is ErrorCode.BAD_SIGNATURE


def test_expired_challenge() -> None:
    old = IssuedChallenge(CHALLENGE, NOW_S - 61)
    assert check(answer(SigningKey.generate()), old) is ErrorCode.CHALLENGE_EXPIRED


@pytest.mark.parametrize("offset_s", [-301, 301])
def test_clock_skew(offset_s: int) -> None:
    ts = int((NOW_S + offset_s) * 1000)
    assert check(answer(SigningKey.generate(), timestamp_ms=ts)) is ErrorCode.CLOCK_SKEW


def test_timestamp_is_signed() -> None:
    good = answer(SigningKey.generate())
    moved = Auth(good.mailbox_key, good.timestamp_ms + 1, good.signature)
    assert check(moved) is ErrorCode.BAD_SIGNATURE


def test_challenge_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        IssuedChallenge(bytes(31), NOW_S)


def test_key_check_cache_remembers_verdicts_within_capacity() -> None:
    cache = KeyCheckCache(2)
    good = SigningKey.generate().public_key
    small = bytes([1]) + bytes(31)
    assert cache.is_valid(good)
    assert not cache.is_valid(small)
    assert not cache.is_valid(b"short")
    assert cache.is_valid(good)
    assert not cache.is_valid(small)
