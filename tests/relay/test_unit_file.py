"""The systemd unit of the relay: its own user, a state directory, and a tight sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "config" / "pigeon-relay.service"


def directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
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
