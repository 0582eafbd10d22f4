"""Leaving device-bound mode: a fresh data key, the device passphrase shredded, crash-safe.

The crash tests run the re-key in a real process (bind_killer.py) that SIGKILLs itself right
after each step, then reopen the data directory as the next start would.
"""

from __future__ import annotations

import base64
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pigeon.store.binding import read_auto_passphrase
from pigeon.store.db import SQLCIPHER_DEFAULT_PAGE_BYTES
from pigeon.store.errors import WrongKey
from pigeon.store.keeper import DataDir, VaultKeeper
from pigeon.store.keys import (
    DatabaseKey,
    atomic_write,
    parse_vault_header,
    unwrap_data_key,
)
from pigeon.store.vault import VAULT_PAGE_BYTES, Vault
from pigeon.store.vault_records import Direction, FileInfo, Message, MessageState
from tests.store.bind_killer import ARGON2, NEW_PASSPHRASE, STEPS

KILLER = Path(__file__).with_name("bind_killer.py")
DEVICE_BOUND, OWNER_BOUND = "device-bound", "owner-bound"
# What the next start finds after a kill at each step: the re-key's commit is step 2's pragma.
OUTCOME = {
    "write_intent": DEVICE_BOUND,
    "journal_delete": DEVICE_BOUND,
    "rekey_pragma": OWNER_BOUND,
    "rekey": OWNER_BOUND,
    "zero_auto_unlock": OWNER_BOUND,
    "shred_auto_unlock": OWNER_BOUND,
    "install_intent": OWNER_BOUND,
    "none": OWNER_BOUND,
}
MESSAGES = 200
BULK_CHUNKS = 64  # 4 MiB


def device_bound_vault(
    data_dir: DataDir, page_bytes: int = VAULT_PAGE_BYTES
) -> tuple[str, DatabaseKey]:
    """A device-bound vault with some history, as a first boot makes it: (passphrase, key).
    `page_bytes`: SQLCIPHER_DEFAULT_PAGE_BYTES for a vault made before VAULT_PAGE_BYTES."""
    device = base64.urlsafe_b64encode(os.urandom(32)).decode()
    data_dir.ensure()
    atomic_write(data_dir.auto_unlock, device.encode())
    keeper = VaultKeeper(data_dir, argon2=ARGON2, page_bytes=page_bytes)
    vault = keeper.initialise(device)
    with vault.transaction() as tx:
        tx.add_contact("alice", "Alice", b"alice-card", 1.0)
        for n in range(MESSAGES):
            at = float(n)
            tx.append_message(
                Message(f"m{n}", "alice", Direction.IN, MessageState.RECEIVED, at, at, f"{n}" * 50)
            )
    keeper.lock()
    header = parse_vault_header(data_dir.vault_header.read_bytes())
    return device, unwrap_data_key(header, device)


def start(data_dir: DataDir, device: str) -> tuple[str, VaultKeeper]:
    """Open the vault as the next start and the owner would: which mode it is in, and the keeper."""
    keeper = VaultKeeper(data_dir, argon2=ARGON2)
    stored = read_auto_passphrase(data_dir.auto_unlock)
    if stored is not None:
        assert stored == device
        try:
            keeper.unlock(stored)
            return DEVICE_BOUND, keeper
        except WrongKey:
            pass  # a re-key that committed was finished: the owner's passphrase opens it
    keeper.unlock(NEW_PASSPHRASE)
    return OWNER_BOUND, keeper


def assert_whole(keeper: VaultKeeper) -> None:
    vault = keeper.vault
    assert vault.integrity_check() == ["ok"]
    assert len(vault.messages("alice", limit=10_000)) == MESSAGES


def assert_owner_bound(data_dir: DataDir, device: str, old_key: DatabaseKey) -> None:
    assert not data_dir.auto_unlock.exists()
    assert not data_dir.next_header.exists()
    # Whoever undeletes the device passphrase and the old header gets a key that opens nothing.
    assert not Vault.opens_with(data_dir.vault_db, old_key)
    with pytest.raises(WrongKey):
        VaultKeeper(data_dir, argon2=ARGON2).unlock(device)


def test_rebind_gives_the_vault_a_key_the_device_passphrase_never_wrapped(
    data_dir: DataDir,
) -> None:
    device, old_key = device_bound_vault(data_dir)
    keeper = VaultKeeper(data_dir, argon2=ARGON2)
    vault = keeper.unlock(device)
    keeper.rebind(device, NEW_PASSPHRASE)
    with vault.transaction() as tx:  # the open vault goes on working under the fresh key
        tx.append_message(Message("late", "alice", Direction.IN, MessageState.RECEIVED, 1, 1, "x"))
    keeper.lock()
    assert_owner_bound(data_dir, device, old_key)
    reopened = VaultKeeper(data_dir, argon2=ARGON2).unlock(NEW_PASSPHRASE)
    assert reopened.message("late").body == "x"
    assert reopened.integrity_check() == ["ok"]
    reopened.close()


def test_rebind_of_a_locked_vault_and_a_wrong_current_passphrase(data_dir: DataDir) -> None:
    device, old_key = device_bound_vault(data_dir)
    keeper = VaultKeeper(data_dir, argon2=ARGON2)
    with pytest.raises(WrongKey):
        keeper.rebind("a guess", NEW_PASSPHRASE)
    assert not data_dir.next_header.exists()
    assert Vault.opens_with(data_dir.vault_db, old_key)  # nothing changed
    keeper.rebind(device, NEW_PASSPHRASE)  # the vault need not be open
    assert_owner_bound(data_dir, device, old_key)


@pytest.mark.parametrize("step", [*STEPS, "none"])
def test_a_rebind_killed_after_any_step_settles_at_the_next_start(
    data_dir: DataDir, step: str
) -> None:
    device, old_key = device_bound_vault(data_dir)
    run = subprocess.run(
        [sys.executable, str(KILLER), str(data_dir.root), step],
        capture_output=True,
        timeout=60,
        check=False,
    )
    expected_code = 0 if step == "none" else -9
    assert run.returncode == expected_code, run.stderr.decode(errors="replace")
    mode, keeper = start(data_dir, device)
    assert mode == OUTCOME[step]
    assert_whole(keeper)
    assert not data_dir.next_header.exists()  # settled: finished or undone
    keeper.lock()
    if mode == OWNER_BOUND:
        assert_owner_bound(data_dir, device, old_key)
    else:  # undone: still device-bound, and the owner can set the passphrase again
        assert Vault.opens_with(data_dir.vault_db, old_key)
        again = VaultKeeper(data_dir, argon2=ARGON2)
        again.rebind(device, NEW_PASSPHRASE)
        assert_owner_bound(data_dir, device, old_key)


@pytest.mark.parametrize(
    ("seed", "page_bytes"),
    [(seed, VAULT_PAGE_BYTES) for seed in range(8)]
    # A vault made with SQLCipher's 4 KiB pages, killed mid re-key: its hot journal is rolled
    # back while the store still tries the new page size first.
    + [(seed, SQLCIPHER_DEFAULT_PAGE_BYTES) for seed in range(8, 12)],
)
def test_a_rebind_killed_at_a_random_moment_settles_at_the_next_start(
    data_dir: DataDir, seed: int, page_bytes: int
) -> None:
    device, old_key = device_bound_vault(data_dir, page_bytes)
    filler = VaultKeeper(data_dir, argon2=ARGON2)
    with filler.unlock(device).transaction() as tx:
        for n in range(BULK_CHUNKS):  # enough pages that the re-key takes a while
            tx.add_file(FileInfo(f"f{n}", "alice", "bulk", 1, 1, 1.0))
            tx.put_chunk(f"f{n}", 0, os.urandom(64 * 1024))
    filler.lock()
    delay = random.Random(seed).uniform(0.0, 0.4)
    process = subprocess.Popen(
        [sys.executable, str(KILLER), str(data_dir.root), "none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"rebinding\n"
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
    _, errors = process.communicate(timeout=60)
    assert process.returncode in (0, -signal.SIGKILL), errors.decode(errors="replace")
    mode, keeper = start(data_dir, device)
    assert_whole(keeper)
    assert len(keeper.vault.missing_chunks("f0")) == 0
    keeper.lock()
    if mode == OWNER_BOUND:
        assert_owner_bound(data_dir, device, old_key)
    else:
        assert Vault.opens_with(data_dir.vault_db, old_key)
        assert not data_dir.next_header.exists()


@pytest.mark.parametrize("page_bytes", [VAULT_PAGE_BYTES, SQLCIPHER_DEFAULT_PAGE_BYTES])
def test_a_rebind_killed_with_its_journal_hot_rolls_back_whatever_the_page_size(
    data_dir: DataDir, page_bytes: int
) -> None:
    device, old_key = device_bound_vault(data_dir, page_bytes)
    filler = VaultKeeper(data_dir, argon2=ARGON2)
    with filler.unlock(device).transaction() as tx:
        for n in range(BULK_CHUNKS):  # enough pages that the re-key takes a while
            tx.add_file(FileInfo(f"f{n}", "alice", "bulk", 1, 1, 1.0))
            tx.put_chunk(f"f{n}", 0, os.urandom(64 * 1024))
    filler.lock()
    journal = data_dir.vault_db.with_name(data_dir.vault_db.name + "-journal")
    process = subprocess.Popen(
        [sys.executable, str(KILLER), str(data_dir.root), "none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    while not journal.exists() and process.poll() is None:
        pass  # spin: the journal lives only while the re-key's transaction runs
    process.send_signal(signal.SIGKILL)
    _, errors = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, errors.decode(errors="replace")
    assert journal.exists()  # hot: the next open rolls it back
    mode, keeper = start(data_dir, device)
    assert mode == DEVICE_BOUND  # the re-key was not committed: undone
    assert_whole(keeper)
    assert len(keeper.vault.missing_chunks("f0")) == 0
    keeper.lock()
    assert Vault.opens_with(data_dir.vault_db, old_key)
