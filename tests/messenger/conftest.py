"""Fixtures of the messenger tests: two owners' endpoints on real SQLCipher files."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.messenger.helpers import T0, Endpoint


@pytest.fixture
def alice(tmp_path: Path) -> Iterator[Endpoint]:
    endpoint = Endpoint(tmp_path / "alice", 1)
    endpoint.start(T0)
    yield endpoint
    endpoint.close()


@pytest.fixture
def bob(tmp_path: Path) -> Iterator[Endpoint]:
    endpoint = Endpoint(tmp_path / "bob", 500)
    endpoint.start(T0)
    yield endpoint
    endpoint.close()
