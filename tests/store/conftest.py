"""Shared fixtures of the store tests: a data directory and a cheap Argon2 cost."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from pigeon.store.keys import Argon2Params
from pigeon.store.spool_db import Spool

# The smallest cost libsodium accepts: tests exercise the format, not the hardness.
CHEAP_ARGON2 = Argon2Params(opslimit=1, memlimit_bytes=8192)
PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def data_dir(tmp_path: Path) -> DataDir:
    return DataDir(tmp_path / "data")


@pytest.fixture
def keeper(data_dir: DataDir) -> Iterator[VaultKeeper]:
    keeper = VaultKeeper(data_dir, argon2=CHEAP_ARGON2)
    yield keeper
    keeper.lock()


@pytest.fixture
def spool(data_dir: DataDir) -> Iterator[Spool]:
    spool = open_spool(data_dir)
    yield spool
    spool.close()
