"""sd_notify by hand: addresses, message encoding, watchdog period, real datagrams."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pigeon.daemon.sdnotify import (
    Notifier,
    encode_message,
    parse_socket_address,
    watchdog_interval_s,
)


def test_socket_addresses() -> None:
    assert parse_socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert parse_socket_address("@pigeon") == "\0pigeon"
    assert parse_socket_address("@") is None
    assert parse_socket_address("vsock:2:1234") is None


def test_watchdog_interval_is_half_and_for_our_pid_only() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}, 7) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, 7) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "8"}, 7) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}, 7) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "-5"}, 7) is None
    assert watchdog_interval_s({}, 7) is None


def test_encoding_refuses_newlines_and_bad_keys() -> None:
    assert encode_message({"READY": "1", "STATUS": "up"}) == b"READY=1\nSTATUS=up"
    with pytest.raises(ValueError):
        encode_message({"STATUS": "two\nlines"})
    with pytest.raises(ValueError):
        encode_message({"status": "lower"})
    with pytest.raises(ValueError):
        encode_message({"A=B": "x"})


@given(st.text(max_size=400))
def test_status_text_always_becomes_one_clipped_line(text: str) -> None:
    sent: list[dict[str, str]] = []

    class Recording(Notifier):
        def send(self, fields: dict[str, str]) -> None:  # type: ignore[override]
            encode_message(fields)
            sent.append(dict(fields))

    Recording({}, 1).status(text)
    assert len(sent) == 1
    assert "\n" not in sent[0]["STATUS"]
    assert len(sent[0]["STATUS"]) <= 200


def test_messages_reach_a_real_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(2)
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"}, os.getpid())
        assert notifier.enabled
        assert notifier.watchdog_interval_s == 1.0
        notifier.ready("ready: 0 neighbours")
        notifier.watchdog()
        notifier.stopping("stopped on request")
        notifier.close()
        assert server.recv(1024) == b"READY=1\nSTATUS=ready: 0 neighbours"
        assert server.recv(1024) == b"WATCHDOG=1"
        assert server.recv(1024) == b"STOPPING=1\nSTATUS=stopped on request"


def test_abstract_socket() -> None:
    name = f"pigeon-sdnotify-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(2)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name}, os.getpid())
        notifier.watchdog()
        notifier.close()
        assert server.recv(1024) == b"WATCHDOG=1"


def test_without_systemd_everything_is_a_no_op(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier({}, 1)
    assert not notifier.enabled
    assert notifier.watchdog_interval_s is None
    notifier.ready("x")
    notifier.watchdog()
    assert not caplog.records


def test_a_vanished_manager_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}, 1)
    notifier.watchdog()
    notifier.close()
    assert "cannot notify the service manager" in caplog.text
