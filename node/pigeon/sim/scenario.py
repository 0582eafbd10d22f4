"""Scenarios: TOML descriptions of a simulated neighbourhood, loaded, checked and overridden.

A scenario names the area, the radio, groups of nodes (how many, placed how, walking or not,
whether they are messaging endpoints), optional churn, and the traffic (how many messages over
which window). `load_scenario` takes a bundled name (one of `BUNDLED`) or a
path and raises ScenarioError naming the key at fault.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from pigeon.transport.sim import RadioParams

BUNDLED: Final = ("default", "line", "dense", "churn", "backbone", "street")
PLACEMENTS: Final = ("random", "grid", "line")


class ScenarioError(ValueError):
    """A scenario file is missing, not TOML, or has a bad key; the message names it."""


@dataclass(frozen=True, slots=True)
class Group:
    """A kind of node in the scenario."""

    name: str
    count: int
    placement: str = "random"
    mobile: bool = False
    endpoints: bool = True
    spacing_m: float = 40.0
    speed_min_m_s: float = 0.8
    speed_max_m_s: float = 1.8
    pause_max_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Churn:
    """A fraction of nodes alternate exponential on and off periods."""

    fraction: float = 0.0
    mean_on_s: float = 300.0
    mean_off_s: float = 120.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything a simulation run needs besides the seed and the routing policy."""

    name: str
    duration_s: float
    messages: int
    send_window_s: float
    payload_bytes: int
    message_lifetime_s: int
    area_m: tuple[float, float]
    radio: RadioParams
    groups: tuple[Group, ...]
    churn: Churn = Churn()

    @property
    def nodes(self) -> int:
        """How many nodes the scenario places."""
        return sum(group.count for group in self.groups)

    def with_overrides(
        self,
        *,
        nodes: int | None = None,
        loss: float | None = None,
        duration_s: float | None = None,
        messages: int | None = None,
        link_drop: float | None = None,
    ) -> Scenario:
        """This scenario with command-line overrides; `nodes` rescales every group."""
        result = self
        if nodes is not None:
            result = dataclasses.replace(result, groups=_rescale(result.groups, nodes))
        if loss is not None:
            result = dataclasses.replace(result, radio=_radio({"loss": loss}, result.radio))
        if link_drop is not None:
            radio = _radio({"link_drop": link_drop}, result.radio)
            result = dataclasses.replace(result, radio=radio)
        if duration_s is not None:
            window = min(result.send_window_s, duration_s)
            result = dataclasses.replace(result, duration_s=duration_s, send_window_s=window)
        if messages is not None:
            result = dataclasses.replace(result, messages=messages)
        _check(result)
        return result


def load_scenario(name_or_path: str) -> Scenario:
    """A bundled scenario by name, or a TOML file by path; raises ScenarioError."""
    if name_or_path in BUNDLED:
        resource = importlib.resources.files("pigeon.sim") / "scenarios" / f"{name_or_path}.toml"
        text = resource.read_text(encoding="utf-8")
    else:
        path = Path(name_or_path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            known = ", ".join(BUNDLED)
            raise ScenarioError(f"no scenario {name_or_path!r} (bundled: {known})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"scenario {name_or_path!r} is not valid TOML: {exc}") from exc
    return parse_scenario(data)


def parse_scenario(data: Mapping[str, object]) -> Scenario:
    """Build a Scenario from parsed TOML; raises ScenarioError naming the bad key."""
    top = dict(data)
    radio = _radio(_table(top.pop("radio", {}), "radio"), RadioParams())
    churn = _build(Churn, _table(top.pop("churn", {}), "churn"), "churn")
    raw_groups = top.pop("groups", None)
    if not isinstance(raw_groups, list) or not raw_groups:
        raise ScenarioError("groups: need at least one [[groups]] table")
    groups = tuple(
        _build(Group, _table(g, f"groups[{i}]"), f"groups[{i}]") for i, g in enumerate(raw_groups)
    )
    area = top.pop("area_m", None)
    if not (isinstance(area, list) and len(area) == 2):
        raise ScenarioError("area_m: need [width, height] in metres")
    top["area_m"] = (_number(area[0], "area_m"), _number(area[1], "area_m"))
    scenario = _build(Scenario, {**top, "radio": radio, "groups": groups, "churn": churn}, "")
    _check(scenario)
    return scenario


def _table(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: expected a table")
    return value


def _number(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{key}: expected a number")
    return float(value)


_T = TypeVar("_T")


def _build(cls: type[_T], values: dict[str, object], where: str) -> _T:
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    prefix = f"{where}." if where else ""
    for key in values:
        if key not in fields:
            raise ScenarioError(f"{prefix}{key}: unknown key")
    for key, value in list(values.items()):
        kind = fields[key].type
        if kind in ("float", "int") and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise ScenarioError(f"{prefix}{key}: expected a number")
        if kind == "int" and not isinstance(value, int):
            raise ScenarioError(f"{prefix}{key}: expected an integer")
        if kind == "float":
            values[key] = float(value)  # type: ignore[arg-type]
        if kind == "bool" and not isinstance(value, bool):
            raise ScenarioError(f"{prefix}{key}: expected true or false")
        if kind == "str" and not isinstance(value, str):
            raise ScenarioError(f"{prefix}{key}: expected a string")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ScenarioError(f"{where or 'scenario'}: {exc}") from exc


def _radio(values: Mapping[str, object], base: RadioParams) -> RadioParams:
    known = {f.name for f in dataclasses.fields(RadioParams)}
    for key, value in values.items():
        if key not in known:
            raise ScenarioError(f"radio.{key}: unknown key")
        _number(value, f"radio.{key}")
    try:
        return dataclasses.replace(base, **values)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"radio: {exc}") from exc


def _rescale(groups: tuple[Group, ...], nodes: int) -> tuple[Group, ...]:
    if nodes < 2:
        raise ScenarioError("nodes: need at least 2")
    total = sum(g.count for g in groups)
    counts = [g.count * nodes // total for g in groups]
    counts[-1] += nodes - sum(counts)
    return tuple(dataclasses.replace(g, count=c) for g, c in zip(groups, counts, strict=True))


def _check(s: Scenario) -> None:
    faults = [
        ("duration_s", s.duration_s > 0),
        ("messages", s.messages >= 0),
        ("send_window_s", 0 <= s.send_window_s <= s.duration_s),
        ("payload_bytes", 1 <= s.payload_bytes <= 8192),
        ("message_lifetime_s", s.message_lifetime_s > 0),
        ("area_m", s.area_m[0] > 0 and s.area_m[1] > 0),
        ("churn.fraction", 0.0 <= s.churn.fraction <= 1.0),
        ("churn.mean_on_s", s.churn.mean_on_s > 0 and s.churn.mean_off_s > 0),
    ]
    for group in s.groups:
        faults.append((f"groups.{group.name}.count", group.count >= 0))
        faults.append((f"groups.{group.name}.placement", group.placement in PLACEMENTS))
        faults.append(
            (f"groups.{group.name}.speed", 0 < group.speed_min_m_s <= group.speed_max_m_s)
        )
    for key, ok in faults:
        if not ok:
            raise ScenarioError(f"{key}: out of range")
    if sum(g.count for g in s.groups if g.endpoints) < 2 and s.messages:
        raise ScenarioError("groups: need at least two endpoint nodes to send messages")
