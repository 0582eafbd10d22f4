"""Relay configuration: the shipped file documents the defaults; every mistake is named."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from pigeon.relay.config import (
    RelayConfig,
    RelayConfigError,
    check_signed_urls,
    default_public_url,
    load_relay_config,
    parse_relay_config,
    split_listen,
)
from pigeon.relay.limits import Limits
from pigeon.relay.server import start_relay

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_relay_toml_is_exactly_the_defaults() -> None:
    assert load_relay_config(ROOT / "config" / "relay.toml") == RelayConfig()


def test_shipped_relay_toml_mentions_every_limit() -> None:
    text = (ROOT / "config" / "relay.toml").read_text()
    for field in dataclasses.fields(Limits):
        assert f"\n{field.name} = " in text, field.name


def test_empty_file_gives_defaults() -> None:
    assert parse_relay_config({}) == RelayConfig()


def test_options_are_read() -> None:
    config = parse_relay_config(
        {
            "relay": {
                "listen": "[::1]:9000",
                "data_dir": "/srv/relay",
                "public_urls": ["wss://relay.example.org/v1"],
                "behind_proxy": True,
                "app_endpoint": False,
            },
            "limits": {"max_envelope_bytes": 1024, "ip_connects_per_s": 1},
        }
    )
    assert (config.host, config.port) == ("::1", 9000)
    assert config.public_urls == ("wss://relay.example.org/v1",)
    assert config.behind_proxy
    assert not config.app_endpoint
    assert RelayConfig().app_endpoint  # on by default
    assert config.limits.max_envelope_bytes == 1024
    assert config.limits.ip_connects_per_s == 1.0
    assert config.resolved_data_dir() == Path("/srv/relay")


@pytest.mark.parametrize(
    ("raw", "mentions"),
    [
        ({"relay": {"listne": "x"}}, "relay.listne"),
        ({"relays": {}}, "relays"),
        ({"relay": []}, "[relay]"),
        ({"relay": {"listen": "localhost"}}, "HOST:PORT"),
        ({"relay": {"listen": "h:99999"}}, "HOST:PORT"),
        ({"relay": {"listen": 8765}}, "relay.listen"),
        ({"relay": {"behind_proxy": "yes"}}, "relay.behind_proxy"),
        ({"relay": {"app_endpoint": 1}}, "relay.app_endpoint"),
        ({"relay": {"public_urls": ["https://r.example/v1"]}}, "public_urls"),
        ({"relay": {"public_urls": ["wss://r.example/"]}}, "public_urls"),
        ({"relay": {"public_urls": [7]}}, "public_urls"),
        ({"limits": {"max_envelope_bytes": 1.5}}, "whole number"),
        ({"limits": {"max_envelope_bytes": 0}}, "positive"),
        ({"limits": {"max_age_s": True}}, "number"),
        ({"limits": {"max_age": 5}}, "limits.max_age"),
    ],
)
def test_mistakes_are_named(raw: dict[str, Any], mentions: str) -> None:
    with pytest.raises(RelayConfigError, match=mentions.replace("[", r"\[").replace(".", r"\.")):
        parse_relay_config(raw)


def test_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "relay.toml"
    bad.write_text("[relay\n")
    with pytest.raises(RelayConfigError):
        load_relay_config(bad)
    with pytest.raises(RelayConfigError):
        load_relay_config(tmp_path / "missing.toml")


def test_data_dir_falls_back_to_systemd_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/pigeon-relay")
    assert RelayConfig().resolved_data_dir() == Path("/var/lib/pigeon-relay")
    monkeypatch.delenv("STATE_DIRECTORY")
    assert RelayConfig().resolved_data_dir().name == "pigeon-relay"


def test_listen_and_default_url() -> None:
    assert split_listen("0.0.0.0:80") == ("0.0.0.0", 80)
    assert default_public_url("::1", 8765) == "ws://[::1]:8765/v1"
    assert default_public_url("127.0.0.1", 8765) == "ws://127.0.0.1:8765/v1"


@pytest.mark.parametrize("listen", ["0.0.0.0:8765", "[::]:8765"])
def test_an_unspecified_listen_address_needs_public_urls(listen: str) -> None:
    with pytest.raises(RelayConfigError, match="public_urls"):
        check_signed_urls(RelayConfig(listen=listen))
    check_signed_urls(RelayConfig(listen=listen, public_urls=("wss://relay.example/v1",)))
    check_signed_urls(RelayConfig(listen="127.0.0.1:8765"))
    check_signed_urls(RelayConfig(listen="relay.lan:8765"))


async def test_start_relay_refuses_an_unspecified_address(tmp_path: Path) -> None:
    with pytest.raises(RelayConfigError):
        await start_relay(RelayConfig(listen="0.0.0.0:0", data_dir=str(tmp_path)))
