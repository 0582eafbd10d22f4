"""Typed configuration of `pigeon node`, read from TOML and validated key by key.

Every option, its default and its meaning is documented in `config/node.toml`; this module is
the single place that knows the types and limits. Errors name the key and the problem, so a
typo in `/etc/pigeon/node.toml` is reported as such instead of being silently ignored.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, Literal, get_args, get_type_hints

RadioKind = Literal["ble", "sim"]
DisplayKind = Literal["ssd1306", "sh1106", "png", "none"]
ButtonsKind = Literal["gpio", "virtual", "none"]
RoutingPolicy = Literal["default", "flood"]
LogLevel = Literal["debug", "info", "warning", "error"]
ClockFormat = Literal["24h", "12h"]

MAX_TCP_PORT: Final = 65535


class ConfigError(ValueError):
    """The configuration is invalid; `key` is the dotted name of the offending option."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class NodeSection:
    name: str = ""  # empty: "pigeon-XXXX" from the device key
    data_dir: str = "/var/lib/pigeon"
    clock: ClockFormat = "24h"  # how the OLED and the web page show times of day


@dataclass(frozen=True, slots=True)
class RadioSection:
    kind: RadioKind = "ble"
    adapter: str = "hci0"
    max_links: int = 4
    # Link slots under abuse (docs/security.md): a silent link gives its slot to a newcomer
    # after link_idle_s, any link silent for link_hard_idle_s goes, junk bans for abuse_backoff_s.
    link_idle_s: int = 60
    link_hard_idle_s: int = 1800
    abuse_backoff_s: int = 60
    # Links between nodes on L2CAP channels where both ends can (docs/protocol.md, "Link
    # channels"); off: over GATT only.
    channels: bool = True


@dataclass(frozen=True, slots=True)
class RoutingSection:
    policy: RoutingPolicy = "default"


@dataclass(frozen=True, slots=True)
class DisplaySection:
    kind: DisplayKind = "ssd1306"
    i2c_bus: int = 1
    i2c_address: int = 0x3C


@dataclass(frozen=True, slots=True)
class ButtonsSection:
    kind: ButtonsKind = "gpio"
    next_pin: int = 17
    select_pin: int = 27


@dataclass(frozen=True, slots=True)
class WebSection:
    host: str = "0.0.0.0"  # the page is for the LAN; pairing gates every route
    https_port: int = 8443
    http_port: int = 8080


@dataclass(frozen=True, slots=True)
class RelaysSection:
    urls: tuple[str, ...] = ()
    carry_for_neighbours: bool = True
    carry_per_hour: int = 600
    carry_to_private_addresses: bool = False


@dataclass(frozen=True, slots=True)
class AppMeshSection:
    enabled: bool = True  # relay the Pigeon app's mesh on its own GATT service
    relays: tuple[str, ...] = ("wss://relay.pigeonwire.app/ws",)  # the app's default relay
    bridge_per_hour: int = 1200
    relay_private_addresses: bool = False


@dataclass(frozen=True, slots=True)
class BitchatSection:
    enabled: bool = True  # relay bitchat's mesh on its own GATT service (UUIDs fixed: bitchat's)
    nickname: str = ""  # the node's bitchat nickname; empty: its node name
    announce_interval_s: int = 30
    courier: bool = True  # carry bitchat courier envelopes for absent phones (spool-held, 24 h)
    courier_max_held: int = 10_000
    courier_per_depositor: int = 100
    # Publish the signed Nostr events mesh-only phones deposit (0x28), and park and fetch courier
    # drops (kind 1401), on these Nostr relays while the node has internet.
    gateway: bool = False
    nostr_relays: tuple[str, ...] = ("wss://relay.damus.io", "wss://nos.lol")  # bitchat's own


@dataclass(frozen=True, slots=True)
class MessengerSection:
    check_in_interval_s: int = 300
    ephemeral: bool = False
    attach_mailbox_hints: bool = False


@dataclass(frozen=True, slots=True)
class LogSection:
    level: LogLevel = "info"


@dataclass(frozen=True, slots=True)
class NodeConfig:
    node: NodeSection = field(default_factory=NodeSection)
    radio: RadioSection = field(default_factory=RadioSection)
    routing: RoutingSection = field(default_factory=RoutingSection)
    display: DisplaySection = field(default_factory=DisplaySection)
    buttons: ButtonsSection = field(default_factory=ButtonsSection)
    web: WebSection = field(default_factory=WebSection)
    relays: RelaysSection = field(default_factory=RelaysSection)
    appmesh: AppMeshSection = field(default_factory=AppMeshSection)
    bitchat: BitchatSection = field(default_factory=BitchatSection)
    messenger: MessengerSection = field(default_factory=MessengerSection)
    log: LogSection = field(default_factory=LogSection)


# (dotted key) -> (minimum, maximum) for integers.
_INT_RANGES: Final[dict[str, tuple[int, int]]] = {
    "radio.max_links": (1, 16),
    "radio.link_idle_s": (10, 3600),
    "radio.link_hard_idle_s": (60, 7 * 24 * 3600),
    "radio.abuse_backoff_s": (1, 24 * 3600),
    "display.i2c_bus": (0, 16),
    "display.i2c_address": (0x03, 0x77),
    "buttons.next_pin": (0, 27),
    "buttons.select_pin": (0, 27),
    "web.https_port": (1, MAX_TCP_PORT),
    "web.http_port": (1, MAX_TCP_PORT),
    "messenger.check_in_interval_s": (10, 7 * 24 * 3600),
    "relays.carry_per_hour": (1, 100_000),
    "appmesh.bridge_per_hour": (1, 100_000),
    "bitchat.announce_interval_s": (5, 3600),
    "bitchat.courier_max_held": (1, 1_000_000),
    "bitchat.courier_per_depositor": (1, 1_000_000),
}


def _convert(key: str, hint: Any, value: Any) -> Any:
    """Check `value` against the annotation `hint`; return it in the dataclass's type."""
    choices = get_args(hint) if getattr(hint, "__origin__", None) is Literal else ()
    if choices:
        if value not in choices:
            raise ConfigError(key, f"must be one of {', '.join(map(repr, choices))}, not {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, not {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, not {value!r}")
        low, high = _INT_RANGES.get(key, (0, 2**31))
        if not low <= value <= high:
            raise ConfigError(key, f"must be between {low} and {high}, not {value}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, not {value!r}")
        return value
    if hint == tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key, "must be a list of strings")
        return tuple(value)
    raise AssertionError(f"no converter for {key}: {hint!r}")  # a bug in this module


def _section(name: str, cls: type[Any], table: Any) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(name, "must be a table")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in table:
        if key not in known:
            raise ConfigError(f"{name}.{key}", "unknown option (a typo?)")
    values = {k: _convert(f"{name}.{k}", hints[k], v) for k, v in table.items()}
    return cls(**values)


def _check_consistency(config: NodeConfig) -> None:
    if config.radio.link_hard_idle_s < config.radio.link_idle_s:
        raise ConfigError("radio.link_hard_idle_s", "must be at least radio.link_idle_s")
    if config.buttons.kind == "gpio" and config.buttons.next_pin == config.buttons.select_pin:
        raise ConfigError("buttons.select_pin", "must differ from buttons.next_pin")
    if config.web.https_port == config.web.http_port:
        raise ConfigError("web.http_port", "must differ from web.https_port")
    for i, url in enumerate(config.relays.urls):
        if not url.startswith(("wss://", "ws://")):
            raise ConfigError(f"relays.urls[{i}]", "must start with wss:// (or ws:// for testing)")
    for i, url in enumerate(config.bitchat.nostr_relays):
        if not url.startswith(("wss://", "ws://")):
            raise ConfigError(
                f"bitchat.nostr_relays[{i}]", "must start with wss:// (or ws:// for testing)"
            )
    for i, url in enumerate(config.appmesh.relays):
        if not url.startswith(("wss://", "ws://")):
            raise ConfigError(
                f"appmesh.relays[{i}]", "must start with wss:// (or ws:// for testing)"
            )


def _check_bitchat(config: NodeConfig) -> None:
    nickname = config.bitchat.nickname.encode()
    if len(nickname) > 24 or not config.bitchat.nickname.isprintable():  # bitchat's TLV cap
        raise ConfigError("bitchat.nickname", "must be printable and at most 24 bytes of UTF-8")


def parse_config(data: dict[str, Any]) -> NodeConfig:
    """Validate a parsed TOML document. Raises ConfigError naming the key."""
    hints = get_type_hints(NodeConfig)
    sections: dict[str, Any] = {}
    for name, table in data.items():
        if name not in hints:
            raise ConfigError(name, "unknown section (a typo?)")
        sections[name] = _section(name, hints[name], table)
    config = NodeConfig(**sections)
    _check_consistency(config)
    _check_bitchat(config)
    return config


def load_config(path: Path) -> NodeConfig:
    """Read and validate a TOML file. Raises ConfigError (also for unreadable or invalid TOML)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
    return parse_config(data)
