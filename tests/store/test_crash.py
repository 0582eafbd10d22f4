"""SIGKILL at random moments: every write reported done is there exactly once, files are sound."""

import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from pigeon.store.errors import WrongKey
from pigeon.store.keeper import DataDir, VaultKeeper, open_spool
from tests.store.crash_writer import ARGON2, CONTACT, PASSPHRASE, passphrase

WRITER = Path(__file__).with_name("crash_writer.py")
KILLS = 24
REKEY_KILLS = 10


def run_and_kill(arguments: list[str], rng: random.Random) -> list[str]:
    """Start the writer, SIGKILL it at a random moment, return the complete lines it printed."""
    process = subprocess.Popen(
        [sys.executable, str(WRITER), *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[bytes] = []
    if rng.random() < 0.25:
        delay = rng.uniform(0.0, 0.6)  # often during start-up: key creation, migration, unlock
    else:
        lines.append(process.stdout.readline())  # once writing has begun
        delay = rng.uniform(0.0, 0.3)
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
    rest, errors = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL, errors.decode(errors="replace")
    lines.extend(rest.splitlines(keepends=True))
    return [line.decode() for line in lines if line.endswith(b"\n")]


def check_store(data_dir: DataDir, envelopes: list[str], messages: list[str]) -> None:
    spool = open_spool(data_dir)
    try:
        assert spool.integrity_check() == ["ok"]
        stored = Counter(entry.packet_id.decode() for entry in spool.entries())
        assert all(count == 1 for count in stored.values())
        assert all(stored[packet_id] == 1 for packet_id in envelopes)
    finally:
        spool.close()
    if not messages and not VaultKeeper(data_dir).is_initialised:
        return
    keeper = VaultKeeper(data_dir, argon2=ARGON2)
    vault = keeper.unlock(PASSPHRASE)
    try:
        assert vault.integrity_check() == ["ok"]
        history = vault.messages(CONTACT, limit=1_000_000) if vault.contacts() else []
        found = Counter(message.message_id for message in history)
        assert all(found[message_id] == 1 for message_id in messages)
        assert all(count == 1 for count in found.values())
        for message_id in messages:
            assert vault.incoming_seen(message_id.encode())
            assert vault.outbox_entry(message_id.encode()) is not None
        session = vault.session(CONTACT)
        # The ratchet stand-in counts its steps in the same transaction as each message.
        assert (int(session.state) if session else 0) == len(history)
    finally:
        keeper.lock()


@pytest.mark.slow
def test_reported_writes_survive_sigkill_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(4)
    data_dir = DataDir(tmp_path / "data")
    envelopes: list[str] = []
    messages: list[str] = []
    kills_while_writing = 0
    for round_number in range(KILLS):
        lines = run_and_kill([str(data_dir.root), f"r{round_number}"], rng)
        for line in lines:
            kind, *ids = line.split()
            (envelopes if kind == "S" else messages).extend(ids)
        kills_while_writing += bool(lines)
        check_store(data_dir, envelopes, messages)
    assert kills_while_writing >= KILLS // 2
    assert len(messages) > KILLS


@pytest.mark.slow
def test_a_passphrase_change_killed_at_any_moment_leaves_the_old_or_the_new(
    tmp_path: Path,
) -> None:
    data_dir = DataDir(tmp_path / "data")
    keeper = VaultKeeper(data_dir, argon2=ARGON2)
    with keeper.initialise(PASSPHRASE).transaction() as tx:
        tx.put_setting("canary", "still here")
    keeper.lock()
    rng = random.Random(7)
    current = 0
    kills_while_changing = 0
    for _ in range(REKEY_KILLS):
        lines = run_and_kill([str(data_dir.root), "--rekey", str(current)], rng)
        reported = int(lines[-1].split()[1]) if lines else current
        # The change after the last one reported may have landed before the kill, or not.
        try:
            vault = keeper.unlock(passphrase(reported))
            current = reported
        except WrongKey:
            vault = keeper.unlock(passphrase(reported + 1))
            current = reported + 1
        assert vault.setting("canary") == "still here"
        keeper.lock()
        kills_while_changing += bool(lines)
    assert kills_while_changing >= REKEY_KILLS // 2
