"""What the node advertises: one legacy instance per service that is on, ours first."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.transport.ble.advert import (
    FLAGS_LEN,
    LEGACY_ADVERT_LEN,
    SERVICE_ORDER,
    UUID128_LIST_LEN,
    AdvertSpec,
    advert_plan,
    longest_silence_s,
)
from pigeon.transport.ble.appgatt import APP_LOCAL_NAME, APP_SERVICE_UUID
from pigeon.transport.ble.bitchatgatt import BITCHAT_SERVICE_UUID
from pigeon.transport.ble.central import EXTRA_SETTLE_S
from pigeon.transport.ble.gatt import SERVICE_UUID
from pigeon.transport.ble.slots import APP_SERVICE, BITCHAT_SERVICE, OWN_SERVICE


def test_every_service_on_gives_three_instances_that_each_fit_a_legacy_advert() -> None:
    plan = advert_plan((BITCHAT_SERVICE, APP_SERVICE))
    assert [spec.service_uuid for spec in plan] == [
        SERVICE_UUID,
        APP_SERVICE_UUID,
        BITCHAT_SERVICE_UUID,
    ]
    assert [spec.legacy_len() for spec in plan] == [29, 29, 21]
    assert plan[1].local_name == APP_LOCAL_NAME
    assert plan[2].local_name is None  # bitchat's phones advertise no name
    assert all(spec.legacy_len() <= LEGACY_ADVERT_LEN for spec in plan)


def test_two_128_bit_uuids_never_share_one_legacy_advert() -> None:
    # why one instance per service: flags and a two-UUID list alone overflow 31 bytes
    assert FLAGS_LEN + UUID128_LIST_LEN + 16 > LEGACY_ADVERT_LEN


def test_ours_is_always_on() -> None:
    assert [spec.service for spec in advert_plan(())] == [OWN_SERVICE]


def test_an_unknown_service_has_no_advert() -> None:
    with pytest.raises(ValueError, match="no advertisement"):
        advert_plan(("nostr",))


def test_an_advert_over_31_bytes_is_refused() -> None:
    assert (
        AdvertSpec("x", SERVICE_UUID, local_name="n" * 9, manufacturer_data_len=0).legacy_len()
        == 32
    )


@given(st.lists(st.sampled_from(SERVICE_ORDER), max_size=6))
def test_the_plan_is_a_function_of_which_services_are_on(services: list[str]) -> None:
    plan = advert_plan(services)
    on = set(services) | {OWN_SERVICE}
    assert [spec.service for spec in plan] == [s for s in SERVICE_ORDER if s in on]
    assert plan == advert_plan(reversed(services))  # order and repeats do not matter
    assert len({spec.service_uuid for spec in plan}) == len(plan)


def test_a_node_is_told_from_a_phone_after_its_instances_took_their_turns() -> None:
    assert longest_silence_s(advert_plan(())) == 0.0
    full = advert_plan(SERVICE_ORDER)
    assert longest_silence_s(full) == 4.0  # two other instances, 2 s each
    # the central waits longer than ours can stay off the air before dialing a phone service
    assert longest_silence_s(full) < EXTRA_SETTLE_S
