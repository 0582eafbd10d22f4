"""The courier policy (sans-IO): bitchat's deposit rules, our quotas, hand-over, spray, expiry."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.bitchat.courier import (
    EXPIRY_SLACK_S,
    SPRAY_PER_ENCOUNTER,
    CourierConfig,
    CourierPolicy,
    Forget,
    Keep,
    Refusal,
)
from pigeon.bitchat.courier_wire import CourierEnvelope, epoch_day, recipient_tag

NOW = 1_800_000_000.0
HOUR = 3600.0
RECIPIENT = b"\x21" * 32
COURIER = b"\x31" * 32
DEPOSITOR = b"\x41" * 32


def envelope(n: int = 0, *, copies: int = 1, ttl_s: float = 6 * HOUR) -> CourierEnvelope:
    tag = recipient_tag(RECIPIENT, epoch_day(NOW))
    return CourierEnvelope(tag, int((NOW + ttl_s) * 1000), n.to_bytes(4, "big") * 8, copies)


def test_deposit_is_held_and_handed_to_its_recipient_only() -> None:
    policy = CourierPolicy()
    result = policy.deposit(envelope(), DEPOSITOR, NOW)
    assert result.refusal is None
    assert [type(op) for op in result.ops] == [Keep]
    assert policy.for_recipient(COURIER, NOW + HOUR) == []
    [held] = policy.for_recipient(RECIPIENT, NOW + HOUR)
    assert held.envelope == envelope()
    until = held.envelope.expiry_ms / 1000
    assert policy.delivered(held.identity) == [Forget(held.identity, until)]
    assert policy.for_recipient(RECIPIENT, NOW + HOUR) == []
    assert len(policy) == 0


def test_the_10001st_envelope_is_refused_cleanly() -> None:
    policy = CourierPolicy()
    for n in range(10_000):
        depositor = (n // 100).to_bytes(32, "big")
        assert policy.deposit(envelope(n), depositor, NOW).refusal is None
    assert not policy.has_room()
    result = policy.deposit(envelope(10_000), b"\xee" * 32, NOW)
    assert result.refusal is Refusal.FULL
    assert result.ops == []
    assert len(policy) == 10_000


def test_mail_its_recipient_has_is_taken_but_not_kept() -> None:
    handed = {envelope(1).identity}
    policy = CourierPolicy(delivered=lambda identity, now: identity in handed)
    again = policy.deposit(envelope(1), COURIER, NOW)
    assert (again.refusal, again.delivered, again.ops) == (None, True, [])
    assert len(policy) == 0
    assert policy.deposit(envelope(2), COURIER, NOW).delivered is False
    assert len(policy) == 1


def test_per_depositor_quota() -> None:
    policy = CourierPolicy(CourierConfig(per_depositor=2))
    assert [policy.deposit(envelope(n), DEPOSITOR, NOW).refusal for n in range(3)] == [
        None,
        None,
        Refusal.DEPOSITOR_QUOTA,
    ]
    assert policy.deposit(envelope(3), COURIER, NOW).refusal is None
    policy.delivered(envelope(0).identity)
    assert policy.deposit(envelope(4), DEPOSITOR, NOW).refusal is None  # room again


def test_expired_and_overlong_envelopes_are_refused() -> None:
    policy = CourierPolicy()
    assert policy.deposit(envelope(ttl_s=0), DEPOSITOR, NOW).refusal is Refusal.EXPIRED
    too_long = envelope(ttl_s=24 * HOUR + EXPIRY_SLACK_S + 1)
    assert policy.deposit(too_long, DEPOSITOR, NOW).refusal is Refusal.TOO_LONG
    assert (
        policy.deposit(envelope(ttl_s=24 * HOUR + EXPIRY_SLACK_S), DEPOSITOR, NOW).refusal is None
    )


def test_held_at_most_24_hours_or_the_envelopes_own_expiry() -> None:
    policy = CourierPolicy()
    policy.deposit(envelope(1, ttl_s=2 * HOUR), DEPOSITOR, NOW)
    policy.deposit(envelope(2, ttl_s=25 * HOUR), DEPOSITOR, NOW)
    assert policy.expire(NOW + 2 * HOUR - 1) == []
    assert policy.expire(NOW + 2 * HOUR) == [Forget(envelope(1).identity)]
    assert len(policy.for_recipient(RECIPIENT, NOW + 23 * HOUR)) == 1
    assert policy.for_recipient(RECIPIENT, NOW + 24 * HOUR) == []  # past its time: never offered
    assert policy.expire(NOW + 24 * HOUR) == [Forget(envelope(2).identity)]
    assert len(policy) == 0


def test_same_ciphertext_is_one_envelope_whose_budget_grows_only_before_spraying() -> None:
    policy = CourierPolicy()
    policy.deposit(envelope(copies=1), DEPOSITOR, NOW)
    again = policy.deposit(envelope(copies=4), COURIER, NOW)
    assert again.refusal is None
    assert len(policy) == 1
    [held] = policy.held()
    assert held.envelope.copies == 4
    assert held.depositor == DEPOSITOR
    policy.spray(b"\x51" * 32, NOW)
    policy.deposit(envelope(copies=8), DEPOSITOR, NOW)
    assert policy.held()[0].envelope.copies == 2  # a replay never refills a spent budget


def test_spray_halves_the_budget_once_per_courier_never_to_depositor_or_recipient() -> None:
    policy = CourierPolicy()
    policy.deposit(envelope(1, copies=4), DEPOSITOR, NOW)
    policy.deposit(envelope(2, copies=1), DEPOSITOR, NOW)
    assert policy.spray(DEPOSITOR, NOW) == ([], [])
    assert policy.spray(RECIPIENT, NOW) == ([], [])
    copies, ops = policy.spray(COURIER, NOW)
    assert [c.envelope.copies for c in copies] == [2]
    assert [type(op) for op in ops] == [Keep]
    assert policy.held()[0].envelope.copies == 2
    assert policy.spray(COURIER, NOW) == ([], [])
    copies, _ = policy.spray(b"\x61" * 32, NOW)
    assert [c.envelope.copies for c in copies] == [1]
    assert policy.held()[0].envelope.copies == 1


def test_a_decline_in_time_restores_the_budget_an_ack_does_not() -> None:
    policy = CourierPolicy()
    policy.deposit(envelope(copies=4), DEPOSITOR, NOW)
    identity = envelope().identity
    policy.spray(COURIER, NOW)
    assert policy.receipt(identity, COURIER, declined=False, now=NOW + 1) == []
    assert policy.receipt(identity, COURIER, declined=True, now=NOW + 2) == []  # already acked
    other = b"\x71" * 32
    policy.spray(other, NOW + 3)
    assert policy.held()[0].envelope.copies == 1
    [op] = policy.receipt(identity, other, declined=True, now=NOW + 4)
    assert isinstance(op, Keep)
    assert op.held.envelope.copies == 2
    late = b"\x81" * 32
    policy.spray(late, NOW + 5)
    assert policy.receipt(identity, late, declined=True, now=NOW + 60) == []  # window closed


def test_restart_from_held_keeps_quotas() -> None:
    policy = CourierPolicy(CourierConfig(max_held=3, per_depositor=2))
    for n in range(2):
        policy.deposit(envelope(n), DEPOSITOR, NOW)
    again = CourierPolicy(policy.config, policy.held())
    assert again.deposit(envelope(9), DEPOSITOR, NOW).refusal is Refusal.DEPOSITOR_QUOTA
    assert again.deposit(envelope(9), COURIER, NOW).refusal is None
    assert not again.has_room()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 4), st.integers(1, 8), st.integers(0, 30)),
        max_size=80,
    )
)
def test_quotas_hold_under_any_sequence(steps: list[tuple[int, int, int, int]]) -> None:
    config = CourierConfig(max_held=10, per_depositor=3)
    policy = CourierPolicy(config)
    now = NOW
    for n, who, copies, minutes in steps:
        now += minutes * 60
        depositor = bytes((who,)) * 32
        policy.deposit(envelope(n, copies=copies, ttl_s=HOUR), depositor, now)
        policy.spray(bytes((who + 1,)) * 32, now)
        held = policy.held()
        assert len(held) <= config.max_held
        for d in {h.depositor for h in held}:
            assert sum(h.depositor == d for h in held) <= config.per_depositor
        assert all(1 <= h.envelope.copies <= 8 and h.expires_at > h.stored_at for h in held)


def test_spray_offers_at_most_a_few_copies_per_encounter_and_unsent_ones_are_given_back() -> None:
    policy = CourierPolicy()
    for n in range(SPRAY_PER_ENCOUNTER + 3):
        policy.deposit(envelope(n, copies=4), DEPOSITOR, NOW + n)
    copies, _ = policy.spray(COURIER, NOW + 20)
    assert len(copies) == SPRAY_PER_ENCOUNTER
    unsent = copies[0].envelope.identity
    [op] = policy.unsent(unsent, COURIER)
    assert isinstance(op, Keep)
    assert op.held.envelope.copies == 4
    assert COURIER not in op.held.sprayed_to
    assert policy.unsent(unsent, COURIER) == []  # once only
    again, _ = policy.spray(COURIER, NOW + 21)
    assert unsent in {c.envelope.identity for c in again}  # offered again at the next encounter
