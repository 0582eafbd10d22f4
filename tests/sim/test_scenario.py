"""Scenario files: the bundled ones load, bad keys are named, overrides rescale."""

import pytest

from pigeon.sim.scenario import BUNDLED, ScenarioError, load_scenario, parse_scenario


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_scenarios_load(name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.nodes >= 15


def test_default_matches_its_description() -> None:
    scenario = load_scenario("default")
    assert [(g.name, g.count, g.mobile) for g in scenario.groups] == [
        ("relay", 20, False),
        ("phone", 80, True),
    ]
    assert scenario.area_m == (1000.0, 1000.0)
    assert scenario.radio.range_m == 50.0
    assert scenario.radio.loss == 0.1
    assert (scenario.duration_s, scenario.messages) == (3600.0, 500)


def test_overrides() -> None:
    scenario = load_scenario("default").with_overrides(
        nodes=50, loss=0.2, duration_s=600, messages=7
    )
    assert [g.count for g in scenario.groups] == [10, 40]
    assert scenario.radio.loss == 0.2
    assert scenario.duration_s == 600
    assert scenario.send_window_s == 600
    assert scenario.messages == 7


BASE = {
    "name": "x",
    "duration_s": 60,
    "messages": 1,
    "send_window_s": 30,
    "payload_bytes": 100,
    "message_lifetime_s": 600,
    "area_m": [10.0, 10.0],
    "groups": [{"name": "p", "count": 2}],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"duration_s": "long"}, "duration_s: expected a number"),
        ({"messages": 1.5}, "messages: expected an integer"),
        ({"radio": {"loss": 1.5}}, "radio: loss must be in"),
        ({"radio": {"range": 5}}, "radio.range: unknown key"),
        ({"groups": []}, "groups: need at least one"),
        ({"groups": [{"name": "p", "count": 2, "placement": "spiral"}]}, "placement"),
        ({"groups": [{"name": "p", "count": 1}]}, "two endpoint nodes"),
        ({"send_window_s": 120}, "send_window_s: out of range"),
        ({"area_m": [1.0]}, "area_m"),
        ({"churn": {"fraction": 2.0}}, "churn.fraction"),
    ],
)
def test_bad_scenarios_name_the_key(change: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(")):
        parse_scenario({**BASE, **change})
    with pytest.raises(ScenarioError, match="nodes"):
        load_scenario("line").with_overrides(nodes=1)
