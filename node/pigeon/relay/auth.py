"""Read authorisation: a per-connection challenge, and the check of a reader's signed answer.

Pure apart from the signature check (libsodium through `pigeon.crypto.signing`): the caller
passes the time and the challenge bytes, so tests drive every branch deterministically.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from pigeon.crypto.errors import InvalidSignature, MalformedInput, WeakKey
from pigeon.crypto.signing import check_public_key, verify
from pigeon.relay.protocol import CHALLENGE_LEN, Auth, ErrorCode, read_signed_message


@dataclass(frozen=True, slots=True)
class IssuedChallenge:
    """A challenge sent on one connection at `issued_at_s` (wall clock, seconds)."""

    challenge: bytes
    issued_at_s: float

    def __post_init__(self) -> None:
        if len(self.challenge) != CHALLENGE_LEN:
            raise ValueError(f"a challenge is {CHALLENGE_LEN} bytes")


class KeyCheckCache:
    """`check_public_key` verdicts of recently seen keys (the check costs a scalar multiply)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._verdicts: OrderedDict[bytes, bool] = OrderedDict()

    def is_valid(self, public_key: bytes) -> bool:
        """True if `public_key` is a usable Ed25519 key (not malformed, not small-order)."""
        verdict = self._verdicts.get(public_key)
        if verdict is None:
            try:
                check_public_key(public_key)
            except (MalformedInput, WeakKey):
                verdict = False
            else:
                verdict = True
            self._verdicts[public_key] = verdict
            if len(self._verdicts) > self._capacity:
                self._verdicts.popitem(last=False)
        else:
            self._verdicts.move_to_end(public_key)
        return verdict


def check_auth(
    auth: Auth,
    issued: IssuedChallenge,
    relay_urls: tuple[str, ...],
    now_s: float,
    challenge_ttl_s: float,
    max_clock_skew_s: float,
) -> ErrorCode | None:
    """None if `auth` answers `issued` for one of `relay_urls` in time, else the refusal."""
    try:
        check_public_key(auth.mailbox_key)
    except (MalformedInput, WeakKey):
        return ErrorCode.BAD_KEY
    if now_s - issued.issued_at_s > challenge_ttl_s:
        return ErrorCode.CHALLENGE_EXPIRED
    if abs(auth.timestamp_ms / 1000 - now_s) > max_clock_skew_s:
        return ErrorCode.CLOCK_SKEW
    for url in relay_urls:
        message = read_signed_message(issued.challenge, url, auth.timestamp_ms, auth.mailbox_key)
        try:
            verify(auth.mailbox_key, message, auth.signature)
        except InvalidSignature:
            continue
        except (MalformedInput, WeakKey):
            return ErrorCode.BAD_KEY
        return None
    return ErrorCode.BAD_SIGNATURE
