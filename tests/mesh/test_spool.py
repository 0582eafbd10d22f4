"""Spool policy: quotas, caps, per-depositor limits, eviction order, expiry and receipts."""

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pigeon.mesh.packet import Flag, Packet, PacketType, encoded_len, make_announce, make_receipt
from pigeon.mesh.receipt import receipt_hash
from pigeon.mesh.spool import Eviction, Spool, SpoolPolicy, SpoolReason, Usage

NOW = 1_000_000.0
TAG_A, TAG_B = b"A" * 16, b"B" * 8
LATER = int(NOW) + 3600
OVERHEAD = 43  # encoded header of an envelope with a 16-byte tag
_IDS: dict[int, bytes] = {}  # the test's number of each packet made -> its (content) id


def pid(number: int) -> bytes:
    """The id of the packet made as `number` (ids follow from contents), or one never made."""
    return _IDS.get(number, number.to_bytes(16, "big"))


def _named(number: int, packet: Packet) -> Packet:
    _IDS[number] = packet.packet_id  # the latest packet made as `number`
    return packet


def secret_of(number: int) -> bytes:
    return (number + 10_000).to_bytes(16, "big")


def env(
    number: int,
    tag: bytes = TAG_A,
    payload_len: int = 41,
    *,
    bulk: bool = False,
    expires: int = LATER,
) -> Packet:
    packet = Packet(
        type=PacketType.ENVELOPE,
        recipient_tag=tag,
        expires_at_s=expires,
        payload=bytes(payload_len),
        flags=int(Flag.BULK) if bulk else 0,
        receipt_hash=receipt_hash(secret_of(number)),
    )
    return _named(number, packet)


def receipt(number: int, for_envelope: int, secret: bytes | None = None) -> Packet:
    packet = make_receipt(secret_of(for_envelope) if secret is None else secret, TAG_A, LATER)
    return _named(number, packet)


def offer_all(spool: Spool, *packets: Packet, depositor: str = "n1", now: float = NOW) -> None:
    for packet in packets:
        decision = spool.offer(packet, depositor, now)
        assert decision.accepted, decision


def held(spool: Spool, *tags: bytes) -> list[bytes]:
    return [p.packet_id for p in spool.for_tags(tags or (TAG_A, TAG_B), NOW)]


def test_accepts_and_lists_by_tag() -> None:
    spool = Spool()
    offer_all(spool, env(1), env(2, TAG_B))
    assert len(spool) == 2
    assert spool.bytes_used == 2 * (OVERHEAD + 41) - 8
    assert held(spool, TAG_A) == [pid(1)]
    assert held(spool, TAG_B) == [pid(2)]
    assert held(spool, b"C" * 8) == []
    assert pid(1) in spool
    assert spool.usage_for_tag(TAG_A) == Usage(1, OVERHEAD + 41)
    assert spool.usage_for_depositor("n1") == Usage(2, spool.bytes_used)


def test_refusals_before_quotas() -> None:
    spool = Spool(SpoolPolicy(per_tag_max_bytes=1000))
    offer_all(spool, env(1))
    cases = [
        (env(1), SpoolReason.DUPLICATE),
        (make_announce([TAG_A], LATER), SpoolReason.NOT_SPOOLABLE),
        (env(3, expires=int(NOW)), SpoolReason.EXPIRED),
        (env(4, payload_len=1000), SpoolReason.TOO_LARGE),
    ]
    for packet, reason in cases:
        decision = spool.offer(packet, "n1", NOW)
        assert (decision.accepted, decision.reason, decision.evicted) == (False, reason, ())
    assert len(spool) == 1


def test_tag_count_quota_displaces_oldest_of_the_same_class() -> None:
    spool = Spool(SpoolPolicy(per_tag_max_packets=3))
    offer_all(spool, env(1), env(2), env(3), env(9, TAG_B))
    decision = spool.offer(env(4), "n1", NOW)
    assert decision.accepted
    assert decision.evicted == (Eviction(pid(1), SpoolReason.DISPLACED),)
    assert held(spool, TAG_A) == [pid(2), pid(3), pid(4)]
    assert held(spool, TAG_B) == [pid(9)]


def test_a_newcomer_never_displaces_a_higher_class() -> None:
    spool = Spool(SpoolPolicy(per_tag_max_packets=2))
    offer_all(spool, env(1), env(2))
    decision = spool.offer(env(3, bulk=True), "n1", NOW)
    assert (decision.accepted, decision.reason) == (False, SpoolReason.TAG_QUOTA)
    assert held(spool) == [pid(1), pid(2)]


def test_lowest_class_goes_first_even_if_newer() -> None:
    spool = Spool(SpoolPolicy(per_tag_max_packets=3))
    offer_all(spool, env(1), env(2, bulk=True), env(3))
    decision = spool.offer(env(4), "n1", NOW)
    assert decision.evicted == (Eviction(pid(2), SpoolReason.DISPLACED),)
    assert held(spool) == [pid(1), pid(3), pid(4)]


def test_tag_byte_quota() -> None:
    size = OVERHEAD + 41
    spool = Spool(SpoolPolicy(per_tag_max_bytes=2 * size + 10))
    offer_all(spool, env(1), env(2))
    decision = spool.offer(env(3), "n1", NOW)
    assert decision.evicted == (Eviction(pid(1), SpoolReason.DISPLACED),)
    decision = spool.offer(env(4, payload_len=41 + size), "n1", NOW)
    assert decision.evicted == (
        Eviction(pid(2), SpoolReason.DISPLACED),
        Eviction(pid(3), SpoolReason.DISPLACED),
    )
    assert spool.usage_for_tag(TAG_A) == Usage(1, 2 * size)


def test_global_cap_takes_lowest_class_then_oldest_across_tags() -> None:
    spool = Spool(SpoolPolicy(max_packets=4, per_tag_max_packets=4))
    offer_all(spool, env(1, TAG_A), env(2, TAG_B, bulk=True), env(3, TAG_A, bulk=True), env(4))
    assert spool.offer(env(5, TAG_B), "n1", NOW).evicted == (
        Eviction(pid(2), SpoolReason.DISPLACED),
    )
    assert spool.offer(env(6, TAG_B), "n1", NOW).evicted == (
        Eviction(pid(3), SpoolReason.DISPLACED),
    )
    assert spool.offer(env(7, TAG_B), "n1", NOW).evicted == (
        Eviction(pid(1), SpoolReason.DISPLACED),
    )
    refused = spool.offer(env(8, bulk=True), "n1", NOW)
    assert (refused.accepted, refused.reason) == (False, SpoolReason.FULL)
    assert len(spool) == 4


def test_global_byte_cap() -> None:
    size = OVERHEAD + 41
    spool = Spool(SpoolPolicy(max_bytes=3 * size, per_tag_max_bytes=3 * size))
    offer_all(spool, env(1), env(2), env(3))
    decision = spool.offer(env(4), "n1", NOW)
    assert decision.evicted == (Eviction(pid(1), SpoolReason.DISPLACED),)
    assert spool.bytes_used == 3 * size


def test_expired_packets_go_before_any_displacement() -> None:
    spool = Spool(SpoolPolicy(max_packets=2, per_tag_max_packets=2))
    offer_all(spool, env(1, expires=int(NOW) + 10), env(2))
    decision = spool.offer(env(3), "n1", NOW + 10)
    assert decision.accepted
    assert decision.evicted == (Eviction(pid(1), SpoolReason.EXPIRED),)


def test_per_depositor_limits_refuse_without_evicting() -> None:
    size = OVERHEAD + 41
    spool = Spool(SpoolPolicy(per_depositor_max_packets=2, per_depositor_max_bytes=3 * size))
    offer_all(spool, env(1), env(2), depositor="flood")
    refused = spool.offer(env(3), "flood", NOW)
    assert (refused.accepted, refused.reason, refused.evicted) == (
        False,
        SpoolReason.DEPOSITOR_QUOTA,
        (),
    )
    offer_all(spool, env(3), depositor="other")
    assert spool.remove(pid(1))
    offer_all(spool, env(4), depositor="flood")
    assert spool.usage_for_depositor("flood") == Usage(2, 2 * size)
    spool.remove(pid(4))
    refused = spool.offer(env(5, payload_len=41 + 2 * size), "flood", NOW)
    assert refused.reason is SpoolReason.DEPOSITOR_QUOTA
    assert not spool.remove(pid(4))


def test_deadline_is_expiry_or_max_age_whichever_first() -> None:
    spool = Spool(SpoolPolicy(max_age_s=100.0))
    offer_all(spool, env(1, expires=int(NOW) + 50), env(2, expires=int(NOW) + 500), env(3))
    assert spool.expire(NOW + 49) == []
    assert held(spool) == [pid(1), pid(2), pid(3)]
    assert [p.packet_id for p in spool.for_tags([TAG_A], NOW + 50)] == [pid(2), pid(3)]
    assert spool.expire(NOW + 50) == [pid(1)]
    assert spool.expire(NOW + 100) == [pid(2), pid(3)]
    assert len(spool) == 0
    assert spool.bytes_used == 0


def test_for_tags_orders_by_class_then_age() -> None:
    spool = Spool()
    offer_all(
        spool,
        env(1, bulk=True),
        env(2, TAG_B),
        receipt(3, 99),
        env(4, payload_len=2000),
        env(5),
    )
    assert held(spool) == [pid(3), pid(2), pid(5), pid(1), pid(4)]
    assert [p.packet_id for p in spool.receipts(NOW)] == [pid(3)]


def test_a_valid_receipt_clears_its_envelope_and_travels_on() -> None:
    spool = Spool()
    offer_all(spool, env(1), env(2))
    decision = spool.offer(receipt(3, 1), "n2", NOW)
    assert decision.accepted
    assert decision.evicted == (Eviction(pid(1), SpoolReason.CLEARED),)
    assert held(spool) == [pid(3), pid(2)]


def test_a_receipt_with_another_secret_clears_nothing() -> None:
    spool = Spool()
    offer_all(spool, env(1))
    decision = spool.offer(receipt(3, 1, secret=secret_of(2)), "n2", NOW)
    assert (decision.accepted, decision.evicted) == (True, ())  # carried on, for its own
    assert spool.clear_by_receipt(secret_of(2)) == []
    assert held(spool) == [pid(3), pid(1)]


def test_a_receipt_clears_every_envelope_with_its_hash() -> None:
    """Keyed on the receipt hash: copies under other tags (or ids) go too."""
    spool = Spool()
    twin = Packet(
        type=PacketType.ENVELOPE,
        recipient_tag=TAG_B,
        expires_at_s=LATER,
        payload=b"other bytes",
        receipt_hash=receipt_hash(secret_of(1)),
    )
    offer_all(spool, env(1), env(2), _named(4, twin))
    decision = spool.offer(receipt(3, 1), "n2", NOW)
    assert decision.evicted == (
        Eviction(pid(1), SpoolReason.CLEARED),
        Eviction(pid(4), SpoolReason.CLEARED),
    )
    assert held(spool) == [pid(3), pid(2)]


def test_a_tags_receipts_never_crowd_out_its_envelopes() -> None:
    """A busy conversation: the receipts of its earlier envelopes fill the tag's quota."""
    spool = Spool(SpoolPolicy(per_tag_max_packets=3))
    offer_all(spool, *(receipt(100 + n, 200 + n) for n in range(3)))
    assert spool.usage_for_tag(TAG_A, receipts=True) == Usage(3, 3 * encoded_len(receipt(100, 200)))
    offer_all(spool, env(1), env(2), env(3))  # the envelopes' own quota is untouched
    decision = spool.offer(receipt(103, 203), "n1", NOW)
    assert decision.accepted
    assert decision.evicted == (Eviction(pid(100), SpoolReason.DISPLACED),)  # the oldest receipt
    assert held(spool, TAG_A)[:3] == [pid(101), pid(102), pid(103)]
    assert spool.usage_for_tag(TAG_A) == Usage(3, 3 * (OVERHEAD + 41))


def test_a_held_receipt_keeps_its_envelope_out() -> None:
    spool = Spool()
    offer_all(spool, receipt(3, 1))
    decision = spool.offer(env(1), "n2", NOW)
    assert (decision.accepted, decision.reason) == (False, SpoolReason.CLEARED)
    assert held(spool) == [pid(3)]


def test_held_receipts_with_other_secrets_keep_no_envelope_out() -> None:
    spool = Spool()
    offer_all(spool, receipt(3, 1, secret=bytes(16)), receipt(4, 1, secret=b"\xff" * 16))
    decision = spool.offer(env(1), "n2", NOW)
    assert (decision.accepted, decision.evicted) == (True, ())
    assert held(spool) == [pid(3), pid(4), pid(1)]
    assert spool.offer(receipt(5, 1), "n2", NOW).evicted == (Eviction(pid(1), SpoolReason.CLEARED),)


def test_clear_by_receipt() -> None:
    spool = Spool()
    offer_all(spool, env(1), receipt(3, 77))
    assert spool.clear_by_receipt(secret_of(2)) == []  # no envelope has its hash
    assert spool.clear_by_receipt(bytes(16)) == []
    assert spool.clear_by_receipt(b"short") == []  # malformed
    assert spool.clear_by_receipt(secret_of(77)) == []  # receipts are not cleared
    assert spool.clear_by_receipt(secret_of(1)) == [pid(1)]
    assert spool.clear_by_receipt(secret_of(1)) == []
    assert held(spool) == [pid(3)]


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="positive"):
        SpoolPolicy(max_packets=0)
    with pytest.raises(ValueError, match="per-tag"):
        SpoolPolicy(max_packets=10, per_tag_max_packets=11)


# A store mirroring the spool only from what its methods return must end up holding the same.

MIRROR_POLICY = SpoolPolicy(
    max_packets=5,
    max_bytes=2500,
    per_tag_max_packets=3,
    per_tag_max_bytes=1600,
    per_depositor_max_packets=4,
    per_depositor_max_bytes=2000,
    max_age_s=60.0,
)
depositors = st.sampled_from(["d1", "d2", "d3"])
envelope_steps = st.tuples(
    st.just("envelope"),
    st.integers(0, 12),
    st.sampled_from([TAG_A, TAG_B]),
    st.integers(1, 700),
    st.booleans(),
    st.integers(1, 600),
    depositors,
)
actions = st.lists(
    st.one_of(
        envelope_steps,
        envelope_steps,
        envelope_steps,
        st.tuples(
            st.just("receipt"), st.integers(31, 40), st.integers(0, 12), st.booleans(), depositors
        ),
        st.tuples(st.just("remove"), st.integers(0, 40)),
        st.tuples(st.just("expire")),
        st.tuples(st.just("clear"), st.integers(0, 12), st.booleans()),
    ),
    min_size=10,
    max_size=80,
)


def _offer(
    spool: Spool,
    mirror: dict[bytes, tuple[Packet, float]],
    packet: Packet,
    depositor: str,
    now: float,
) -> list[bytes]:
    """Offer `packet`, mirroring the decision: evictions first, then the newcomer."""
    decision = spool.offer(packet, depositor, now)
    for eviction in decision.evicted:
        del mirror[eviction.packet_id]
    if decision.accepted:
        mirror[packet.packet_id] = (packet, now)
    return []


@settings(max_examples=200)
@given(actions)
def test_a_mirror_of_the_decisions_matches_and_limits_hold(steps: list[tuple[object, ...]]) -> None:
    policy = MIRROR_POLICY
    spool, mirror, now = Spool(policy), dict[bytes, tuple[Packet, float]](), NOW
    for step in steps:
        now += 5.0
        removed: list[bytes] = []
        expired_checked = step[0] != "remove" and step[0] != "clear"
        match step:
            case ("envelope", number, tag, payload_len, bulk, ttl_s, depositor):
                packet = env(number, tag, payload_len, bulk=bulk, expires=int(now) + ttl_s)
                removed = _offer(spool, mirror, packet, depositor, now)
            case ("receipt", number, target, genuine, depositor):
                packet = receipt(number, target, secret_of(target) if genuine else bytes(16))
                removed = _offer(spool, mirror, packet, depositor, now)
            case ("remove", number):
                removed = [pid(number)] if spool.remove(pid(number)) else []
            case ("expire",):
                removed = spool.expire(now)
            case ("clear", target, genuine):
                secret = secret_of(target) if genuine else bytes(16)
                removed = spool.clear_by_receipt(secret)
        for packet_id in removed:
            del mirror[packet_id]
        assert set(mirror) == {p for p in mirror if p in spool}
        assert len(spool) == len(mirror)
        assert spool.bytes_used == sum(encoded_len(p) for p, _ in mirror.values())
        assert spool.bytes_used <= policy.max_bytes
        for packet, accepted_at in mirror.values() if expired_checked else ():
            assert min(packet.expires_at_s, accepted_at + policy.max_age_s) > now
        assert len(spool) <= policy.max_packets
        for tag, receipts in itertools.product((TAG_A, TAG_B), (False, True)):
            usage = spool.usage_for_tag(tag, receipts=receipts)
            assert usage.packets <= policy.per_tag_max_packets
            assert usage.size_bytes <= policy.per_tag_max_bytes
        for name in ("d1", "d2", "d3"):
            usage = spool.usage_for_depositor(name)
            assert usage.packets <= policy.per_depositor_max_packets
            assert usage.size_bytes <= policy.per_depositor_max_bytes
