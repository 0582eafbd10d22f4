"""Crypto-erase: key files are zeroed in place before they are deleted; the vault goes whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pigeon.store.erase import shred_file
from pigeon.store.errors import StoreError, WrongKey
from pigeon.store.keeper import DataDir, VaultKeeper
from tests.store.conftest import PASSPHRASE


def test_a_shredded_file_is_zeroed_in_place_then_deleted(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"k" * 70_000)  # more than one write chunk
    witness = tmp_path / "witness"
    os.link(secret, witness)  # a second name for the same blocks shows what was written there
    assert shred_file(secret) is True
    assert not secret.exists()
    assert witness.read_bytes() == bytes(70_000)
    assert shred_file(secret) is False


def test_a_symlink_is_refused_and_its_target_kept(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"keep me")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(StoreError, match="link"):
        shred_file(link)
    assert target.read_bytes() == b"keep me"


def test_erase_zeroes_the_wrapped_key_and_removes_the_vault(
    keeper: VaultKeeper, data_dir: DataDir
) -> None:
    keeper.initialise(PASSPHRASE)
    header = data_dir.vault_header.read_bytes()
    witness = data_dir.root / "header-witness"
    os.link(data_dir.vault_header, witness)
    stale = data_dir.root / "vault.header.tmp"  # what a crash mid-rewrap leaves
    stale.write_bytes(header)
    stale_witness = data_dir.root / "stale-witness"
    os.link(stale, stale_witness)

    keeper.erase()

    assert not keeper.is_unlocked
    assert not keeper.is_initialised
    assert witness.read_bytes() == bytes(len(header))
    assert stale_witness.read_bytes() == bytes(len(header))
    assert not stale.exists()
    leftovers = {p.name for p in data_dir.root.iterdir()} - {"header-witness", "stale-witness"}
    assert not any(name.startswith("vault") for name in leftovers), leftovers
    keeper.erase()  # nothing left: a retry is harmless
    keeper.initialise(PASSPHRASE)  # a new vault under a new data key
    assert data_dir.vault_header.read_bytes() != header


def test_the_old_passphrase_does_not_open_the_new_vault(
    keeper: VaultKeeper, data_dir: DataDir
) -> None:
    keeper.initialise(PASSPHRASE)
    keeper.erase()
    keeper.initialise("a different passphrase")
    keeper.lock()
    with pytest.raises(WrongKey):
        keeper.unlock(PASSPHRASE)
