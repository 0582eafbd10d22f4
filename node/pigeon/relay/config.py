"""Typed configuration of `pigeon relay`, read from TOML (`config/relay.toml` documents it).

Raises `RelayConfigError` naming the option for unknown keys, wrong types and bad values.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from pigeon.relay.limits import Limits
from pigeon.relay.protocol import MAX_URL_BYTES

DEFAULT_LISTEN: Final = "127.0.0.1:8765"
WEBSOCKET_PATH: Final = "/v1"
APP_WEBSOCKET_PATH: Final = "/ws"  # the Pigeon app's relay protocol


class RelayConfigError(ValueError):
    """The relay configuration is invalid; the message names the option."""


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Everything `pigeon relay` needs; defaults match `config/relay.toml`."""

    listen: str = DEFAULT_LISTEN
    data_dir: str = ""
    store: str = ""  # "": SQLite in data_dir; postgresql://...: a database several relays share
    public_urls: tuple[str, ...] = ()
    behind_proxy: bool = False
    app_endpoint: bool = True
    limits: Limits = field(default_factory=Limits)

    @property
    def host(self) -> str:
        """The address to bind."""
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        """The TCP port to bind (0: any free port)."""
        return split_listen(self.listen)[1]

    def resolved_data_dir(self) -> Path:
        """`data_dir`, else systemd's $STATE_DIRECTORY, else ~/.local/state/pigeon-relay."""
        if self.data_dir:
            return Path(self.data_dir)
        state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
        if state:
            return Path(state)
        return Path.home() / ".local" / "state" / "pigeon-relay"


def split_listen(listen: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 in brackets) as (host, port); raises RelayConfigError."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65_535:
        raise RelayConfigError(f"listen must be HOST:PORT, got {listen!r}")
    return host.removeprefix("[").removesuffix("]"), int(port_text)


def default_public_url(host: str, port: int) -> str:
    """The URL clients sign for when `public_urls` is empty: ws://HOST:PORT/v1."""
    shown = f"[{host}]" if ":" in host else host
    return f"ws://{shown}:{port}{WEBSOCKET_PATH}"


def check_signed_urls(config: RelayConfig) -> None:
    """Raise RelayConfigError if no client could sign a read URL (ws://0.0.0.0:PORT/v1)."""
    if config.public_urls:
        return
    try:
        address = ipaddress.ip_address(config.host)
    except ValueError:  # a host name: clients dial it as it is
        return
    if address.is_unspecified:
        raise RelayConfigError(
            f"listen = {config.listen!r} binds every address, so the read URL would be "
            f"{default_public_url(config.host, config.port)}, which no client dials: "
            "set relay.public_urls"
        )


def check_store(store: str) -> None:
    """Raise RelayConfigError unless `store` is empty (SQLite) or a PostgreSQL URL."""
    if store and not store.startswith(("postgresql://", "postgres://")):
        # The value may hold a password: name the option, never echo it.
        raise RelayConfigError("relay.store must be empty (SQLite) or a postgresql:// URL")


def load_relay_config(path: Path) -> RelayConfig:
    """Read and check a relay TOML file; raises RelayConfigError (also for unreadable files)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RelayConfigError(f"cannot read {path}: {exc}") from exc
    return parse_relay_config(raw)


def parse_relay_config(raw: dict[str, Any]) -> RelayConfig:
    """Check a parsed TOML document; raises RelayConfigError."""
    _no_unknown(raw, {"relay", "limits"}, "")
    relay = _table(raw, "relay")
    _no_unknown(
        relay,
        {"listen", "data_dir", "store", "public_urls", "behind_proxy", "app_endpoint"},
        "relay.",
    )
    defaults = RelayConfig()
    listen = _typed(relay, "listen", str, defaults.listen, "relay.")
    split_listen(listen)
    urls = tuple(_typed(relay, "public_urls", list, [], "relay."))
    for url in urls:
        _check_url(url)
    store = _typed(relay, "store", str, defaults.store, "relay.")
    check_store(store)
    return RelayConfig(
        listen=listen,
        data_dir=_typed(relay, "data_dir", str, defaults.data_dir, "relay."),
        store=store,
        public_urls=urls,
        behind_proxy=_typed(relay, "behind_proxy", bool, defaults.behind_proxy, "relay."),
        app_endpoint=_typed(relay, "app_endpoint", bool, defaults.app_endpoint, "relay."),
        limits=_parse_limits(_table(raw, "limits")),
    )


def _parse_limits(table: dict[str, Any]) -> Limits:
    fields = {f.name: f for f in dataclasses.fields(Limits)}
    _no_unknown(table, set(fields), "limits.")
    values: dict[str, Any] = {}
    for name, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RelayConfigError(f"limits.{name} must be a number")
        if fields[name].type in (int, "int") and not isinstance(value, int):
            raise RelayConfigError(f"limits.{name} must be a whole number")
        if value <= 0:
            raise RelayConfigError(f"limits.{name} must be positive")
        values[name] = (
            value if isinstance(value, int) and fields[name].type in (int, "int") else float(value)
        )
    return Limits(**values)


def _check_url(url: object) -> None:
    if not isinstance(url, str):
        raise RelayConfigError("relay.public_urls must hold strings")
    parts = urlsplit(url)
    if parts.scheme not in {"ws", "wss"} or not parts.netloc or parts.path != WEBSOCKET_PATH:
        raise RelayConfigError(f"relay.public_urls: {url!r} is not ws(s)://HOST{WEBSOCKET_PATH}")
    if len(url.encode("utf-8")) > MAX_URL_BYTES:
        raise RelayConfigError("relay.public_urls: URL is too long")


def _table(raw: dict[str, Any], name: str) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise RelayConfigError(f"[{name}] must be a table")
    return table


def _typed(table: dict[str, Any], name: str, kind: type, default: Any, prefix: str) -> Any:
    value = table.get(name, default)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise RelayConfigError(f"{prefix}{name} must be a {kind.__name__}")
    return value


def _no_unknown(table: dict[str, Any], known: set[str], prefix: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise RelayConfigError(f"unknown option {prefix}{unknown[0]}")
