"""An Olm pre-key message taken apart and put back is vodozemac's own bytes again, and the
account names its fallback keys (current and previous) by their short id."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.crypto.errors import MalformedInput, UnknownPrekey
from pigeon.crypto.olm_account import FALLBACK_ROTATION_S, OlmAccount
from pigeon.crypto.olm_session import OlmSession
from pigeon.crypto.olm_wire import (
    PREKEY_ID_LEN,
    OlmMessage,
    join_prekey,
    prekey_id,
    split_prekey,
)
from pigeon.crypto.signing import SigningKey

NOW = 1_800_000_000.0


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=3000), st.booleans())
def test_a_prekey_message_rebuilt_from_its_parts_is_byte_identical_and_opens(
    plaintext: bytes, one_time: bool
) -> None:
    alice = OlmAccount.create(SigningKey.generate(), NOW)
    bob = OlmAccount.create(SigningKey.generate(), NOW)
    if one_time:
        (bundle,) = bob.publish_one_time_prekeys(1)
    else:
        bundle = bob.fallback_prekey_bundle()
    message = OlmSession.outbound(alice, bundle).encrypt_message(plaintext)
    keys, inner = split_prekey(message.ciphertext)
    assert (keys.one_time_key, keys.identity_key) == (
        bundle.prekey,
        alice.identity_bundle().curve_identity_key,
    )
    rebuilt = join_prekey(keys, inner)
    assert rebuilt == message.ciphertext
    _, opened = OlmSession.inbound(bob, alice.identity_bundle(), OlmMessage(0, rebuilt))
    assert opened == plaintext


def test_a_prekey_message_without_its_inner_message_does_not_split() -> None:
    alice = OlmAccount.create(SigningKey.generate(), NOW)
    bob = OlmAccount.create(SigningKey.generate(), NOW)
    message = OlmSession.outbound(alice, bob.fallback_prekey_bundle()).encrypt_message(b"m")
    keys, _ = split_prekey(message.ciphertext)
    with pytest.raises(MalformedInput):
        split_prekey(join_prekey(keys, b""))
    with pytest.raises(MalformedInput):
        split_prekey(b"\x04" + message.ciphertext[1:])


def test_the_account_names_its_current_and_previous_fallback_keys() -> None:
    account = OlmAccount.create(SigningKey.generate(), NOW)
    first = account.fallback_prekey_bundle().prekey
    assert account.fallback_named(prekey_id(first)) == first
    account.rotate_fallback(NOW + FALLBACK_ROTATION_S)
    second = account.fallback_prekey_bundle().prekey
    assert account.fallback_named(prekey_id(second)) == second
    assert account.fallback_named(prekey_id(first)) == first  # the previous one still opens
    account.rotate_fallback(NOW + 2 * FALLBACK_ROTATION_S)
    with pytest.raises(UnknownPrekey):
        account.fallback_named(prekey_id(first))  # retired
    (one_time,) = account.publish_one_time_prekeys(1)
    with pytest.raises(UnknownPrekey):
        account.fallback_named(prekey_id(one_time.prekey))  # the short form is for fallbacks
    with pytest.raises(MalformedInput):
        account.fallback_named(bytes(PREKEY_ID_LEN - 1))
