"""The app service's sizing, frame checks, peer naming and shared-notification bookkeeping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.transport.base import PeerId
from pigeon.transport.ble.app import APP_PROFILE, app_peer_id
from pigeon.transport.ble.appgatt import (
    APP_MAX_FRAME_LIMIT,
    APP_MIN_FRAME_LIMIT,
    SharedNotify,
    address_of,
)
from pigeon.transport.ble.errors import MalformedLinkFrame
from pigeon.transport.ble.gatt import MAX_FRAME_LIMIT


def test_the_app_sizes_are_its_fragment_bounds() -> None:
    assert APP_MIN_FRAME_LIMIT == 7 + 150
    assert APP_MAX_FRAME_LIMIT == 7 + 503
    # BlueZ 5.66 loses writes of 511-514 bytes: the app's largest fragment stays below them.
    assert APP_MAX_FRAME_LIMIT < 511
    assert APP_MAX_FRAME_LIMIT > MAX_FRAME_LIMIT  # unlike our own links, no 244 cap


@pytest.mark.parametrize(
    ("value_length", "limit"),
    [(20, None), (156, None), (157, 157), (182, 182), (244, 244), (510, 510), (514, 510)],
)
def test_frame_limit_from_the_value_length(value_length: int, limit: int | None) -> None:
    assert APP_PROFILE.frame_limit(value_length) == limit


@given(st.integers(min_value=0, max_value=1000))
def test_a_link_is_refused_or_carries_every_app_fragment_size(value_length: int) -> None:
    limit = APP_PROFILE.frame_limit(value_length)
    if value_length < 157:
        assert limit is None
    else:
        assert limit is not None
        assert 157 <= limit <= min(value_length, 510)


@pytest.mark.parametrize("size", [1, 8, 157, 510])
def test_frames_of_one_to_510_bytes_pass(size: int) -> None:
    APP_PROFILE.check_frame(bytes(size))


@pytest.mark.parametrize("size", [0, 511, 514])
def test_empty_and_oversized_frames_are_malformed(size: int) -> None:
    with pytest.raises(MalformedLinkFrame):
        APP_PROFILE.check_frame(bytes(size))


def test_a_peer_is_its_device() -> None:
    path = "/org/bluez/hci2/dev_AA_BB_CC_DD_EE_0F"
    assert address_of(path) == "AA:BB:CC:DD:EE:0F"
    assert app_peer_id("aa:bb:cc:dd:ee:0f") == PeerId("app:AA:BB:CC:DD:EE:0F")
    with pytest.raises(ValueError, match="device path"):
        address_of("/org/bluez/hci2")


P1, P2, P3 = PeerId("app:1"), PeerId("app:2"), PeerId("app:3")


def test_a_frame_sent_to_every_subscriber_is_notified_once() -> None:
    shared = SharedNotify()
    for peer in (P1, P2, P3):
        shared.join(peer)
    frames = [b"f1", b"f2", b"f3"]
    sent = [shared.must_notify(peer, frame) for peer in (P1, P2, P3) for frame in frames]
    assert sent == [True] * 3 + [False] * 6


def test_a_deliberate_resend_is_notified_again() -> None:
    shared = SharedNotify()
    shared.join(P1)
    assert shared.must_notify(P1, b"x")
    assert shared.must_notify(P1, b"x")


def test_a_peer_that_joined_after_a_notification_gets_it_sent() -> None:
    shared = SharedNotify()
    shared.join(P1)
    assert shared.must_notify(P1, b"x")
    shared.join(P2)
    assert shared.must_notify(P2, b"x")  # it subscribed after x went out
    assert not shared.must_notify(P1, b"x")  # but the second copy reached P1 too


def test_an_unknown_peer_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        SharedNotify().must_notify(P1, b"x")


_ops = st.lists(
    st.tuples(
        st.sampled_from(["join", "send"]),
        st.sampled_from([P1, P2, P3]),
        st.binary(min_size=1, max_size=2),
    ),
    max_size=60,
)


@given(_ops, st.integers(min_value=1, max_value=8))
def test_every_frame_sent_to_a_peer_reaches_it(
    ops: list[tuple[str, PeerId, bytes]], window: int
) -> None:
    """Model: a notification reaches every peer joined at that moment. Every send to a joined
    peer leaves it with that frame, and the window bounds memory, never delivery."""
    shared = SharedNotify(window)
    joined: set[PeerId] = set()
    heard: dict[PeerId, list[bytes]] = {}
    for op, peer, frame in ops:
        if op == "join":
            shared.join(peer)
            joined.add(peer)
            heard[peer] = []
        elif peer in joined:
            if shared.must_notify(peer, frame):
                for other in joined:
                    heard[other].append(frame)
            assert frame in heard[peer]
