"""Double Ratchet behaviour: delivery orders, tampering, replay, skip bounds, state bytes."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

import pigeon.crypto.ratchet as ratchet_module
from pigeon.crypto.errors import (
    CryptoError,
    DecryptFailed,
    MalformedInput,
    Replayed,
    SkipLimitExceeded,
    StateMisuse,
    WeakKey,
)
from pigeon.crypto.ratchet import HEADER_LEN, MAX_SKIP, MAX_SKIPPED_TOTAL, DoubleRatchet
from pigeon.crypto.ratchet_kdf import kdf_ck, public_key_of
from pigeon.crypto.ratchet_state import MAX_PREVIOUS_CHAINS, RatchetSnapshot

AD = b"associated data"


def make_pair(seed: int = 0) -> tuple[DoubleRatchet, DoubleRatchet]:
    """Alice (initiator) and Bob (responder) sharing a root key, from a seeded rng."""
    rng = random.Random(seed).randbytes
    root_key = rng(32)
    bob_private = rng(32)
    bob_public = public_key_of(X25519PrivateKey.from_private_bytes(bob_private))
    alice = DoubleRatchet.initiator(root_key, rng(32), bob_public, rng)
    bob = DoubleRatchet.responder(root_key, bob_private, alice.ratchet_public, rng)
    return alice, bob


def restored(ratchet: DoubleRatchet, seed: int = 99) -> DoubleRatchet:
    return DoubleRatchet.from_bytes(ratchet.to_bytes(), random.Random(seed).randbytes)


def test_both_sides_can_send_first_and_converse() -> None:
    alice, bob = make_pair()
    assert bob.decrypt(alice.encrypt(b"hello", AD), AD) == b"hello"
    assert alice.decrypt(bob.encrypt(b"hi", AD), AD) == b"hi"
    alice, bob = make_pair(1)
    assert alice.decrypt(bob.encrypt(b"bob first", AD), AD) == b"bob first"
    for turn in range(6):
        sender, receiver = (alice, bob) if turn % 2 else (bob, alice)
        text = f"turn {turn}".encode()
        assert receiver.decrypt(sender.encrypt(text, AD), AD) == text


def test_message_layout_is_header_then_ciphertext_and_tag() -> None:
    alice, _ = make_pair()
    alice.encrypt(b"one", AD)
    message = alice.encrypt(b"x" * 100, AD)
    assert len(message) == HEADER_LEN + 100 + 16
    assert message[:32] == alice.ratchet_public
    assert message[32:36] == (0).to_bytes(4, "big")  # PN
    assert message[36:40] == (1).to_bytes(4, "big")  # N


def test_associated_data_is_bound() -> None:
    alice, bob = make_pair()
    message = alice.encrypt(b"bound", AD)
    with pytest.raises(DecryptFailed):
        bob.decrypt(message, AD + b"!")
    assert bob.decrypt(message, AD) == b"bound"


def test_replayed_message_is_refused_without_state_change() -> None:
    alice, bob = make_pair()
    first, second = alice.encrypt(b"1", AD), alice.encrypt(b"2", AD)
    assert bob.decrypt(second, AD) == b"2"
    assert bob.decrypt(first, AD) == b"1"  # out of order, from the skipped keys
    state = bob.to_bytes()
    for message in (first, second):
        with pytest.raises(Replayed):
            bob.decrypt(message, AD)
    assert bob.to_bytes() == state


def test_message_from_an_old_chain_after_use_is_refused() -> None:
    alice, bob = make_pair()
    old = alice.encrypt(b"old chain", AD)
    bob.decrypt(old, AD)
    alice.decrypt(bob.encrypt(b"step", AD), AD)
    bob.decrypt(alice.encrypt(b"new chain", AD), AD)
    state = bob.to_bytes()
    with pytest.raises(Replayed):
        bob.decrypt(old, AD)
    assert bob.to_bytes() == state


@pytest.mark.parametrize("scenario", ["current", "skipped", "new_chain", "after_gap"])
def test_failing_unwrap_commits_nothing(scenario: str) -> None:
    receiver, message, plaintext = _tamper_target(scenario)
    state = receiver.to_bytes()

    def refuse(_: bytes) -> bytes:
        raise MalformedInput("refused by the caller")

    with pytest.raises(MalformedInput):
        receiver.decrypt(message, AD, refuse)
    assert receiver.to_bytes() == state
    assert receiver.decrypt(message, AD) == plaintext


def test_only_the_last_chains_are_remembered_as_used() -> None:
    alice, bob = make_pair()
    first = alice.encrypt(b"first chain", AD)
    bob.decrypt(first, AD)
    for turn in range(MAX_PREVIOUS_CHAINS + 1):
        alice.decrypt(bob.encrypt(b"%d" % turn, AD), AD)
        bob.decrypt(alice.encrypt(b"%d" % turn, AD), AD)
    assert len(bob.snapshot().previous_dhr) == MAX_PREVIOUS_CHAINS
    state = bob.to_bytes()
    with pytest.raises(DecryptFailed):  # too old to be known as used: tried, and fails
        bob.decrypt(first, AD)
    assert bob.to_bytes() == state


def test_short_message_is_malformed() -> None:
    _, bob = make_pair()
    with pytest.raises(MalformedInput):
        bob.decrypt(bytes(HEADER_LEN + 15), AD)


def test_header_with_low_order_key_is_weak_and_changes_nothing() -> None:
    alice, bob = make_pair()
    message = alice.encrypt(b"x", AD)
    state = bob.to_bytes()
    with pytest.raises(WeakKey):
        bob.decrypt(bytes(32) + message[32:], AD)
    assert bob.to_bytes() == state


def test_initiator_refuses_low_order_remote_key() -> None:
    with pytest.raises(WeakKey):
        DoubleRatchet.initiator(bytes(32), bytes(range(32)), bytes(32))


def test_sending_without_a_chain_is_our_misuse() -> None:
    snapshot = RatchetSnapshot(bytes(range(32)), bytes(32), None, None, None, 0, 0, 0, (), ())
    with pytest.raises(StateMisuse):
        DoubleRatchet(snapshot).encrypt(b"x", AD)


def test_repr_shows_no_key_material() -> None:
    alice, _ = make_pair()
    snapshot = alice.snapshot()
    for secret in (snapshot.rk, snapshot.cks, snapshot.dhs_private):
        assert secret is not None
        assert secret.hex() not in repr(alice)
        assert secret.hex() not in repr(snapshot)
        assert repr(secret) not in repr(snapshot)


class _CountingKdf:
    calls = 0


@pytest.fixture
def counted_kdf_ck(monkeypatch: pytest.MonkeyPatch) -> _CountingKdf:
    """Count every chain-key step the ratchet module takes."""
    counter = _CountingKdf()
    original = kdf_ck

    def counting(chain_key: bytes) -> tuple[bytes, bytes]:
        counter.calls += 1
        return original(chain_key)

    monkeypatch.setattr(ratchet_module, "kdf_ck", counting)
    return counter


@pytest.mark.parametrize("number", [MAX_SKIP + 2, 2**32 - 2])
def test_forged_message_number_is_refused_before_deriving(
    counted_kdf_ck: _CountingKdf, number: int
) -> None:
    alice, bob = make_pair()
    bob.decrypt(alice.encrypt(b"sync", AD), AD)
    message = bytearray(alice.encrypt(b"x", AD))
    message[36:40] = number.to_bytes(4, "big")
    state = bob.to_bytes()
    counted_kdf_ck.calls = 0
    with pytest.raises(SkipLimitExceeded):
        bob.decrypt(bytes(message), AD)
    assert counted_kdf_ck.calls == 0
    assert bob.to_bytes() == state


@pytest.mark.parametrize(("pn", "number"), [(MAX_SKIP + 2, 0), (2**32 - 1, 0), (0, 2**32 - 2)])
def test_forged_new_chain_header_is_refused_before_deriving(
    counted_kdf_ck: _CountingKdf, pn: int, number: int
) -> None:
    alice, bob = make_pair()
    bob.decrypt(alice.encrypt(b"sync", AD), AD)
    forged = (
        public_key_of(X25519PrivateKey.generate())
        + pn.to_bytes(4, "big")
        + number.to_bytes(4, "big")
        + bytes(32)
    )
    state = bob.to_bytes()
    counted_kdf_ck.calls = 0
    with pytest.raises(SkipLimitExceeded):
        bob.decrypt(forged, AD)
    assert counted_kdf_ck.calls == 0
    assert bob.to_bytes() == state


def test_the_last_message_number_is_never_accepted() -> None:
    alice, bob = make_pair()
    message = bytearray(alice.encrypt(b"x", AD))
    message[36:40] = b"\xff\xff\xff\xff"
    state = bob.to_bytes()
    with pytest.raises(MalformedInput):
        bob.decrypt(bytes(message), AD)
    assert bob.to_bytes() == state


def test_a_gap_of_exactly_max_skip_is_accepted() -> None:
    alice, bob = make_pair()
    messages = [alice.encrypt(b"%d" % i, AD) for i in range(MAX_SKIP + 1)]
    assert bob.decrypt(messages[-1], AD) == b"%d" % MAX_SKIP
    assert bob.decrypt(messages[0], AD) == b"0"
    assert len(bob.snapshot().skipped) == MAX_SKIP - 1


@pytest.mark.slow
def test_skipped_keys_are_bounded_in_total_and_oldest_go_first() -> None:
    alice, bob = make_pair()
    chains: list[list[bytes]] = []
    for size in (MAX_SKIP + 1, MAX_SKIP + 1, 2):
        chain = [alice.encrypt(b"%d" % i, AD) for i in range(size)]
        bob.decrypt(chain[-1], AD)
        alice.decrypt(bob.encrypt(b"turn", AD), AD)
        chains.append(chain)
    assert len(bob.snapshot().skipped) == MAX_SKIPPED_TOTAL
    state = bob.to_bytes()
    with pytest.raises(Replayed):
        bob.decrypt(chains[0][0], AD)  # the oldest skipped key was evicted
    assert bob.to_bytes() == state
    assert bob.decrypt(chains[0][1], AD) == b"1"
    assert bob.decrypt(chains[2][0], AD) == b"0"


@dataclass
class _Party:
    ratchet: DoubleRatchet
    inbox: list[tuple[bytes, bytes]] = field(default_factory=list)
    sent: int = 0


_OPS = st.lists(
    st.tuples(st.sampled_from(["send", "deliver", "restore"]), st.booleans(), st.integers(0, 50)),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops=_OPS, final_order=st.randoms(use_true_random=False), seed=st.integers(0, 2**16))
def test_any_delivery_order_decrypts_and_restore_continues(
    ops: list[tuple[str, bool, int]], final_order: random.Random, seed: int
) -> None:
    alice, bob = make_pair(seed)
    parties = {True: _Party(alice), False: _Party(bob)}
    for index, (op, is_alice, pick) in enumerate(ops):
        me, peer = parties[is_alice], parties[not is_alice]
        if op == "send":
            text = b"%s-%d" % (b"ab"[is_alice : is_alice + 1], me.sent)
            peer.inbox.append((me.ratchet.encrypt(text, AD), text))
            me.sent += 1
        elif op == "deliver" and me.inbox:
            message, text = me.inbox.pop(pick % len(me.inbox))
            assert me.ratchet.decrypt(message, AD) == text
        elif op == "restore":
            # A fresh seed per restore: a repeated rng would repeat ratchet keys.
            me.ratchet = restored(me.ratchet, seed * 100 + index)
            assert me.ratchet.to_bytes() == restored(me.ratchet).to_bytes()
    for party in parties.values():
        final_order.shuffle(party.inbox)
        for message, text in party.inbox:
            assert party.ratchet.decrypt(message, AD) == text
    for is_alice in (True, False):
        me, peer = parties[is_alice], parties[not is_alice]
        assert peer.ratchet.decrypt(me.ratchet.encrypt(b"after", AD), AD) == b"after"


_SCENARIOS = st.sampled_from(["current", "skipped", "new_chain", "after_gap"])


def _tamper_target(scenario: str) -> tuple[DoubleRatchet, bytes, bytes]:
    """(receiver, message, its plaintext) with the receiver in a given situation."""
    alice, bob = make_pair(7)
    bob.decrypt(alice.encrypt(b"warm up", AD), AD)
    if scenario == "current":
        return bob, alice.encrypt(b"target", AD), b"target"
    if scenario == "skipped":
        target = alice.encrypt(b"target", AD)
        bob.decrypt(alice.encrypt(b"later", AD), AD)
        return bob, target, b"target"
    if scenario == "after_gap":
        alice.encrypt(b"lost", AD)
        return bob, alice.encrypt(b"target", AD), b"target"
    alice.decrypt(bob.encrypt(b"step", AD), AD)
    return bob, alice.encrypt(b"target", AD), b"target"


@settings(max_examples=200, deadline=None)
@given(scenario=_SCENARIOS, bit=st.integers(0, (HEADER_LEN + 6 + 16) * 8 - 1))
def test_any_bit_flip_fails_and_changes_nothing(scenario: str, bit: int) -> None:
    receiver, message, plaintext = _tamper_target(scenario)
    forged = bytearray(message)
    forged[bit // 8] ^= 1 << (bit % 8)
    state = receiver.to_bytes()
    with pytest.raises(CryptoError):
        receiver.decrypt(bytes(forged), AD)
    assert receiver.to_bytes() == state
    assert receiver.decrypt(message, AD) == plaintext


def test_state_bytes_restore_exactly() -> None:
    alice, bob = make_pair()
    for i in range(3):
        alice.encrypt(b"%d" % i, AD)
    bob.decrypt(alice.encrypt(b"3", AD), AD)
    state = bob.to_bytes()
    assert state[0] == 1
    assert DoubleRatchet.from_bytes(state).to_bytes() == state
    assert DoubleRatchet.from_bytes(state).snapshot() == bob.snapshot()


def _state_with_skipped() -> bytes:
    alice, bob = make_pair()
    alice.encrypt(b"skipped", AD)
    bob.decrypt(alice.encrypt(b"x", AD), AD)
    return bob.to_bytes()


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda b: b"\x02" + b[1:], id="version"),
        pytest.param(lambda b: b[:1] + b"\x0f" + b[2:], id="unknown-flag"),
        pytest.param(lambda b: b[:1] + b"\x06" + b[2:], id="ckr-without-dhr"),
        pytest.param(lambda b: b[:-1], id="truncated"),
        pytest.param(lambda b: b + b"\x00", id="trailing"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: b[:-68] + b[-68:] * 2, id="duplicate-skipped"),
    ],
)
def test_malformed_state_is_refused(mutate: object) -> None:
    state = _state_with_skipped()
    assert callable(mutate)
    with pytest.raises(MalformedInput):
        DoubleRatchet.from_bytes(mutate(state))


def test_state_with_too_many_skipped_keys_is_refused() -> None:
    state = bytearray(_state_with_skipped())
    count_at = len(state) - 68 - 4
    state[count_at : count_at + 4] = (MAX_SKIPPED_TOTAL + 1).to_bytes(4, "big")
    with pytest.raises(MalformedInput):
        DoubleRatchet.from_bytes(bytes(state))


def test_state_remembering_too_many_chains_is_refused() -> None:
    too_many = (bytes(32),) * (MAX_PREVIOUS_CHAINS + 1)
    snapshot = RatchetSnapshot(bytes(32), bytes(32), None, None, None, 0, 0, 0, too_many, ())
    with pytest.raises(MalformedInput):
        DoubleRatchet.from_bytes(snapshot.to_bytes())


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400))
def test_random_state_bytes_raise_only_malformed_input(data: bytes) -> None:
    with contextlib.suppress(MalformedInput):
        DoubleRatchet.from_bytes(data)


def test_without_new_chains_an_unknown_ratchet_key_is_refused_before_deriving(
    counted_kdf_ck: _CountingKdf,
) -> None:
    alice, bob = make_pair()
    bob.decrypt(alice.encrypt(b"sync", AD), AD)
    alice.decrypt(bob.encrypt(b"turn", AD), AD)
    late = alice.encrypt(b"a new chain of alice's", AD)
    state = bob.to_bytes()
    counted_kdf_ck.calls = 0
    with pytest.raises(DecryptFailed):
        bob.decrypt(late, AD, new_chain=False)
    assert counted_kdf_ck.calls == 0
    assert bob.to_bytes() == state
    assert bob.decrypt(late, AD) == b"a new chain of alice's"  # allowed, it is a DH step


def test_without_new_chains_known_chains_still_open() -> None:
    alice, bob = make_pair()
    first, second, third = (alice.encrypt(bytes([n]), AD) for n in range(3))
    assert bob.decrypt(second, AD, new_chain=False) == b"\x01"  # the current chain, a gap
    assert bob.decrypt(first, AD, new_chain=False) == b"\x00"  # a skipped key
    assert bob.decrypt(third, AD, new_chain=False) == b"\x02"
