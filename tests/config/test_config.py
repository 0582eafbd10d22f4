"""Node configuration: the shipped file, and one named fixture per kind of mistake."""

from pathlib import Path

import pytest

from pigeon.config import ConfigError, NodeConfig, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
BAD = sorted((Path(__file__).parent / "bad").glob("*.toml"))


def test_shipped_node_toml_documents_exactly_the_defaults() -> None:
    assert load_config(ROOT / "config" / "node.toml") == NodeConfig()


def test_empty_file_gives_defaults() -> None:
    assert parse_config({}) == NodeConfig()


def test_simulated_hardware_is_chosen_by_config() -> None:
    config = parse_config(
        {"radio": {"kind": "sim"}, "display": {"kind": "png"}, "buttons": {"kind": "virtual"}}
    )
    assert (config.radio.kind, config.display.kind, config.buttons.kind) == (
        "sim",
        "png",
        "virtual",
    )


def test_relay_urls_become_a_tuple() -> None:
    config = parse_config({"relays": {"urls": ["wss://a.example/", "ws://127.0.0.1:8765/"]}})
    assert config.relays.urls == ("wss://a.example/", "ws://127.0.0.1:8765/")


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_config_names_the_key(path: Path) -> None:
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    key = caught.value.key
    assert key == expected or (expected == "bad-toml" and key == str(path))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_the_app_mesh_is_on_by_default_and_bridges_to_the_apps_relay() -> None:
    appmesh = NodeConfig().appmesh
    assert appmesh.enabled
    assert appmesh.relays == ("wss://relay.pigeonwire.app/ws",)
    assert not parse_config({"appmesh": {"enabled": False}}).appmesh.enabled
