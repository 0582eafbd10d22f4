"""The systemd units of the relay: its own user, a state directory (SQLite) or a port per
instance (pigeon-relay@PORT on PostgreSQL), and a tight sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "config" / "pigeon-relay.service"
TEMPLATE = UNIT.with_name("pigeon-relay@.service")
SANDBOX = [
    ("DynamicUser", "yes"),
    ("NoNewPrivileges", "yes"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
    ("CapabilityBoundingSet", ""),
    ("SystemCallFilter", "@system-service"),
    ("MemoryDenyWriteExecute", "yes"),
    ("Restart", "on-failure"),
]


def directives(unit: Path = UNIT) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DynamicUser", "yes"),
        ("StateDirectory", "pigeon-relay"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("CapabilityBoundingSet", ""),
        ("SystemCallFilter", "@system-service"),
        ("MemoryDenyWriteExecute", "yes"),
        ("Restart", "on-failure"),
    ],
)
def test_unit_sets(key: str, value: str) -> None:
    assert value in directives().get(key, []), f"{key}={value} missing"


def test_unit_runs_pigeon_relay_with_the_shipped_config_path() -> None:
    (exec_start,) = directives()["ExecStart"]
    assert exec_start.endswith("pigeon relay --config /etc/pigeon/relay.toml")


@pytest.mark.parametrize(("key", "value"), SANDBOX)
def test_template_unit_keeps_the_sandbox(key: str, value: str) -> None:
    assert value in directives(TEMPLATE).get(key, []), f"{key}={value} missing"


def test_each_template_instance_listens_on_its_own_loopback_port() -> None:
    found = directives(TEMPLATE)
    (exec_start,) = found["ExecStart"]
    assert exec_start.endswith("pigeon relay --config /etc/pigeon/relay.toml --listen 127.0.0.1:%i")
    assert "StateDirectory" not in found  # the envelopes are in PostgreSQL
    assert found["Environment"] == ["PGPASSFILE=%d/pgpass"]
