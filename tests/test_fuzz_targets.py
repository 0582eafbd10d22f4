"""Every atheris target in fuzz/ also runs here on random bytes, so none can rot unnoticed.

`make fuzz` runs them under atheris with coverage guidance; this only checks that random input
raises nothing but the room's typed errors (each target catches those itself).
"""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

FUZZ_DIR = Path(__file__).resolve().parent.parent / "fuzz"
TARGETS = sorted(FUZZ_DIR.glob("fuzz_*.py"))


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"fuzz_target_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_fuzz_targets() -> None:
    assert TARGETS, f"no fuzz_*.py in {FUZZ_DIR}"


@pytest.mark.parametrize("path", TARGETS, ids=lambda p: p.stem)
def test_fuzz_target_takes_random_bytes(path: Path) -> None:
    target = _load(path).fuzz_one_input

    @settings(max_examples=300, deadline=None, database=None)
    @given(st.binary(max_size=4096))
    def run(data: bytes) -> None:
        target(data)

    run()
